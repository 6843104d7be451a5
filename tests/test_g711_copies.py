"""scripts/experiments/g711_copies.py: genuine files as phone-coded copies."""

import numpy as np
import pandas as pd
import soundfile as sf

from forensics_scan.audio import SAMPLE_RATE, load_audio
from project_scripts import load_script

g711_copies = load_script("scripts/experiments/g711_copies.py")


def speech_like(seed):
    rng = np.random.default_rng(seed)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((150, 300, 450, 900), 1))
    return (0.2 * tone * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def test_genuine_files_become_g711_copies_and_fakes_stay(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name, seed in (("a.flac", 0), ("b.flac", 1), ("fake.flac", 2)):
        sf.write(data / name, speech_like(seed), SAMPLE_RATE)
    pd.DataFrame({"path": ["a.flac", "b.flac", "fake.flac"], "label": ["real", "real", "fake"],
                  "system": ["bonafide", "bonafide", "world_dio"],
                  "group": ["g1", "g2", "g1"]}).to_csv(data / "TABLE.csv", index=False)

    out = g711_copies.write_copies(str(data / "TABLE.csv"), str(tmp_path / "g711"))

    assert list(out["label"]) == ["real"] * 4 + ["fake"]
    assert list(out["group"]) == ["g1", "g1", "g2", "g2", "g1"]
    assert out["path"].iloc[-1] == str(data / "fake.flac")  # absolute: found from anywhere
    assert pd.read_csv(tmp_path / "g711" / "MANIFEST.csv").equals(out)
    for row, subtype in zip(out.iloc[:4].itertuples(), ["ULAW", "ALAW"] * 2):
        info = sf.info(tmp_path / "g711" / row.path)
        assert (info.samplerate, info.subtype) == (8000, subtype)
        assert row.system == f"bonafide_{subtype.lower()}"
    # the copy is the same speech, narrowed to the phone band, not something else
    source = speech_like(0)
    copy = load_audio(str(tmp_path / "g711" / out["path"].iloc[0]))
    n = min(source.size, copy.size)
    assert np.corrcoef(source[:n], copy[:n])[0, 1] > 0.95

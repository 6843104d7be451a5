"""scripts/experiments/channel_validation.py: fixed channel copies, clean 819-file EER."""

import numpy as np
import pandas as pd

from project_scripts import load_script

channel_validation = load_script("scripts/experiments/channel_validation.py")


def test_a_file_always_gets_the_same_channel_and_files_get_different_ones(speechlike):
    audio = speechlike(2.0)

    first = channel_validation.channel_copy(audio, "real/a.flac")
    again = channel_validation.channel_copy(audio, "real/a.flac")
    other = channel_validation.channel_copy(audio, "real/b.flac")

    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.dtype == np.float32 and np.abs(first).max() <= 1.0


def test_clean_figure_leaves_out_the_debian_tts_rows(tmp_path):
    rows = [("g1.flac", "real", "bonafide", 0.1), ("g2.flac", "real", "bonafide", 0.6),
            ("f1.flac", "fake", "hifigan_like", 0.9), ("f2.flac", "fake", "world_dio", 0.4),
            ("t1.flac", "fake", "espeak_ng", 0.0), ("t2.flac", "fake", "flite_slt", 0.0)]
    pd.DataFrame(rows, columns=["path", "label", "system", "score"]).to_csv(
        tmp_path / "file_scores.csv", index=False)

    # without the TTS rows: one genuine and one fake file on the wrong side of the other
    assert channel_validation._clean_819(str(tmp_path)) == 0.5

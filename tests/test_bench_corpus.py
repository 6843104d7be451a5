"""The benchmark corpus (benchmarks/corpus.py) is what issue 4 asks the figures to use."""

import importlib.util
import os

import numpy as np
import pytest
import soundfile as sf

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "benchmarks", "corpus.py")


@pytest.fixture(scope="module")
def corpus():
    spec = importlib.util.spec_from_file_location("bench_corpus", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_full_corpus_has_an_hour_in_every_required_format(corpus):
    specs = corpus.corpus_specs()
    kinds = {(s.format, s.sample_rate, s.channels) for s in specs}

    assert sum(s.seconds for s in specs) >= 3600
    assert {("WAV", 16000, 1), ("FLAC", 44100, 2)} <= kinds
    assert any(s.format == "MP3" for s in specs)
    assert any(s.sample_rate == 48000 and s.seconds >= 1800 for s in specs)
    assert corpus.corpus_specs() == specs  # seeded: the same corpus every time


def test_quick_corpus_is_a_few_minutes(corpus):
    assert 240 <= sum(s.seconds for s in corpus.corpus_specs(quick=True)) <= 900


@pytest.mark.parametrize("fmt, subtype, rate, channels", [
    ("WAV", "PCM_16", 16000, 1), ("FLAC", "PCM_16", 44100, 2),
    ("MP3", "MPEG_LAYER_III", 44100, 1), ("WAV", "PCM_16", 48000, 1)])
def test_files_are_written_as_specified_and_reproducibly(corpus, tmp_path, fmt, subtype, rate,
                                                         channels):
    spec = corpus.Spec(f"x/clip.{fmt.lower()}", 12.5, rate, channels, fmt, subtype)
    first, second = str(tmp_path / "a" / spec.path), str(tmp_path / "b" / spec.path)

    corpus.write(first, spec)
    corpus.write(second, spec)

    info = sf.info(first)
    assert (info.samplerate, info.channels) == (rate, channels)
    assert abs(info.frames - 12.5 * rate) < 0.05 * rate  # MP3 frames pad a little
    audio, _ = sf.read(first, dtype="float32")
    assert 0.01 < np.abs(audio).max() < 1.0
    with open(first, "rb") as a, open(second, "rb") as b:
        assert a.read() == b.read()

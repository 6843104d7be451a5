"""Shortcut audit of the bundled model: scores must follow the voice, not the channel.

Each test perturbs a clip of sample_audio/ the way recordings differ in the wild (gain,
silence around the speech, an 8 kHz channel, MP3, length) and compares the bundled
model's file score (max over segments, as the scanner computes it). Known swings of
genuine clips are bounded here and documented in models/MODEL_CARD.md.
"""

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from forensics_scan.audio import SAMPLE_RATE, iter_segments, load_audio
from forensics_scan.features import log_mel
from forensics_scan.model import bundled_model_path, load_checkpoint

SAMPLES = Path(__file__).resolve().parents[1] / "sample_audio"
GENUINE = ["genuine_alsa_voice.flac", "genuine_arctic.wav"]
# the synthetic clips the model detects as they are; the Debian TTS clips espeak-ng and
# festival are missed (left out of training: a known limit in models/MODEL_CARD.md)
SYNTHETIC = ["synthetic_world_dio_arctic.WAV", "synthetic_griffin_lim_mel80_alsa.ogg",
             "synthetic_lpc18_arctic.mp3", "synthetic_world_coded24_arctic.flac",
             "synthetic_flite_slt.wav"]
# largest measured: 0.123 (genuine_arctic, first 2 s only; see MODEL_CARD); models bundled
# before moved it by up to 0.27, so the bound guards against going back there
GENUINE_SWING = 0.25


def _silence_around(x):
    pad = np.zeros(SAMPLE_RATE, np.float32)
    return np.concatenate([pad, x, pad])


def _telephone_rate(x):
    return soxr.resample(soxr.resample(x, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE)[:x.size]


def _mp3(x):
    buffer = io.BytesIO()
    sf.write(buffer, x, SAMPLE_RATE, format="MP3")
    buffer.seek(0)
    return sf.read(buffer, dtype="float32")[0][:x.size]


PERTURBATIONS = {
    "1 s of silence before and after": _silence_around,
    "8 kHz round trip": _telephone_rate,
    "MP3 round trip": _mp3,
    "first 2 s only": lambda x: x[:2 * SAMPLE_RATE],
    "played twice": lambda x: np.concatenate([x, x]),
}


@pytest.fixture(scope="module")
def detector():
    return load_checkpoint(bundled_model_path())


def file_score(detector, audio):
    segments = [samples for _, _, samples in iter_segments(iter([audio]))]
    return float(detector.score(np.stack([log_mel(s) for s in segments])).max())


@pytest.mark.parametrize("name", GENUINE + SYNTHETIC)
@pytest.mark.parametrize("gain_db", [-20, -10, 0])
def test_gain_does_not_move_the_score(detector, name, gain_db):
    audio = load_audio(str(SAMPLES / name))
    louder = audio * np.float32(10 ** (gain_db / 20))
    assert file_score(detector, louder) == pytest.approx(file_score(detector, audio), abs=1e-3)


@pytest.mark.parametrize("name", SYNTHETIC)
@pytest.mark.parametrize("perturbation", sorted(PERTURBATIONS))
def test_synthetic_clips_stay_flagged_through_channel_and_length_changes(detector, name,
                                                                         perturbation):
    audio = PERTURBATIONS[perturbation](load_audio(str(SAMPLES / name)))
    assert file_score(detector, audio) >= detector.threshold


@pytest.mark.parametrize("name", GENUINE)
@pytest.mark.parametrize("perturbation", sorted(PERTURBATIONS))
def test_genuine_clips_stay_unflagged_and_swing_within_the_documented_bound(detector, name,
                                                                             perturbation):
    """Genuine scores move by up to 0.123 (MODEL_CARD.md); guard against much worse."""
    audio = load_audio(str(SAMPLES / name))
    changed = file_score(detector, PERTURBATIONS[perturbation](audio))
    assert changed < detector.threshold
    assert abs(changed - file_score(detector, audio)) < GENUINE_SWING

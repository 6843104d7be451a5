"""Log-Mel front end (forensics_scan/features.py)."""

import json

import numpy as np
import pytest

from forensics_scan import features
from forensics_scan.audio import SAMPLE_RATE, SEGMENT_SAMPLES
from forensics_scan.features import N_FRAMES, N_MELS, frontend_config, frontend_hash, log_mel


def _librosa_reference(signal):
    import librosa

    mel = librosa.feature.melspectrogram(y=signal, sr=SAMPLE_RATE, n_fft=512, hop_length=160,
                                         win_length=400, window="hann", center=True,
                                         pad_mode="reflect", power=2.0, n_mels=80, fmin=20.0,
                                         fmax=SAMPLE_RATE / 2)
    reference = np.log(mel + 1e-5 * mel.mean() + 1e-20)  # floor: -50 dB re the segment mean
    return reference - reference.mean()


def test_log_mel_matches_librosa(speechlike):
    signal = speechlike(5.0)

    np.testing.assert_allclose(log_mel(signal), _librosa_reference(signal), atol=1e-4)


def test_log_mel_shapes(speechlike):
    signal = speechlike(5.0)
    single = log_mel(signal)
    batch = log_mel(np.stack([signal, signal[::-1].copy(), 0.5 * signal]))

    assert N_FRAMES == 501  # 10 ms hop over 5 s, centre padded
    assert single.shape == (N_MELS, N_FRAMES) and single.dtype == np.float32
    assert batch.shape == (3, N_MELS, N_FRAMES) and batch.dtype == np.float32
    assert signal.size == SEGMENT_SAMPLES


def test_batch_equals_items(speechlike):
    items = [speechlike(5.0, seed=seed) for seed in range(4)]

    batch = log_mel(np.stack(items))

    for i, item in enumerate(items):
        np.testing.assert_allclose(batch[i], log_mel(item), atol=1e-5)


def test_segment_mean_is_removed(speechlike):
    assert abs(float(log_mel(speechlike(5.0)).mean())) < 1e-4


@pytest.mark.parametrize("gain", [0.01, 0.1, 3.0])
def test_log_mel_is_gain_invariant_for_speech(speechlike, gain):
    signal = speechlike(5.0)

    change = np.abs(log_mel(signal) - log_mel(gain * signal))

    assert change.max() < 1e-3


def test_silence_gives_finite_features():
    silent = log_mel(np.zeros(SEGMENT_SAMPLES, np.float32))

    assert np.isfinite(silent).all()
    assert np.abs(silent).max() < 1e-5


def test_frontend_config_is_json_and_describes_the_code():
    config = frontend_config()

    assert json.loads(json.dumps(config, sort_keys=True)) == config
    assert config["sample_rate"] == SAMPLE_RATE and config["n_mels"] == N_MELS


@pytest.mark.parametrize("name, value", [("N_FFT", 1024), ("HOP_LENGTH", 200),
                                         ("N_MELS", 64), ("F_MIN", 0.0),
                                         ("LOG_FLOOR", 1e-4)])
def test_frontend_hash_follows_the_constants(monkeypatch, name, value):
    before = frontend_hash()
    assert before == frontend_hash() and len(before) == 16  # stable between calls

    monkeypatch.setattr(features, name, value)

    assert frontend_hash() != before


def _activity(signal):
    return float(features.speech_activity(log_mel(np.asarray(signal, np.float32))[None])[0])


def test_speech_activity_separates_speech_from_signals_with_nothing_to_judge(speechlike, rng):
    t = np.arange(SEGMENT_SAMPLES) / SAMPLE_RATE
    voice = speechlike(5.0, seed=2)
    assert _activity(voice) > 0.3
    assert _activity(voice + 0.5) == pytest.approx(_activity(voice))  # DC offset is ignored
    assert _activity(voice * 1e-3) == pytest.approx(_activity(voice))  # level-independent
    nothing = {"digital silence": np.zeros(SEGMENT_SAMPLES),
               "white noise": 0.05 * rng.standard_normal(SEGMENT_SAMPLES),
               "mains hum": 0.2 * np.sign(np.sin(2 * np.pi * 50 * t)),
               "a steady tone in hiss": 0.1 * np.sin(2 * np.pi * 440 * t)
               + 0.01 * rng.standard_normal(SEGMENT_SAMPLES)}
    for name, signal in nothing.items():
        assert _activity(signal) < features.MIN_SPEECH_FRACTION, name
    # one word in 5 s of silence still counts as speech: 0.5 s is judged
    word = np.zeros(SEGMENT_SAMPLES, np.float32)
    word[SAMPLE_RATE:SAMPLE_RATE + SAMPLE_RATE // 2] = voice[:SAMPLE_RATE // 2]
    assert _activity(word) >= features.MIN_SPEECH_FRACTION

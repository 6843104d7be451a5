"""scripts/experiments/frontend_variant.py: front-end settings for an ablation."""

import numpy as np
import pytest

from forensics_scan import features
from project_scripts import load_script

frontend_variant = load_script("scripts/experiments/frontend_variant.py")


@pytest.fixture
def restored_features(monkeypatch):
    """Whatever a test sets in ``features`` is put back afterwards (caches included)."""
    for key in (*frontend_variant.SETTINGS, "_WINDOW_OFFSET"):
        monkeypatch.setattr(features, key, getattr(features, key))
    yield
    features._window.cache_clear()
    features._mel_basis.cache_clear()
    features._speech_bands.cache_clear()


def harmonic_contrast():
    """Median power on a 125 Hz voice's harmonics over that halfway between them."""
    time = np.arange(features.SEGMENT_SAMPLES) / features.SAMPLE_RATE
    voice = sum(np.sin(2 * np.pi * 125 * k * time) for k in range(1, 16))
    power = np.abs(features.stft(voice[None].astype(np.float32))[0]) ** 2
    hz_per_bin = features.SAMPLE_RATE / features.N_FFT
    on, between = power[:, round(250 / hz_per_bin)], power[:, round(312.5 / hz_per_bin)]
    return np.median(on) / np.median(between)


def test_a_longer_window_reaches_the_features_and_resolves_harmonics(restored_features):
    shipped_hash, shipped_contrast = features.frontend_hash(), harmonic_contrast()
    frontend_variant.configure(["WIN_LENGTH=1024", "N_FFT=1024", "LOG_FLOOR=1e-8"])
    assert (features.N_FFT, features.WIN_LENGTH, features._WINDOW_OFFSET) == (1024, 1024, 0)
    assert isinstance(features.N_FFT, int) and features.LOG_FLOOR == 1e-8
    assert features.frontend_hash() != shipped_hash  # a new cache key and checkpoint config
    # the 25 ms window's 160 Hz main lobe lifts harmonics 125 Hz apart only about 14 dB
    # over the gaps between them; 64 ms (62.5 Hz) parts them completely
    assert shipped_contrast < 50
    assert harmonic_contrast() > 1e4 * shipped_contrast


def test_rejects_what_is_not_a_front_end_setting(restored_features):
    for setting in ("log_mel=3", "NOPE=3", "N_MELS=128", "HOP_LENGTH=128"):
        with pytest.raises(SystemExit, match=setting.split("=")[0]):
            frontend_variant.configure([setting])
    assert features.N_MELS == 80 and features.HOP_LENGTH == 160

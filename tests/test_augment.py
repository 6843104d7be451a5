"""Channel augmentation (forensics_scan/augment.py)."""

import numpy as np
import pytest

from forensics_scan import augment
from forensics_scan.features import log_mel


@pytest.mark.parametrize("name", sorted(augment.RAWBOOST_EFFECTS))
def test_effect_keeps_length_and_is_finite_and_changes_the_signal(name, speechlike):
    clean = speechlike(3.0)
    out = augment.RAWBOOST_EFFECTS[name](clean, np.random.default_rng(0))
    assert out.shape == clean.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert np.abs(out - clean).mean() > 1e-5


def test_random_channel_is_reproducible_and_bounded(speechlike):
    clean = speechlike(3.0)
    first = augment.random_channel(clean, np.random.default_rng([0, 7, 1]))
    again = augment.random_channel(clean, np.random.default_rng([0, 7, 1]))
    other = augment.random_channel(clean, np.random.default_rng([0, 8, 1]))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.abs(first).max() <= 1.0


def test_resample_round_trip_removes_the_upper_band(speechlike, rng):
    noise = rng.standard_normal(16000 * 5).astype(np.float32) * 0.1
    out = augment.resample_round_trip(noise, np.random.default_rng(1))
    top = slice(70, 80)  # mel bins well above 6 kHz
    assert log_mel(out)[top].mean() < log_mel(noise)[top].mean() - 3


def test_the_rawboost_set_extends_the_standard_one_which_stays_the_default(speechlike):
    assert set(augment.EFFECTS) < set(augment.RAWBOOST_EFFECTS)
    clean = speechlike(3.0)
    default = augment.random_channel(clean, np.random.default_rng([0, 7, 1]))
    named = augment.random_channel(clean, np.random.default_rng([0, 7, 1]), augment.EFFECTS)
    np.testing.assert_array_equal(default, named)  # the bundled recipe's draws are unchanged
    chosen = {tuple(augment.random_channel(clean, np.random.default_rng([0, k, 1]),
                                           augment.RAWBOOST_EFFECTS)[:50]) for k in range(12)}
    assert len(chosen) == 12


def test_convolutive_distortion_cuts_notches_at_the_clips_level(rng):
    noise = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)
    out = augment.convolutive_distortion(noise, np.random.default_rng(3))
    assert np.sqrt(np.mean(out ** 2)) == pytest.approx(np.sqrt(np.mean(noise ** 2)), rel=1e-3)
    band_db = 10 * np.log10(np.exp(log_mel(out) - log_mel(noise)).mean(axis=1))
    assert band_db.min() < -6  # a white input comes out with deep notches


def test_impulsive_noise_touches_at_most_a_tenth_of_the_samples(speechlike):
    clean = speechlike(3.0)
    for seed in range(5):
        out = augment.impulsive_noise(clean, np.random.default_rng(seed))
        changed = np.mean(out != clean)
        assert changed <= 0.1
        assert np.all(np.abs(out - clean) <= 2 * np.abs(clean) + 1e-6)  # signal-dependent


def test_coloured_noise_sits_10_to_40_db_below_the_clip(speechlike):
    clean = speechlike(3.0)
    for seed in range(5):
        noise = augment.coloured_noise(clean, np.random.default_rng(seed)) - clean
        snr = 10 * np.log10(np.mean(clean ** 2) / np.mean(noise ** 2))
        assert 10 - 0.1 <= snr <= 40 + 0.1

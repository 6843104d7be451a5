"""Channel augmentation (forensics_scan/augment.py)."""

import numpy as np
import pytest

from forensics_scan import augment
from forensics_scan.features import log_mel


@pytest.mark.parametrize("name", sorted(augment.EFFECTS))
def test_effect_keeps_length_and_is_finite_and_changes_the_signal(name, speechlike):
    clean = speechlike(3.0)
    out = augment.EFFECTS[name](clean, np.random.default_rng(0))
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

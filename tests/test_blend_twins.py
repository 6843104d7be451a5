"""Hard-twin makers of scripts/experiments/blend_twins.py: envelope matching."""

import numpy as np
import pytest
from scipy.signal import lfilter

from forensics_scan.audio import SAMPLE_RATE
from project_scripts import load_script

blend_twins = load_script("scripts/experiments/blend_twins.py")


def vowel(formant_hz, noise, seed):
    """1 s of a 150 Hz pulse train (plus white noise) through one formant resonator."""
    rng = np.random.default_rng(seed)
    source = np.zeros(SAMPLE_RATE)
    source[::SAMPLE_RATE // 150] = 1.0
    source += noise * rng.standard_normal(source.size)
    pole = 0.97 * np.exp(2j * np.pi * formant_hz / SAMPLE_RATE)
    voiced = lfilter([1.0], np.poly([pole, pole.conjugate()]).real, source)
    return 0.05 * voiced / np.sqrt(np.mean(voiced ** 2))  # far from clipping


def mean_envelope(audio):
    import librosa

    spec = np.abs(librosa.stft(audio, n_fft=blend_twins.N_FFT, hop_length=blend_twins.HOP))
    return blend_twins.smooth_envelope(np.log(spec + 1e-7), 30)[:, 4:-4].mean(axis=1)


def test_envelope_matching_gives_the_originals_envelope_and_keeps_the_twins_excitation():
    original = vowel(700, noise=0.0, seed=0)
    twin = vowel(2500, noise=0.05, seed=1)  # wrong formant, noisy excitation
    matched = blend_twins.match_envelope(original, twin, 30)
    assert matched.shape == original.shape
    assert blend_twins.rms(matched) == pytest.approx(blend_twins.rms(original), rel=0.01)
    before = np.mean(np.abs(mean_envelope(twin) - mean_envelope(original)))
    after = np.mean(np.abs(mean_envelope(matched) - mean_envelope(original)))
    assert after < before / 2
    # the excitation is still the twin's: its noise floor between the harmonics stays,
    # where the original (a clean pulse train) has none
    def floor(audio):
        spec = np.abs(np.fft.rfft(audio[2000:14000] * np.hanning(12000)))
        return np.percentile(spec, 10) / np.percentile(spec, 99)
    assert floor(matched) > 10 * floor(original)

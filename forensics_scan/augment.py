"""Channel augmentation for training, applied to genuine and synthetic clips alike.

Genuine corpora arrive through phones, codecs and rooms; synthetic training speech is
usually clean. Unless both classes see the same channels, the model can learn "clean
= synthetic" instead of the generator's artefacts. Each function takes and returns
16 kHz mono float32 of the same length and draws its randomness from the generator it
is given, so a training run is reproducible.

Two sets: ``EFFECTS`` (the bundled model's) and ``RAWBOOST_EFFECTS``, which adds the three
distortions of RawBoost (Tak et al., ICASSP 2022): random multi-notch filtering of the
signal and of its powers (a non-linear, frequency-dependent channel), signal-dependent
impulsive noise, and noise coloured by a random multi-notch filter.
"""

import io
from typing import Callable, Dict, Optional

import numpy as np
import soundfile as sf
import soxr
from scipy import signal as sps

from .audio import SAMPLE_RATE

Effect = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def resample_round_trip(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Down to a lower rate and back: removes the band above the new Nyquist."""
    rate = int(rng.choice([8000, 11025, 12000]))
    low = soxr.resample(audio, SAMPLE_RATE, rate, quality="HQ")
    return _same_length(soxr.resample(low, rate, SAMPLE_RATE, quality="HQ"), audio.size)


def telephone_band(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Band-pass around the telephone band, with random edges."""
    low, high = rng.uniform(200, 400), rng.uniform(3000, 3800)
    sos = sps.butter(4, [low, high], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return sps.sosfilt(sos, audio).astype(np.float32)


def mp3_round_trip(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Encode as MP3 at a random quality and decode again (libsndfile's LAME)."""
    buffer = io.BytesIO()
    quality = float(rng.uniform(0.3, 0.9))  # 0 = best, 1 = smallest
    sf.write(buffer, audio, SAMPLE_RATE, format="MP3", compression_level=quality)
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32")
    return _same_length(decoded, audio.size)


def ogg_round_trip(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Encode as Ogg Vorbis or Opus at a random quality and decode again."""
    buffer = io.BytesIO()
    subtype = str(rng.choice(["VORBIS", "OPUS"]))
    rate = 48000 if subtype == "OPUS" else SAMPLE_RATE  # Opus only runs at 8-48 kHz rates
    data = soxr.resample(audio, SAMPLE_RATE, rate) if rate != SAMPLE_RATE else audio
    sf.write(buffer, data, rate, format="OGG", subtype=subtype,
             compression_level=float(rng.uniform(0.4, 0.95)))
    buffer.seek(0)
    decoded, read_rate = sf.read(buffer, dtype="float32")
    if read_rate != SAMPLE_RATE:
        decoded = soxr.resample(decoded, read_rate, SAMPLE_RATE)
    return _same_length(decoded, audio.size)


def add_noise(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White or pink-ish noise at 10-40 dB SNR."""
    noise = rng.standard_normal(audio.size).astype(np.float32)
    if rng.random() < 0.5:
        noise = sps.lfilter([1.0], [1.0, -0.95], noise).astype(np.float32)
    return _mix_at_random_snr(audio, noise, rng)


def _mix_at_random_snr(audio: np.ndarray, noise: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
    """``audio`` plus ``noise`` scaled to a random 10-40 dB signal-to-noise ratio, float32."""
    snr_db = rng.uniform(10, 40)
    power = max(float(np.mean(audio ** 2)), 1e-10)
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / max(float(np.mean(noise ** 2)), 1e-12))
    return (audio + noise).astype(np.float32, copy=False)


def reverberate(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room response: exponentially decaying noise."""
    rt60 = rng.uniform(0.15, 0.7)
    n = int(rt60 * SAMPLE_RATE)
    decay = np.exp(-6.9 * np.arange(n) / n)  # -60 dB at rt60
    response = rng.standard_normal(n) * decay
    response[0] = 1.0 / rng.uniform(0.3, 1.0)  # direct path
    wet = sps.fftconvolve(audio, response)[:audio.size]
    return _at_level_of(wet, audio)


def _at_level_of(out: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """``out`` scaled to the RMS level of ``audio``, as float32."""
    return (out * np.sqrt(np.mean(audio ** 2) / max(np.mean(out ** 2), 1e-12))).astype(np.float32)


def _multi_notch(rng: np.random.Generator, bands: int = 5) -> np.ndarray:
    """FIR taps of ``bands`` random band-stop filters in series, peak gain 1 (RawBoost)."""
    taps = np.ones(1)
    for _ in range(bands):
        centre, width = rng.uniform(20, 7900), rng.uniform(100, 1000)
        low, high = max(centre - width / 2, 10.0), min(centre + width / 2, SAMPLE_RATE / 2 - 10)
        length = int(rng.integers(5, 51)) * 2 + 1  # odd: a band-stop FIR needs it
        taps = np.convolve(taps, sps.firwin(length, [low, high], fs=SAMPLE_RATE))
    _, response = sps.freqz(taps, worN=512)
    return taps / max(float(np.abs(response).max()), 1e-9)


def convolutive_distortion(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The clip and its 2nd..5th powers, each through its own random multi-notch filter.

    RawBoost's "linear and non-linear convolutive noise": the powers are 5-20 dB weaker
    than the linear term, so the result is the clip through an unknown channel plus a
    little harmonic distortion. Returned at the clip's RMS level.
    """
    peak = max(float(np.abs(audio).max()), 1e-9)
    x = audio.astype(np.float64) / peak
    out = np.zeros_like(x)
    for power in range(1, 6):
        gain_db = 0.0 if power == 1 else -rng.uniform(5, 20)
        out += 10 ** (gain_db / 20) * sps.lfilter(_multi_notch(rng), [1.0], x ** power)
    return _at_level_of(out - out.mean(), audio)


def impulsive_noise(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Up to 10 % of the samples pushed by up to twice their own value (RawBoost's ISD)."""
    out = audio.astype(np.float32).copy()
    count = int(rng.uniform(0, 0.1) * audio.size)
    where = rng.choice(audio.size, size=count, replace=False) if count else np.zeros(0, int)
    push = (2 * rng.random(count) - 1) * (2 * rng.random(count) - 1) * 2.0
    out[where] += audio[where] * push.astype(np.float32)
    return out


def coloured_noise(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White noise through a random multi-notch filter, at 10-40 dB SNR (RawBoost's SSI)."""
    noise = sps.lfilter(_multi_notch(rng), [1.0], rng.standard_normal(audio.size))
    return _mix_at_random_snr(audio, noise, rng)


EFFECTS: Dict[str, Effect] = {
    "resample": resample_round_trip,
    "telephone": telephone_band,
    "mp3": mp3_round_trip,
    "ogg": ogg_round_trip,
    "noise": add_noise,
    "reverb": reverberate,
}
RAWBOOST_EFFECTS: Dict[str, Effect] = {
    **EFFECTS,
    "convolutive": convolutive_distortion,
    "impulsive": impulsive_noise,
    "coloured_noise": coloured_noise,
}
CHANNEL_SETS: Dict[str, Dict[str, Effect]] = {"standard": EFFECTS, "rawboost": RAWBOOST_EFFECTS}


def random_channel(audio: np.ndarray, rng: np.random.Generator,
                   effects: Optional[Dict[str, Effect]] = None) -> np.ndarray:
    """One or two random effects from ``effects`` (default ``EFFECTS``), then peak-limited
    to [-1, 1]."""
    effects = EFFECTS if effects is None else effects
    names = sorted(effects)
    chosen = rng.choice(names, size=int(rng.integers(1, 3)), replace=False)
    for name in chosen:
        audio = effects[name](audio, rng)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 1.0:
        audio = audio / peak
    return np.nan_to_num(audio).astype(np.float32)


def _same_length(audio: np.ndarray, n: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size >= n:
        return audio[:n]
    return np.pad(audio, (0, n - audio.size))

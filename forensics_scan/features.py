"""Log-Mel front end shared by training and scanning.

The constants below define the features the model was trained on. A checkpoint stores
``frontend_config()`` and refuses to load when it differs from the code (see model.py),
so a change here forces a retrain instead of silently degrading scores.

The features are made level-independent: the log floor is relative to each segment's
mean Mel energy and the mean log energy of the segment is subtracted, so multiplying a
recording by a gain does not move its score (an absolute floor would clamp quiet bands
differently at different levels and let loudness leak into the features).
"""

import hashlib
import json
from functools import lru_cache

import numpy as np

from .audio import SAMPLE_RATE, SEGMENT_SAMPLES, SEGMENT_SECONDS

N_FFT = 512  # 32 ms
WIN_LENGTH = 400  # 25 ms
HOP_LENGTH = 160  # 10 ms
N_MELS = 80
F_MIN = 20.0
F_MAX = SAMPLE_RATE / 2
LOG_FLOOR = 1e-5  # relative to the segment's mean Mel energy: -50 dB
N_FRAMES = 1 + SEGMENT_SAMPLES // HOP_LENGTH  # frames in one segment, centre-padded STFT
_WINDOW_OFFSET = (N_FFT - WIN_LENGTH) // 2  # where librosa centres the window in a frame

assert SEGMENT_SAMPLES % HOP_LENGTH == 0, "segment must hold a whole number of hops"


def frontend_config() -> dict:
    """The front-end settings a checkpoint must agree with."""
    return {
        "sample_rate": SAMPLE_RATE,
        "segment_seconds": SEGMENT_SECONDS,
        "n_fft": N_FFT,
        "win_length": WIN_LENGTH,
        "hop_length": HOP_LENGTH,
        "n_mels": N_MELS,
        "f_min": F_MIN,
        "f_max": F_MAX,
        "log_floor": LOG_FLOOR,
        "normalisation": "relative-floor,subtract-segment-mean",
        "window": "hann",
    }


def frontend_hash() -> str:
    """Short stable digest of ``frontend_config()``, used as a cache key."""
    text = json.dumps(frontend_config(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stft(batch: np.ndarray) -> np.ndarray:
    """Centred, reflect-padded STFT of a (batch, n_samples) array: (batch, frames, bins).

    complex64; ``WIN_LENGTH``-sample Hann windows every ``HOP_LENGTH`` samples, each
    zero-padded to ``N_FFT`` with the window in the middle, as librosa frames it.
    """
    batch = batch.astype(np.float32, copy=False)
    padded = np.pad(batch, ((0, 0), (N_FFT // 2, N_FFT // 2)), mode="reflect")
    n_frames = 1 + (padded.shape[1] - N_FFT) // HOP_LENGTH
    # Only the WIN_LENGTH samples under the window are framed: the rest of each N_FFT
    # frame is zero, and a circular shift of the frame leaves the power spectrum as is.
    windows = np.lib.stride_tricks.sliding_window_view(
        padded[:, _WINDOW_OFFSET:], WIN_LENGTH, axis=1)[:, ::HOP_LENGTH][:, :n_frames]
    return _rfft()(windows * _window(), n=N_FFT, axis=-1, overwrite_x=True)


def log_mel(segments: np.ndarray) -> np.ndarray:
    """Level-normalised log-Mel spectrogram of one or more segments.

    Parameters
    ----------
    segments : np.ndarray, shape (n_samples,) or (batch, n_samples)
        16 kHz mono audio, float32.

    Returns
    -------
    np.ndarray, shape (N_MELS, n_frames) or (batch, N_MELS, n_frames), float32
        ``log(mel + LOG_FLOOR * mean(mel))`` minus its mean over the segment.
    """
    single = segments.ndim == 1
    spectrum = stft(np.atleast_2d(segments))
    power = spectrum.real ** 2 + spectrum.imag ** 2  # (batch, frames, bins), float32
    mel = np.matmul(_mel_basis(), power.transpose(0, 2, 1))  # (batch, mels, frames)
    mel += LOG_FLOOR * mel.mean(axis=(1, 2), keepdims=True) + np.float32(1e-20)
    logmel = np.log(mel, out=mel)
    logmel -= logmel.mean(axis=(1, 2), keepdims=True)
    return logmel[0] if single else logmel


# A segment is judged only when its energy moves like speech: at least
# MIN_SPEECH_FRACTION of its frames rise SPEECH_RISE_DB above the segment's own floor
# (the 10th percentile of its frame energies). Digital silence, steady noise, hum and a
# dropped line stay flat and are reported as "no speech" instead of being guessed at.
# Only the Mel bands between SPEECH_BAND_HZ count, so DC offset, mains hum and hiss
# cannot swamp the energy of the voice.
SPEECH_RISE_DB = 6.0
MIN_SPEECH_FRACTION = 0.05  # 0.25 s of a 5 s segment
SPEECH_BAND_HZ = (200.0, 4000.0)


def speech_activity(features: np.ndarray) -> np.ndarray:
    """Share of frames whose energy rises ``SPEECH_RISE_DB`` above the segment's floor.

    Parameters
    ----------
    features : np.ndarray, shape (batch, N_MELS, n_frames)
        ``log_mel`` output. The measure is relative to each segment, so it is as
        level-independent as the features themselves.

    Returns
    -------
    np.ndarray, shape (batch,), float
        In [0, 1]; below ``MIN_SPEECH_FRACTION`` means there is nothing to judge.
    """
    features = np.asarray(features, dtype=np.float32)[:, _speech_bands()]
    peak = features.max(axis=1, keepdims=True)
    energy = (peak + np.log(np.exp(features - peak).sum(axis=1, keepdims=True)))[:, 0]
    floor = np.percentile(energy, 10, axis=1, keepdims=True)
    rise = SPEECH_RISE_DB / 10 * np.log(10)  # decibels of power to nats
    return (energy - floor > rise).mean(axis=1)


@lru_cache(maxsize=1)
def _speech_bands() -> slice:
    centres = _mel_to_hz(np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(F_MAX), N_MELS + 2))[1:-1]
    inside = np.flatnonzero((centres >= SPEECH_BAND_HZ[0]) & (centres <= SPEECH_BAND_HZ[1]))
    return slice(int(inside[0]), int(inside[-1]) + 1)


@lru_cache(maxsize=1)
def _rfft():
    # scipy's pocketfft transforms float32 frames about 3 times faster than numpy.fft;
    # imported on first use (a quarter of a second) so that a cached scan skips it
    from scipy.fft import rfft

    return rfft


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    # periodic Hann of WIN_LENGTH, as librosa.stft centres it in an N_FFT frame
    return np.hanning(WIN_LENGTH + 1)[:-1].astype(np.float32)


@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    """Slaney-style Mel filterbank, shape (N_MELS, 1 + N_FFT // 2), float32.

    Equal to ``librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS,
    fmin=F_MIN, fmax=F_MAX)`` (htk=False, norm="slaney"; checked by a test), written
    out so that scanning does not import librosa (about a second per process).
    """
    bins = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(F_MAX), N_MELS + 2))
    widths = np.diff(edges)
    distance = edges[:, None] - bins[None, :]  # (N_MELS + 2, bins)
    rising = -distance[:-2] / widths[:-1, None]
    falling = distance[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # equal area per filter
    return weights.astype(np.float32)


# Slaney's Mel scale: linear below 1 kHz, logarithmic above
_MEL_LINEAR_HZ = 200.0 / 3
_MEL_KNEE_HZ = 1000.0
_MEL_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz):
    hz = np.asanyarray(hz, dtype=np.float64)
    linear = hz / _MEL_LINEAR_HZ
    knee = _MEL_KNEE_HZ / _MEL_LINEAR_HZ
    logarithmic = knee + np.log(np.maximum(hz, _MEL_KNEE_HZ) / _MEL_KNEE_HZ) / _MEL_LOG_STEP
    return np.where(hz >= _MEL_KNEE_HZ, logarithmic, linear)


def _mel_to_hz(mel):
    mel = np.asanyarray(mel, dtype=np.float64)
    knee = _MEL_KNEE_HZ / _MEL_LINEAR_HZ
    linear = mel * _MEL_LINEAR_HZ
    logarithmic = _MEL_KNEE_HZ * np.exp(_MEL_LOG_STEP * (np.maximum(mel, knee) - knee))
    return np.where(mel >= knee, logarithmic, linear)

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
    batch = np.atleast_2d(segments).astype(np.float32, copy=False)
    padded = np.pad(batch, ((0, 0), (N_FFT // 2, N_FFT // 2)), mode="reflect")
    n_frames = 1 + (padded.shape[1] - N_FFT) // HOP_LENGTH
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=1)[:, ::HOP_LENGTH]
    frames = frames[:, :n_frames] * _window()
    power = np.abs(np.fft.rfft(frames, n=N_FFT, axis=-1)) ** 2  # (batch, frames, bins)
    mel = np.matmul(power.astype(np.float32), _mel_basis().T)  # (batch, frames, mels)
    floor = LOG_FLOOR * mel.mean(axis=(1, 2), keepdims=True) + np.float32(1e-20)
    logmel = np.log(mel + floor)
    logmel -= logmel.mean(axis=(1, 2), keepdims=True)
    logmel = np.ascontiguousarray(logmel.transpose(0, 2, 1), dtype=np.float32)
    return logmel[0] if single else logmel


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    # a WIN_LENGTH Hann window centred in an N_FFT frame, as librosa.stft does
    window = np.hanning(WIN_LENGTH + 1)[:-1].astype(np.float32)
    left = (N_FFT - WIN_LENGTH) // 2
    return np.pad(window, (left, N_FFT - WIN_LENGTH - left))


@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    import librosa  # deferred: importing librosa costs about a second

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN,
                               fmax=F_MAX).astype(np.float32)

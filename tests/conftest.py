"""Shared fixtures: seeded synthetic signals, audio writers and a tiny checkpoint.

Everything here is hermetic: no network, no bundled model, no sample files. Signals
come from seeded generators so that every run sees the same samples.
"""

from functools import lru_cache

import numpy as np
import pytest
import soundfile as sf

from forensics_scan.audio import SAMPLE_RATE

TINY_ARCH = {"stem": 4, "blocks": [4, 4], "pool": [True, True]}


def make_speechlike(seconds: float, sr: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """A voiced-speech stand-in: harmonics of a wandering F0, syllable-rate envelope, noise.

    Returns float32 samples, shape (round(seconds * sr),), peak about 0.3, no exact zeros.
    A fresh copy each call: tests may modify it.
    """
    return _speechlike(float(seconds), int(sr), int(seed)).copy()


@lru_cache(maxsize=64)  # many tests ask for the same few signals
def _speechlike(seconds: float, sr: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 2.3 * t + 1.0)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = np.zeros(n)
    for k in range(1, 40):
        if k * 160 < 0.45 * sr:  # stay below Nyquist at the highest F0
            voiced += np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k
    envelope = 0.15 + 0.85 * np.sin(np.pi * 3.1 * t) ** 2  # about 6 syllables a second
    signal = voiced * envelope
    signal = 0.3 * signal / max(np.abs(signal).max(), 1e-9) if n else signal
    signal = signal + 0.003 * rng.standard_normal(n)
    return signal.astype(np.float32)


def write_wav(path, data, sr: int = SAMPLE_RATE, subtype: str = "PCM_16") -> str:
    """Write ``data`` (frames,) or (frames, channels) with soundfile; returns the path."""
    sf.write(str(path), data, sr, subtype=subtype)
    return str(path)


def write_damaged_mp3(path) -> str:
    """A 6 s MP3 with every 251st byte of its last three quarters flipped: libmpg123
    decodes all 6 s but complains of four damaged frames on stderr."""
    sf.write(str(path), make_speechlike(6.0, seed=3), SAMPLE_RATE, format="MP3")
    data = bytearray(path.read_bytes())
    for at in range(len(data) // 4, len(data) - 10, 251):
        data[at] ^= 0xA5
    path.write_bytes(bytes(data))
    return str(path)


@pytest.fixture
def damaged_mp3(tmp_path):
    """Path of ``write_damaged_mp3`` in the test's folder."""
    return write_damaged_mp3(tmp_path / "damaged.mp3")


@pytest.fixture
def rng():
    return np.random.default_rng(20240607)


@pytest.fixture
def speechlike():
    """``speechlike(seconds, sr=16000, seed=0)`` -> float32 speech-like signal."""
    return make_speechlike


@pytest.fixture
def write_audio():
    """``write_audio(path, data, sr=16000, subtype="PCM_16")`` -> path as str."""
    return write_wav


@pytest.fixture
def tiny_arch():
    """Architecture of the tiny test checkpoint (a fresh copy: tests may edit it)."""
    return {key: list(value) if isinstance(value, list) else value
            for key, value in TINY_ARCH.items()}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Path of a small randomly initialised LCNN checkpoint (threshold 0.5).

    Its scores sit near 0.5 for every input: use it for plumbing, identity and
    determinism, not for verdicts about the audio.
    """
    import torch

    from forensics_scan.model import LCNN, save_checkpoint

    torch.manual_seed(0)
    model = LCNN(TINY_ARCH)
    model.eval()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(str(path), model, threshold=0.5, provenance={"test": True})
    return str(path)


def pytest_addoption(parser):
    parser.addoption("--update-screenshot", action="store_true",
                     help="tests/reports/test_html_browser.py writes docs/report.png")

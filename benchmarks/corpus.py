"""Reproducible speech-like benchmark corpus, written block by block.

The signal is a voiced-speech stand-in: harmonics of a wandering F0 shaped by two moving
formants, a syllable-rate envelope with pauses, and a noise floor. It is generated at
16 kHz and resampled with soxr to each file's rate, so a 44.1 or 48 kHz file has no
energy above 8 kHz (like speech recorded through a telephone-band or wideband codec).
Every file is seeded by its name, so the corpus is the same on every machine.

Nothing here needs fscan: the benchmark can build the corpus once and then time any
fscan version against it.
"""

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from typing import Iterator, List

import numpy as np
import soundfile as sf
import soxr

GEN_RATE = 16000
BLOCK_SECONDS = 10.0
CORPUS_VERSION = 1  # bump when the generator changes: a stale corpus is rebuilt


@dataclass(frozen=True)
class Spec:
    """One file of the corpus."""

    path: str  # relative to the corpus folder
    seconds: float
    sample_rate: int
    channels: int
    format: str  # soundfile format name
    subtype: str


def corpus_specs(quick: bool = False) -> List[Spec]:
    """The files of the full (>= 60 min) or quick (~5 min) corpus.

    Full: 40 x 16 kHz mono WAV (3-40 s), 24 x 44.1 kHz stereo FLAC (10-50 s), 16 MP3
    (44.1 kHz mono, 15-60 s) and one 32-minute 48 kHz WAV.
    """
    rng = np.random.default_rng(4 if quick else 20261126)
    counts = (6, 4, 3) if quick else (40, 24, 16)
    long_seconds = 120.0 if quick else 32 * 60.0
    specs = []
    for i, seconds in enumerate(rng.uniform(3, 40, counts[0]).round(2)):
        specs.append(Spec(f"wav16k/clip_{i:03d}.wav", float(seconds), 16000, 1, "WAV", "PCM_16"))
    for i, seconds in enumerate(rng.uniform(10, 50, counts[1]).round(2)):
        specs.append(Spec(f"flac44k/stereo_{i:03d}.flac", float(seconds), 44100, 2, "FLAC",
                          "PCM_16"))
    for i, seconds in enumerate(rng.uniform(15, 60, counts[2]).round(2)):
        specs.append(Spec(f"mp3/talk_{i:03d}.mp3", float(seconds), 44100, 1, "MP3",
                          "MPEG_LAYER_III"))
    specs.append(Spec("long48k/meeting_48k.wav", long_seconds, 48000, 1, "WAV", "PCM_16"))
    return specs


def long_spec(hours: float = 3.0) -> Spec:
    """The memory-check file: ``hours`` of 22.05 kHz mono FLAC (resampled when scanned)."""
    return Spec(f"long_{hours:g}h_22k.flac", hours * 3600.0, 22050, 1, "FLAC", "PCM_16")


def build(folder: str, specs: List[Spec], log=print) -> dict:
    """Write every missing file of ``specs`` under ``folder``; return the manifest.

    A file that exists with the right duration is kept, so a rerun costs nothing.
    """
    os.makedirs(folder, exist_ok=True)
    manifest_path = os.path.join(folder, "manifest.json")
    manifest = {"version": CORPUS_VERSION, "files": [asdict(spec) for spec in specs],
                "total_seconds": round(sum(spec.seconds for spec in specs), 3)}
    previous = _read_json(manifest_path)
    for spec in specs:
        path = os.path.join(folder, spec.path)
        if previous.get("version") == CORPUS_VERSION and _complete(path, spec):
            continue
        log(f"  writing {spec.path} ({spec.seconds:.0f} s, {spec.sample_rate} Hz, "
            f"{spec.channels} ch, {spec.format})")
        write(path, spec)
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
    return manifest


def write(path: str, spec: Spec) -> None:
    """Stream ``spec`` to ``path`` block by block (memory stays at one block)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = path + ".part"
    seed = int.from_bytes(hashlib.sha256(spec.path.encode()).digest()[:4], "little")
    with sf.SoundFile(temporary, "w", samplerate=spec.sample_rate, channels=spec.channels,
                      format=spec.format, subtype=spec.subtype) as handle:
        for block in blocks(spec, seed):
            handle.write(block)
    os.replace(temporary, path)


def blocks(spec: Spec, seed: int) -> Iterator[np.ndarray]:
    """The file's samples as (frames, channels) float32 blocks at its own rate."""
    rng = np.random.default_rng(seed)
    voice = _Voice(rng)
    total = int(round(spec.seconds * GEN_RATE))
    resampler = None
    if spec.sample_rate != GEN_RATE:
        resampler = soxr.ResampleStream(GEN_RATE, spec.sample_rate, 1, dtype="float32")
    step = int(BLOCK_SECONDS * GEN_RATE)
    wanted = int(round(spec.seconds * spec.sample_rate))
    written = 0
    for start in range(0, total, step):
        mono = voice.next(min(step, total - start))
        last = start + step >= total
        if resampler is not None:
            mono = resampler.resample_chunk(mono, last=last)
        mono = mono[:wanted - written]
        written += mono.size
        if spec.channels == 1:
            yield mono[:, None]
        else:  # a second microphone: attenuated, with its own noise
            other = 0.8 * mono + 0.002 * rng.standard_normal(mono.size).astype(np.float32)
            yield np.stack([mono, other], axis=1)


class _Voice:
    """Stateful speech-like generator: phase, envelope and formants continue across blocks."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.f0 = rng.uniform(95, 210)
        self.rates = rng.uniform(0.3, 0.9), rng.uniform(1.5, 3.0)
        self.syllables_per_s = rng.uniform(3.0, 5.5)
        self.level = rng.uniform(0.1, 0.5)
        self.phase = 0.0
        self.t0 = 0.0
        first = rng.uniform(1.5, 6.0)
        self.pause = (first, first + rng.uniform(0.2, 0.8))  # (start_s, end_s) of the next pause

    def next(self, n: int) -> np.ndarray:
        t = self.t0 + np.arange(n) / GEN_RATE
        slow, fast = self.rates
        f0 = self.f0 * (1 + 0.12 * np.sin(2 * np.pi * slow * t)
                        + 0.04 * np.sin(2 * np.pi * fast * t))
        phase = self.phase + 2 * np.pi * np.cumsum(f0) / GEN_RATE
        formant1 = 500 + 250 * np.sin(2 * np.pi * 1.7 * t)
        formant2 = 1500 + 600 * np.sin(2 * np.pi * 0.9 * t + 1.0)
        voiced = np.zeros(n)
        top = int(3800 // (1.16 * self.f0))  # harmonics stay below 3.8 kHz
        for k in range(1, top + 1):
            frequency = k * f0
            gain = (1 + 3 * np.exp(-((frequency - formant1) / 200) ** 2)
                    + 2 * np.exp(-((frequency - formant2) / 300) ** 2)) / k
            voiced += gain * np.sin(k * phase)
        envelope = np.sin(np.pi * self.syllables_per_s * t) ** 2 * self._pauses(t)
        noise = self.rng.standard_normal(n)
        signal = self.level * (0.08 * voiced * envelope + 0.01 * noise * envelope) + 3e-4 * noise
        self.phase = float(phase[-1]) % (2 * np.pi)
        self.t0 += n / GEN_RATE
        return np.clip(signal, -1, 1).astype(np.float32)

    def _pauses(self, t: np.ndarray) -> np.ndarray:
        # a 0.2-0.8 s pause every 1.5-6 s: speech, not a steady drone
        gate = np.ones_like(t)
        end_t = float(t[-1]) + 1 / GEN_RATE
        while self.pause[0] < end_t:
            start, stop = self.pause
            gate[(t >= start) & (t < stop)] = 0.05
            if stop > end_t:
                break  # the pause goes on in the next block
            gap = self.rng.uniform(1.5, 6.0)
            self.pause = (stop + gap, stop + gap + self.rng.uniform(0.2, 0.8))
        return gate


def _complete(path: str, spec: Spec) -> bool:
    try:
        info = sf.info(path)
    except (RuntimeError, OSError):
        return False
    return (info.samplerate == spec.sample_rate and info.channels == spec.channels
            and abs(info.frames - spec.seconds * spec.sample_rate) < spec.sample_rate)


def _read_json(path: str) -> dict:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}

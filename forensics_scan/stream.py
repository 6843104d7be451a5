"""Live scoring of audio read from a pipe: one verdict per window, as soon as it closes.

``fscan stream`` reads raw 16-bit little-endian PCM (``--rate``, ``--channels``) or a WAV
stream (recognised by its ``RIFF`` header) from standard input, for example::

    ffmpeg -i call.mp3 -f s16le -ac 1 -ar 16000 - | fscan stream --rate 16000

The audio goes through the scanner's own steps: mixed to mono and resampled to 16 kHz
as ``audio.stream_blocks`` does, cut into windows by ``audio.iter_segments`` (so windows
start every ``hop_s`` seconds, a stream that ends between windows gets one last window
aligned to its end, and a stream shorter than one window is tiled), then
``features.log_mel`` and the model. A stream and a file holding the same samples get the
same windows and the same scores.

Latency is measured per window, from the moment its last sample was available (the
read that delivered it returned) to the moment its line was written.
"""

import struct
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator, List, Optional, Sequence

import numpy as np

from .audio import (MIN_SAMPLE_RATE, SAMPLE_RATE, SEGMENT_SECONDS, ChannelMixer, FloatLevel,
                    iter_segments, sanitise)
from .results import FAKE, SegmentScore

READ_SECONDS = 0.1  # most audio one read returns: a window waits at most this for its end
WAVE_FORMATS = {  # (format tag, bits per sample) -> numpy dtype and full-scale value
    (1, 16): ("<i2", 32768.0),
    (1, 32): ("<i4", 2147483648.0),
    (3, 32): ("<f4", 1.0),
}
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # what a WAV writer that cannot seek leaves in the header
# full scales of integer samples: what float samples beyond 1 on a stream are taken to be
INTEGER_RANGES = (2.0 ** 15, 2.0 ** 23, 2.0 ** 31)


class StreamError(Exception):
    """Input that cannot be read as the stream it claims to be (a bad WAV header)."""


@dataclass(frozen=True)
class StreamFormat:
    """How the bytes on the pipe encode audio."""

    sample_rate: int
    channels: int
    dtype: str = "<i2"  # numpy dtype of one sample
    full_scale: float = 32768.0  # sample value that means 1.0
    data_bytes: Optional[int] = None  # audio bytes to read, None: until end of stream

    @property
    def frame_bytes(self) -> int:
        return np.dtype(self.dtype).itemsize * self.channels

    def decode(self, data: bytes) -> np.ndarray:
        """Whole frames of ``data`` as float32 samples, shape (frames, channels)."""
        samples = np.frombuffer(data, dtype=self.dtype).reshape(-1, self.channels)
        return samples.astype(np.float32) / np.float32(self.full_scale)


@dataclass(frozen=True)
class LiveWindow:
    """A scored window and when its last sample became available (``time.perf_counter``)."""

    segment: SegmentScore
    closed_at: float

    def as_dict(self, latency_ms: float) -> dict:
        return {"index": self.segment.index, "start_s": self.segment.start_s,
                "end_s": self.segment.end_s, "score": self.segment.score,
                "verdict": self.segment.verdict, "latency_ms": round(latency_ms, 3)}


class ReadClock:
    """Remembers when the latest read returned, for latency measurement."""

    def __init__(self):
        self.last_read = time.perf_counter()

    def tick(self) -> None:
        self.last_read = time.perf_counter()


def open_stream(handle: BinaryIO, sample_rate: int, channels: int):
    """Read a WAV header if the stream starts with one; else the stream is raw s16le.

    Returns
    -------
    (StreamFormat, bytes)
        The format, and bytes already read that belong to the audio.

    Raises
    ------
    StreamError
        If the stream starts with ``RIFF`` but is not a WAV fscan can read.
    """
    first = _read_exact(handle, 4)
    if first != b"RIFF":
        return StreamFormat(sample_rate, channels), first
    return _read_wav_header(handle), b""


def _read_wav_header(handle: BinaryIO) -> StreamFormat:
    header = _read_exact(handle, 8)
    if len(header) < 8 or header[4:] != b"WAVE":
        raise StreamError("stream starts with RIFF but is not a WAV")
    fmt = None
    while True:
        chunk = _read_exact(handle, 8)
        if len(chunk) < 8:
            raise StreamError("WAV stream ended before its data chunk")
        chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if chunk_id == b"data":
            if fmt is None:
                raise StreamError("WAV stream has no fmt chunk before its data")
            data_bytes = None if size in UNKNOWN_SIZES else size
            return StreamFormat(fmt[0], fmt[1], fmt[2], fmt[3], data_bytes)
        body = _read_exact(handle, size + size % 2)  # chunks are padded to even sizes
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(body)


def _parse_fmt(body: bytes) -> tuple:
    if len(body) < 16:
        raise StreamError("WAV fmt chunk is too short")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]  # first two bytes of the sub-format GUID
    if (tag, bits) not in WAVE_FORMATS:
        raise StreamError(f"unsupported WAV sample format (tag {tag}, {bits} bits): "
                          "send 16-bit PCM, 32-bit PCM or 32-bit float, or raw s16le")
    if rate <= 0 or channels <= 0:
        raise StreamError(f"invalid WAV header: {rate} Hz, {channels} channels")
    if rate < MIN_SAMPLE_RATE:
        raise StreamError(f"WAV header says {rate:,} Hz: too slow to carry speech "
                          f"(at least {MIN_SAMPLE_RATE:,} Hz)")
    dtype, full_scale = WAVE_FORMATS[(tag, bits)]
    return rate, channels, dtype, full_scale


def _read_exact(handle: BinaryIO, size: int) -> bytes:
    parts, missing = [], size
    while missing > 0:
        part = handle.read(missing)
        if not part:
            break
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


def pcm_blocks(handle: BinaryIO, fmt: StreamFormat, clock: ReadClock,
               first: bytes = b"") -> Iterator[np.ndarray]:
    """Yield the stream as 16 kHz mono float32 blocks, each as soon as it was read.

    Reads return whatever the pipe holds, up to ``READ_SECONDS`` of audio, so a live
    source is never waited on for more than it has sent. ``clock`` is ticked after
    every read. A trailing partial frame at the end of the stream is dropped.

    Float samples beyond full scale (integer-range values sent as floats) are scaled down
    as a file's are, but a stream cannot be read ahead for its level (``audio.FloatLevel``)
    and its gain must not move with the loudness of what was read so far. So once the
    samples read go beyond 1, the stream is taken to carry the integer range that covers
    them (16, 24 or 32 bits, ``INTEGER_RANGES``) and is scaled by it from then on.
    """
    read = getattr(handle, "read1", handle.read)  # read1: do not wait to fill the buffer
    chunk_bytes = max(int(fmt.sample_rate * READ_SECONDS) * fmt.frame_bytes, fmt.frame_bytes)
    resampler = None
    if fmt.sample_rate != SAMPLE_RATE:
        import soxr

        resampler = soxr.ResampleStream(fmt.sample_rate, SAMPLE_RATE, 1, dtype="float32",
                                        quality="HQ")
    mixer = ChannelMixer(min_frames=fmt.sample_rate // 4)
    level = FloatLevel() if fmt.full_scale == 1.0 else None
    scale = 1.0
    remaining = fmt.data_bytes
    pending = first
    while True:
        wanted = chunk_bytes if remaining is None else min(chunk_bytes, remaining)
        data = read(wanted) if wanted > 0 else b""
        clock.tick()
        pending += data
        if remaining is not None:
            remaining -= len(data)
        usable = len(pending) - len(pending) % fmt.frame_bytes
        ended = not data
        frames = fmt.decode(pending[:usable])
        mono = mixer(frames, last=ended)
        if level is not None:
            level.add(frames)
            scale = max(scale, _integer_range(level.value))
            if scale != 1.0:
                mono = mono * np.float32(1.0 / scale)
        mono = sanitise(mono)
        pending = pending[usable:]
        if resampler is not None:
            mono = resampler.resample_chunk(mono, last=ended)
        if mono.size:
            yield sanitise(mono)
        if ended:
            return


def _integer_range(level: float) -> float:
    """The least of INTEGER_RANGES that covers ``level`` (1 stays 1, beyond all: itself)."""
    if level <= 1.0:
        return 1.0
    return next((full for full in INTEGER_RANGES if full >= level), level)


def score_windows(blocks: Iterator[np.ndarray], score: Callable[[np.ndarray], np.ndarray],
                  threshold: float, clock: ReadClock,
                  hop_s: float = SEGMENT_SECONDS) -> Iterator[LiveWindow]:
    """Score each ``SEGMENT_SECONDS`` window of ``blocks`` as soon as it is complete.

    Parameters
    ----------
    blocks : iterator of np.ndarray
        16 kHz mono float32 audio, e.g. from ``pcm_blocks``.
    score : callable
        Maps log-Mel features, shape (batch, N_MELS, N_FRAMES), to probabilities,
        shape (batch,): an engine scorer's ``score``.
    threshold : float
        Score at or above which a window is FAKE.
    clock : ReadClock
        Ticked by the reader; gives each window's ``closed_at``.
    hop_s : float
        Seconds between window starts.
    """
    from .features import log_mel
    from .scan import judged, segment_score

    for index, (start_s, end_s, samples) in enumerate(iter_segments(blocks, hop_s)):
        closed_at = clock.last_read  # the read that completed this window
        features = log_mel(samples[np.newaxis])
        value = float(judged(score(features), features)[0])
        segment = segment_score(index, round(start_s, 6), round(end_s, 6), value, threshold)
        yield LiveWindow(segment, closed_at)


def latency_summary(latencies_ms: Sequence[float]) -> dict:
    """Median, 95th percentile and maximum of per-window latencies, in milliseconds."""
    if not latencies_ms:
        return {"windows": 0, "median_ms": None, "p95_ms": None, "max_ms": None}
    values = np.asarray(latencies_ms, dtype=np.float64)
    return {"windows": int(values.size),
            "median_ms": round(float(np.median(values)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
            "max_ms": round(float(values.max()), 2)}


def warm_up(score: Callable[[np.ndarray], np.ndarray]) -> None:
    """Score one window of noise so that the first real window does not pay for
    lazy initialisation (kernel selection, memory pools) in its latency."""
    from .audio import SEGMENT_SAMPLES
    from .features import log_mel

    noise = np.random.default_rng(0).standard_normal(SEGMENT_SAMPLES).astype(np.float32) * 0.1
    score(log_mel(noise[np.newaxis]))


class LatencyLog:
    """Collects per-window latencies: the time from a window's close to its line written."""

    def __init__(self):
        self.values_ms: List[float] = []

    def record(self, window: LiveWindow) -> None:
        self.values_ms.append((time.perf_counter() - window.closed_at) * 1000.0)

    def summary(self) -> dict:
        return latency_summary(self.values_ms)


def run_stream(handle: BinaryIO, score: Callable[[np.ndarray], np.ndarray], threshold: float,
               emit: Callable[[dict], None], sample_rate: int = SAMPLE_RATE, channels: int = 1,
               hop_s: float = SEGMENT_SECONDS) -> dict:
    """Read ``handle`` to its end, calling ``emit(window_dict)`` for each scored window.

    ``window_dict`` is ``LiveWindow.as_dict``: index, start_s, end_s, score, verdict and
    ``latency_ms`` up to the moment the dictionary is made. The latencies summarised in
    the return value run until ``emit`` returned, i.e. until the line was written.

    Returns
    -------
    dict
        ``windows``, ``flagged`` and ``latency`` (see ``latency_summary``).

    Raises
    ------
    StreamError
        If the stream starts like a WAV file that cannot be read.
    """
    log = LatencyLog()
    flagged = 0
    with one_thread():
        warm_up(score)
        fmt, first = open_stream(handle, sample_rate, channels)
        clock = ReadClock()
        blocks = pcm_blocks(handle, fmt, clock, first)
        for window in score_windows(blocks, score, threshold, clock, hop_s):
            emit(window.as_dict((time.perf_counter() - window.closed_at) * 1000.0))
            log.record(window)
            flagged += window.segment.verdict == FAKE
    return {"windows": len(log.values_ms), "flagged": flagged, "latency": log.summary()}


@contextmanager
def one_thread() -> Iterator[None]:
    """Run BLAS and torch kernels on the calling thread only.

    One window is too little work to share between threads: a thread pool only adds
    hand-offs, and on a busy machine each hand-off waits for a free core. Measured on
    the project's loaded 2-core machine: 285 ms per window with torch's default two
    threads, 4 ms with one.
    """
    from .scan import blas_one_thread, torch_one_thread

    with blas_one_thread(), torch_one_thread():  # torch only if the engine loaded it
        yield

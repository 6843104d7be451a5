"""Decode audio files into 16 kHz mono float32 blocks and cut them into 5 s segments.

Everything downstream (features, model, training) sees audio only through this
module, so the sample rate and segment length below are the single source of truth.

Decoding streams: a file is read in blocks of ``BLOCK_SECONDS`` and resampled with a
streaming resampler, so a multi-hour recording never sits in memory whole.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator, List, Optional, Tuple

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
SEGMENT_SECONDS = 5.0
SEGMENT_SAMPLES = int(SAMPLE_RATE * SEGMENT_SECONDS)
BLOCK_SECONDS = 60.0  # decode granularity for long files; a multiple of the segment length
BLOCK_SAMPLES = int(SAMPLE_RATE * BLOCK_SECONDS)
MIN_SAMPLES = int(0.1 * SAMPLE_RATE)  # below this there is nothing to judge
# a recording sampled slower than this keeps no speech band worth judging (under 2 kHz of
# bandwidth; the telephone keeps 3.4 kHz at 8 kHz): a header with such a rate is most
# likely wrong, and scoring it would judge noise stretched to fit
MIN_SAMPLE_RATE = 4000
# a decoded block never holds more values than this (16 MB of float32), so a many-channel
# or high-rate file is read in blocks shorter than BLOCK_SECONDS
MAX_BLOCK_VALUES = 2 ** 22
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")  # libsndfile sample formats that can exceed full scale
OUTLIER_SHARE = 1e-4  # this share of a float file's samples may lie beyond its level
# Bump when a change here alters what decoding some file gives: the scan's cache keys on
# it. 2: float files beyond full scale are scaled down, no longer clipped. 3: the MP3
# decoder's complaints are kept (DecoderLog) and cached with the file's scores. 4: a
# channel in antiphase with the first is inverted before mixing (ChannelMixer). 5: a float
# file's level is kept with its scores (DecoderLog.level), so a cached file is not read.
DECODE_VERSION = 5
# a line libmpg123 (libsndfile's MP3 decoder) prints on stderr about a damaged stream, e.g.
# "[src/libmpg123/layer3.c:INT123_do_layer3():1804] error: dequantization failed!" or
# "Note: Illegal Audio-MPEG-Header 0x00000000 at offset 4242."; group 1: the message
_DECODER_LINE = re.compile(r"^(?:\[src/libmpg123/[^\]]*\] )?((?:note|warning|error): .*)$",
                           re.IGNORECASE)
_STDERR = threading.Lock()  # one process has one fd 2: one capture at a time
_capture = {}  # process id -> its temporary file for decoder_output, made on first use

assert SEGMENT_SAMPLES == SAMPLE_RATE * SEGMENT_SECONDS, "segment must be a whole number of samples"
assert BLOCK_SAMPLES % SEGMENT_SAMPLES == 0, "blocks must hold whole segments"


class DecodeError(Exception):
    """A file that has an audio extension but cannot be turned into samples."""


@dataclass
class DecoderLog:
    """What reading one file ran into, for its report row.

    ``count`` and ``lines``: the decoder's complaints, a count and the first few.
    libmpg123 reports a damaged MP3 frame on stderr and goes on decoding (silence or
    garbage in its place), and the damage itself can sway the score. ``inverted``: the
    channels (1 = the first) that ran against the first and were flipped before mixing
    (``ChannelMixer``). ``level``: what a float file's samples were scaled down by
    (``AudioInfo.level``; 1 = nothing).
    """

    count: int = 0
    lines: List[str] = field(default_factory=list)
    inverted: List[int] = field(default_factory=list)
    level: float = 1.0

    KEEP = 3  # lines kept; the count goes on

    def add(self, line: str) -> None:
        self.count += 1
        if len(self.lines) < self.KEEP:
            self.lines.append(line)


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file before it is decoded."""

    sample_rate: int
    channels: int
    frames: Optional[int]  # None when the decoder cannot tell in advance
    format: str
    decoder: str
    # float files only: see probe; 1 = within full scale, None = not read yet
    level: Optional[float] = 1.0

    @property
    def gain(self) -> float:
        """Factor that brings a float file's samples back within full scale (else 1)."""
        if self.level is None:
            raise ValueError("the level of this float file was not read (see probe)")
        return 1.0 / self.level

    @property
    def duration_s(self) -> Optional[float]:
        return None if self.frames is None else self.frames / self.sample_rate


def probe(path: str, log: Optional[DecoderLog] = None, read_level: bool = True) -> AudioInfo:
    """Read the header of ``path``; decode nothing unless its samples are floats.

    A float WAV (or AIFF, CAF, W64) may hold samples far beyond full scale: a pipeline
    that wrote int16-range values as floats gives peaks near 32768. Clipping those to
    [-1, 1] would turn speech into a square wave, so float files are read once ahead for
    their ``level`` (see ``_float_level``), and ``stream_blocks`` scales them down by
    ``AudioInfo.gain``. A few wild samples (a damaged block) do not set the level: they
    are clipped, and the rest of the file keeps its scale. With ``read_level`` False that
    read is put off (``level`` None) until ``stream_blocks`` decodes the file, so a caller
    that may find the file's scores in a cache does not pay for it. What the decoder prints
    about damage while the header is read goes to ``log`` (see ``decoder_output``).

    Raises
    ------
    DecodeError
        If neither libsndfile nor ffmpeg can open the file.
    """
    if os.path.getsize(path) == 0:
        raise DecodeError("empty file (0 bytes)")
    try:
        with decoder_output(log):
            info = sf.info(os.fsencode(path))  # bytes: names that are not UTF-8 open too
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        if _ffmpeg() is None:
            # libsndfile's own words, without its "Error opening b'<path>':" prefix
            reason = getattr(error, "error_string", None) or _first_line(error)
            if "does not exist" in reason and os.path.isfile(path):
                reason = "format not recognised"  # libsndfile's words for undecodable MP3
            raise DecodeError(f"unsupported or corrupt audio ({reason}); "
                              "install ffmpeg to read more formats") from error
        return AudioInfo(SAMPLE_RATE, 1, None, _extension(path), "ffmpeg")
    if info.samplerate <= 0 or info.channels <= 0:
        raise DecodeError(f"invalid header: {info.samplerate} Hz, {info.channels} channels")
    level: Optional[float] = 1.0
    if info.subtype in FLOAT_SUBTYPES:
        level = _float_level(path, info.samplerate, info.channels) if read_level else None
    return AudioInfo(info.samplerate, info.channels, info.frames, info.format, "soundfile",
                     level)


def _float_level(path: str, sample_rate: int, channels: int) -> float:
    """The level of a float file: one read, block by block (see ``FloatLevel``)."""
    level = FloatLevel()
    for block in _soundfile_blocks(path, sample_rate, channels):
        level.add(block)
    return level.value


class FloatLevel:
    """The least power of two (at least 1) that all but OUTLIER_SHARE of the samples seen
    so far stay under.

    Samples are counted by binary exponent, so adding a block costs no sorting and the
    whole history is 130 counters. A file's level is read ahead from all its samples; a
    stream is scaled by the integer range that covers the level of what it has read so
    far (``stream.pcm_blocks``).
    """

    def __init__(self):
        self.beyond = np.zeros(130, np.int64)  # beyond[e]: samples in [2^(e-1), 2^e), e >= 1
        self.total = 0

    def add(self, block: np.ndarray) -> None:
        magnitudes = np.abs(block[np.isfinite(block)])
        self.total += magnitudes.size
        _, exponents = np.frexp(magnitudes[magnitudes > 1.0])
        self.beyond += np.bincount(exponents, minlength=self.beyond.size)[:self.beyond.size]

    @property
    def value(self) -> float:
        allowed = OUTLIER_SHARE * self.total
        above = np.cumsum(self.beyond[::-1])[::-1]  # above[e]: samples >= 2^(e-1)
        size = self.beyond.size
        power = next(e for e in range(size) if e + 1 >= size or above[e + 1] <= allowed)
        return float(2.0 ** power)


def stream_blocks(path: str, block_samples: int = BLOCK_SAMPLES,
                  info: Optional[AudioInfo] = None, log: Optional[DecoderLog] = None
                  ) -> Iterator[np.ndarray]:
    """Yield the file as consecutive 16 kHz mono float32 blocks of ``block_samples``.

    The last block may be shorter. A float file whose samples go beyond full scale is
    first scaled down by ``info.gain`` (its peak becomes 1). Non-finite samples are then
    replaced by zeros and samples clipped to [-1, 1], so a damaged float file cannot
    produce a NaN score. Channels are mixed by a ``ChannelMixer``. ``info`` is
    ``probe(path)`` when the caller already has it; the decoder's complaints about damage
    and the channels the mixer flipped go to ``log``.
    """
    info = info or probe(path, log)
    if info.level is None:
        info = replace(info, level=_float_level(path, info.sample_rate, info.channels))
    if log is not None:
        log.level = info.level
    if info.decoder == "ffmpeg":
        raw = _ffmpeg_blocks(path)
    else:
        raw = _soundfile_blocks(path, info.sample_rate, info.channels, log)
    resampler = None
    if info.sample_rate != SAMPLE_RATE:
        resampler = soxr.ResampleStream(info.sample_rate, SAMPLE_RATE, 1, dtype="float32",
                                        quality="HQ")
    mixer = ChannelMixer(min_frames=info.sample_rate // 4)
    pending: List[np.ndarray] = []
    pending_len = 0
    for block, last in _with_last(raw):
        mono = mixer(block, last)
        if log is not None:
            log.inverted = mixer.inverted
        if info.gain != 1.0:
            mono = mono * np.float32(info.gain)
        mono = sanitise(mono)  # before resampling: a NaN would smear
        if resampler is not None:
            mono = resampler.resample_chunk(mono, last=last)
        if mono.size:
            pending.append(mono)
            pending_len += mono.size
        while pending_len >= block_samples:
            joined = np.concatenate(pending)
            yield sanitise(joined[:block_samples])
            pending = [joined[block_samples:]]
            pending_len = pending[0].size
    if pending_len:
        yield sanitise(np.concatenate(pending))


def capped_blocks(blocks: Iterable[np.ndarray], max_samples: Optional[int]
                  ) -> Iterator[Tuple[np.ndarray, bool]]:
    """``(block, cut)`` pairs of ``blocks`` up to ``max_samples`` samples in all.

    The block that crosses the cap is cut short and the blocks after it are never
    decoded; ``cut`` is True on the last pair when audio was left out (that block may
    then be empty). ``max_samples`` None passes everything through.
    """
    total = 0
    for block in blocks:
        if max_samples is not None and total + block.size > max_samples:
            yield block[:max_samples - total], True
            return
        total += block.size
        yield block, False


def load_audio(path: str, max_seconds: Optional[float] = None) -> np.ndarray:
    """Decode a whole file (or its first ``max_seconds``) to 16 kHz mono float32.

    Meant for short clips (training, tests); the scanner streams with ``stream_blocks``.
    """
    limit = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)
    blocks = [block for block, _ in capped_blocks(stream_blocks(path), limit)]
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


def segment_starts(n_samples: int, hop_s: float = SEGMENT_SECONDS) -> List[int]:
    """Start samples of the segments that cover ``n_samples`` of audio.

    Segments are ``SEGMENT_SECONDS`` long and start every ``hop_s`` seconds. When the
    audio does not end on a segment boundary, one last segment is aligned to the end of
    the file (it overlaps its predecessor) so that every second is scored from real
    samples and no segment is ever padded. A clip shorter than one segment yields a
    single segment starting at 0 (see ``fit_segment``).
    """
    hop = int(round(hop_s * SAMPLE_RATE))
    if hop <= 0:
        raise ValueError("hop must be positive")
    if n_samples <= SEGMENT_SAMPLES:
        return [0]
    starts = list(range(0, n_samples - SEGMENT_SAMPLES + 1, hop))
    if starts[-1] + SEGMENT_SAMPLES < n_samples:
        starts.append(n_samples - SEGMENT_SAMPLES)
    return starts


def fit_segment(audio: np.ndarray) -> np.ndarray:
    """Return exactly ``SEGMENT_SAMPLES`` samples, tiling a short clip end to end.

    Zero padding would let the model read a clip's duration from the length of the
    silent tail (the original design learned exactly that); repeating the speech keeps
    every frame of the segment speech-like, whatever the clip length.
    """
    if audio.size == 0:
        raise ValueError("cannot fit an empty clip")
    if audio.size >= SEGMENT_SAMPLES:
        return audio[:SEGMENT_SAMPLES]
    repeats = -(-SEGMENT_SAMPLES // audio.size)
    return np.tile(audio, repeats)[:SEGMENT_SAMPLES]


def iter_segments(blocks: Iterator[np.ndarray], hop_s: float = SEGMENT_SECONDS
                  ) -> Iterator[tuple]:
    """Cut a stream of blocks into ``(start_s, end_s, samples)`` segments.

    Works on a stream, so memory stays bounded by one block plus one segment. The
    segment layout equals ``segment_starts`` applied to the whole signal.
    """
    hop = int(round(hop_s * SAMPLE_RATE))
    if hop <= 0:
        raise ValueError("hop must be positive")  # a zero hop would never advance
    buffer = np.zeros(0, np.float32)
    offset = 0  # absolute sample index of buffer[0]
    next_start = 0
    total = 0
    last_start = None
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        total += block.size
        while next_start + SEGMENT_SAMPLES <= offset + buffer.size:
            local = next_start - offset
            yield (next_start / SAMPLE_RATE, (next_start + SEGMENT_SAMPLES) / SAMPLE_RATE,
                   buffer[local:local + SEGMENT_SAMPLES])
            last_start = next_start
            next_start += hop
        # keep only what a future segment (including an end-aligned one) can need
        keep_from = min(next_start, max(total - SEGMENT_SAMPLES, 0)) - offset
        if keep_from > 0:
            buffer = buffer[keep_from:]
            offset += keep_from
    if total == 0:
        return
    if last_start is None:
        yield 0.0, total / SAMPLE_RATE, fit_segment(buffer)
    elif last_start + SEGMENT_SAMPLES < total:
        start = total - SEGMENT_SAMPLES
        local = start - offset
        yield start / SAMPLE_RATE, total / SAMPLE_RATE, buffer[local:local + SEGMENT_SAMPLES]


def _soundfile_blocks(path: str, sample_rate: int, channels: int,
                      log: Optional[DecoderLog] = None) -> Iterator[np.ndarray]:
    # read ~BLOCK_SECONDS of source audio at a time, whatever the source rate, unless that
    # would hold more than MAX_BLOCK_VALUES samples (64 channels at 96 kHz: 1.5 GB a block)
    frames_per_block = max(min(int(sample_rate * BLOCK_SECONDS), MAX_BLOCK_VALUES // channels), 1)
    try:
        with decoder_output(log):
            handle = sf.SoundFile(os.fsencode(path))
        with handle:
            # only libmpg123 talks: other formats are read without the capture's lock
            mpeg = handle.format == "MP3"
            while True:
                with decoder_output(log) if mpeg else nullcontext():
                    block = handle.read(frames_per_block, dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                yield block
    except (sf.LibsndfileError, RuntimeError) as error:
        raise DecodeError(f"decoding failed: {_first_line(error)}") from error


def _ffmpeg_blocks(path: str) -> Iterator[np.ndarray]:
    # ffmpeg resamples and downmixes itself: its output is already 16 kHz mono float32
    command = [_ffmpeg(), "-nostdin", "-v", "error", "-i", path, "-map", "0:a:0",
               "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]
    # stderr goes to a file, not a pipe: a damaged stream can log more than a pipe holds
    # while stdout is still being read, and ffmpeg and we would then wait on each other
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        except OSError as error:
            raise DecodeError(f"cannot run ffmpeg: {error.strerror or error}") from error
        try:
            bytes_per_block = BLOCK_SAMPLES * 4
            while True:
                chunk = process.stdout.read(bytes_per_block)
                if not chunk:
                    break
                usable = len(chunk) - len(chunk) % 4
                yield np.frombuffer(chunk[:usable], dtype="<f4").reshape(-1, 1)
            if process.wait() != 0:
                errors.seek(0)
                stderr = errors.read().decode("utf-8", "replace")
                raise DecodeError(f"ffmpeg could not decode the file: {_first_line(stderr)}")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()


@contextmanager
def decoder_output(log: Optional[DecoderLog]) -> Iterator[None]:
    """Keep what C decoders print on stderr while the body runs out of the terminal.

    libmpg123 writes its complaints about damaged MP3 frames straight to file descriptor
    2, where they would tear through the progress bar and name no file. For the length of
    the body (one header read or one block: milliseconds), fd 2 points at a temporary
    file; the lines that look like decoder messages then go to ``log`` (None: dropped),
    and anything else written meanwhile (another thread's output) is passed on to the
    real stderr. Should fd 2 be closed or no temporary file be made, the body runs
    uncaptured. Each process keeps one temporary file for this (emptied after each use):
    the capture costs a few system calls, not a file's creation.
    """
    with _STDERR:
        capture = _capture_file()
        saved = _point_stderr_at(capture)
        try:
            yield
        finally:  # a failed read's last words are sorted out too
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                written = capture.read()
                capture.seek(0)
                capture.truncate()
                _sort_out(written, log)


def _capture_file():
    """This process's temporary file for ``decoder_output`` (None if none can be made);
    a forked child makes its own, since it would share the parent's file position."""
    pid = os.getpid()
    if pid not in _capture:
        try:
            _capture[pid] = tempfile.TemporaryFile()
        except OSError:
            return None
    return _capture[pid]


def _sort_out(written: bytes, log: Optional[DecoderLog]) -> None:
    """Decoder messages in ``written`` to ``log``; the rest back to fd 2 as it came."""
    passed_on = bytearray()
    for line in written.splitlines(keepends=True):
        match = _DECODER_LINE.match(line.decode("utf-8", "replace").strip())
        if match is None:
            passed_on += line
        elif log is not None:
            log.add(match.group(1))
    if passed_on:
        os.write(2, bytes(passed_on))


def _point_stderr_at(capture) -> Optional[int]:
    """Point fd 2 at ``capture``; return a copy of the old fd 2 (None: left as it was)."""
    if capture is None:
        return None
    if sys.stderr is not None:
        try:
            sys.stderr.flush()  # Python's buffered text belongs to the real stderr
        except (OSError, ValueError):
            pass
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all (a daemon): nothing to keep clean
        return None
    os.dup2(capture.fileno(), 2)
    return saved


def _ffmpeg() -> Optional[str]:
    return os.environ.get("FSCAN_FFMPEG") or shutil.which("ffmpeg")


def _with_last(iterator):
    previous = next(iterator, None)
    for item in iterator:
        yield previous, False
        previous = item
    if previous is not None:
        yield previous, True


# a channel whose correlation with the first is below ANTIPHASE is inverted; the polarities
# are set once a quarter of a second shows some channel correlating by SHARED either way
ANTIPHASE, SHARED = -0.5, 0.5


class ChannelMixer:
    """Mixes a file's (frames, channels) blocks to mono, the same way from start to end.

    The mix is the channel average, except that a channel running against the first one
    (correlation under ``ANTIPHASE``: a lead wired in reverse, a track with its polarity
    flipped) is inverted first: averaged as it is, a stereo file whose channels mirror
    each other mixes to digital silence and its speech is lost. Channels that merely
    differ (two microphones, one silent channel) correlate far above that and are
    averaged as they are.

    The correlations are summed block by block, and the polarities set once some channel
    correlates with the first by ``SHARED`` or more, either way (the channels share
    content), over at least ``min_frames`` frames (a quarter of a second) or by the end.
    The first ``min_frames`` are held back until then, so they are mixed like the rest;
    later blocks are plainly averaged while the polarities are unknown, as are files whose
    channels never share content. Shared by file decoding and ``fscan stream``, so both
    mix alike whatever their block sizes.
    """

    def __init__(self, min_frames: int):
        self.min_frames = min_frames
        self.signs: Optional[np.ndarray] = None  # +1 or -1 a channel, once set
        self._frames = 0
        self._products = None  # running sums: first . channel, channel . channel
        self._held: List[np.ndarray] = []

    @property
    def inverted(self) -> List[int]:
        """The channels flipped (1 = the first), in order."""
        return [] if self.signs is None else [int(c) + 1 for c in np.flatnonzero(self.signs < 0)]

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """The mono mix of ``block`` (frames, channels), or of the blocks held back with
        it; empty while they are held. ``last``: the file or stream ends with it."""
        if block.shape[1] == 1:
            return np.ascontiguousarray(block[:, 0], dtype=np.float32)
        if self.signs is None:
            learning = self._frames < self.min_frames
            self._learn(block, last)
            if learning:
                self._held.append(block)
                if self.signs is None and self._frames < self.min_frames and not last:
                    return np.zeros(0, np.float32)
                held, self._held = self._held, []
                return np.concatenate([to_mono(part, self.signs) for part in held])
        return to_mono(block, self.signs)

    def _learn(self, block: np.ndarray, last: bool) -> None:
        self._frames += block.shape[0]
        gram = np.asarray(block.T @ block, dtype=np.float64)  # one BLAS call, milliseconds
        if np.isfinite(gram).all():  # a damaged float block says nothing
            products = np.stack([gram[0], np.diagonal(gram)])
            self._products = products if self._products is None else self._products + products
        if self._products is None or (self._frames < self.min_frames and not last):
            return
        shared, energies = self._products
        norms = np.sqrt(energies[0] * energies)
        correlations = np.divide(shared, norms, out=np.zeros_like(shared), where=norms > 0)
        if np.abs(correlations[1:]).max() >= SHARED:
            self.signs = np.where(correlations < ANTIPHASE, -1.0, 1.0).astype(np.float32)


def to_mono(block: np.ndarray, signs: Optional[np.ndarray] = None) -> np.ndarray:
    """Average of the channels of a (frames, channels) block, float32, each channel
    multiplied by its sign in ``signs`` first (see ``ChannelMixer``)."""
    # the channel average, summed channel by channel: numpy's mean over the short axis
    # of a (frames, channels) block is some 20 times slower, for the same float32 sums
    if block.shape[1] == 1:
        return np.ascontiguousarray(block[:, 0], dtype=np.float32)
    mono = np.array(block[:, 0], dtype=np.float32)
    for channel in range(1, block.shape[1]):
        if signs is not None and signs[channel] < 0:
            mono -= block[:, channel]
        else:
            mono += block[:, channel]
    mono /= np.float32(block.shape[1])
    return mono


def sanitise(audio: np.ndarray) -> np.ndarray:
    """NaN and infinities to silence, samples clipped to [-1, 1], float32."""
    if not np.isfinite(audio).all():  # rare: only damaged float files; the check is cheap
        audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)


def _extension(path: str) -> str:
    return os.path.splitext(path)[1].lstrip(".").upper() or "unknown"


def _first_line(error) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__

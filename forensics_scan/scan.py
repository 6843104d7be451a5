"""Score every segment of every file, in parallel, and aggregate per file.

The calling thread reads the files in order (hash, decode, resample, cut into
segments) and hands fixed batches of ``BATCH_SEGMENTS`` consecutive segments of one
file to ``jobs`` worker threads, which compute the log-Mel features and score them.
Work is shared at the level of batches, not files, so one long recording keeps every
core busy. Batches never mix files and never depend on ``jobs``, and every library runs
one thread per worker, so scores are bit-identical whatever ``--jobs`` is. The heavy
steps (decoding, resampling, FFT, BLAS, torch and ONNX Runtime kernels) release the
GIL; threads avoid starting, importing and loading the model in worker processes.

With a cache folder, each file's features and, per model and engine, its segment
scores are kept under the file's sha256, so a second scan of the same files neither
decodes them nor loads the model. Nothing here prints: the caller passes a
``progress(done, total, path)`` callback.
"""

import math
import os
import threading
import zipfile
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import __version__
from .audio import (DECODE_VERSION, MIN_SAMPLE_RATE, MIN_SAMPLES, SAMPLE_RATE, SEGMENT_SECONDS,
                    DecodeError, DecoderLog, capped_blocks, iter_segments, probe, stream_blocks)
from .checkpoint import file_sha256, read_checkpoint_info
from .engine import ENGINES, open_scorer
from .features import (MIN_SPEECH_FRACTION, N_FRAMES, N_MELS, frontend_hash, log_mel,
                       speech_activity)
from .results import (ERROR, FAKE, NO_SPEECH, OK, REAL, SKIPPED, FileResult, ScanReport,
                      SegmentScore)

BATCH_SEGMENTS = 8  # segments per work item: small batches stay in the CPU caches
FILES_PER_TASK = 8  # files the reader may run ahead of the oldest unfinished one
CACHE_MAX_SEGMENTS = 720  # an hour at the default hop; longer files keep only their scores
BACKENDS = ("threads", "loky", "dask")  # threads: this module; the others: backends.py

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ScanOptions:
    """How to scan. Times in seconds; ``threshold`` None means the checkpoint's."""

    hop_s: float = SEGMENT_SECONDS
    threshold: Optional[float] = None
    jobs: int = -1
    cache_dir: Optional[str] = None
    max_duration_s: Optional[float] = None
    engine: str = "torch"
    backend: str = "threads"
    scheduler: Optional[str] = None  # dask scheduler address, for backend "dask"

    def __post_init__(self):
        if not 1 / SAMPLE_RATE <= self.hop_s <= SEGMENT_SECONDS:
            raise ValueError(f"hop must be between one sample and {SEGMENT_SECONDS} seconds")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ValueError("threshold must be in [0, 1]")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise ValueError("max duration must be positive")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}")


def aggregate(scores: Sequence[float], threshold: float) -> Tuple[float, str]:
    """File score and verdict from segment scores.

    The file score is the **maximum** segment score: a forensic user must not miss a
    synthetic insert inside a long genuine recording, and averaging would dilute it.
    The price is more false alarms on long genuine files (more chances for one segment
    to cross the threshold); the mean is reported beside it for context.
    """
    score = float(max(scores))
    return score, FAKE if score >= threshold else REAL


def scan_paths(paths: Sequence[str], model_path: str, options: ScanOptions = ScanOptions(),
               progress: Optional[Progress] = None) -> List[FileResult]:
    """Scan ``paths`` (audio files) and return one ``FileResult`` per path, in order.

    Raises
    ------
    checkpoint.ModelError
        If the checkpoint cannot be used or the engine cannot run here
        (``engine.EngineError``, a subclass).
    backends.BackendError
        For backend "dask": dask missing, no scheduler, or one that cannot be reached.
    """
    if options.backend != "threads":  # chunks of files as joblib tasks: backends.py
        from .backends import scan_in_chunks

        return scan_in_chunks(paths, model_path, options, progress)
    results: List[FileResult] = []
    checkpoint = read_checkpoint_info(model_path)
    threshold = _threshold(checkpoint, options)
    if progress:
        progress(0, len(paths), "")
    with ExitStack() as stack:
        stack.enter_context(blas_one_thread())
        model = stack.enter_context(_Model(checkpoint, options))
        workers = stack.enter_context(_Workers(model, _effective_jobs(options.jobs)))
        pending: deque = deque()

        def finish(everything: bool) -> None:
            # in input order; the reader stays at most FILES_PER_TASK files ahead
            while pending and (everything or len(pending) > FILES_PER_TASK
                               or pending[0].done()):
                results.append(_finish(pending.popleft(), threshold, options,
                                       model.cache_key))
                if progress:
                    progress(len(results), len(paths), results[-1].path)

        for path in paths:
            pending.append(_read_file(path, options, model.cache_key, workers))
            finish(everything=False)
        finish(everything=True)
    return results


def build_report(results: Sequence[FileResult], checkpoint, options: ScanOptions,
                 command: str = "", elapsed_s: Optional[float] = None,
                 settings: Optional[dict] = None) -> ScanReport:
    """Wrap results with the model and settings that produced them.

    ``checkpoint`` is a ``checkpoint.CheckpointInfo`` or a ``model.Detector``.
    """
    provenance = checkpoint.metadata.get("provenance", {})
    return ScanReport(
        files=tuple(results),
        threshold=_threshold(checkpoint, options),
        settings=dict(settings or {}, hop_s=options.hop_s, max_duration_s=options.max_duration_s,
                      cache=options.cache_dir is not None, segment_seconds=SEGMENT_SECONDS,
                      sample_rate=SAMPLE_RATE, engine=options.engine),
        model={"path": checkpoint.path, "sha256": checkpoint.sha256,
               "arch": checkpoint.metadata.get("arch"), "threshold": checkpoint.threshold,
               "trained": provenance.get("trained_at", ""),
               "training_command": provenance.get("command", ""),
               "calibration": _figures(checkpoint.metadata.get("calibration"), CALIBRATION_KEYS),
               "held_out": _figures(checkpoint.metadata.get("held_out"), HELD_OUT_KEYS)},
        fscan_version=__version__,
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=command,
        elapsed_s=elapsed_s,
    )


# what the reports quote of a checkpoint's measured error rates (ScanReport.reliability)
CALIBRATION_KEYS = ("split", "n_genuine", "n_fake", "threshold", "false_alarm_rate",
                    "miss_rate")
HELD_OUT_KEYS = ("data", "command", "measured_at", "threshold", "n_genuine", "n_fake",
                 "n_systems", "file_eer", "file_auc", "segment_eer", "false_alarm_rate",
                 "miss_rate")


def _figures(record, keys: Tuple[str, ...]) -> Optional[dict]:
    """``record``'s ``keys``, or None when it is missing or lacks one (an edited file)."""
    if not isinstance(record, dict) or any(key not in record for key in keys):
        return None
    return {key: record[key] for key in keys}


# --- reader and workers ------------------------------------------------------------------

class _Model:
    """The engine's scorer, opened on first use: a scan whose scores are all cached
    never imports torch or onnxruntime. Safe to call from several threads."""

    def __init__(self, checkpoint, options: ScanOptions):
        self.model_path, self.options = checkpoint.path, options
        # "judged": scores carry the no-speech rule (NaN), unlike older cache entries
        self.cache_key = f"scores_{options.engine}_{checkpoint.sha256[:16]}_judged"
        self.stack = ExitStack()
        self.scorer = None
        self.lock = threading.Lock()

    def __enter__(self) -> "_Model":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stack.close()

    def score(self, features: np.ndarray) -> np.ndarray:
        if self.scorer is None:
            with self.lock:
                if self.scorer is None:
                    scorer = self.stack.enter_context(open_scorer(
                        self.model_path, self.options.engine, self.options.cache_dir))
                    self.stack.enter_context(torch_one_thread())
                    self.scorer = scorer
        return self.scorer.score(features)


class _Workers:
    """Runs work items on ``jobs`` threads (inline when ``jobs`` is 1).

    ``submit`` blocks while ``2 * jobs`` items are waiting or running, so the reader
    never decodes far ahead of the scoring: memory stays at a few batches.
    """

    def __init__(self, model: _Model, jobs: int):
        self.model = model
        self.pool = ThreadPoolExecutor(jobs, thread_name_prefix="fscan") if jobs > 1 else None
        self.slots = threading.BoundedSemaphore(2 * jobs)

    def __enter__(self) -> "_Workers":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, function, *args) -> Future:
        if self.pool is None:
            future: Future = Future()
            try:
                future.set_result(function(self.model, *args))
            except Exception as error:  # delivered by result(), as from a thread
                future.set_exception(error)
            return future
        self.slots.acquire()
        future = self.pool.submit(function, self.model, *args)
        future.add_done_callback(lambda _: self.slots.release())
        return future


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


@contextmanager
def blas_one_thread() -> Iterator[None]:
    # Each worker thread runs its kernels itself: a thread pool inside BLAS (or torch,
    # below) would oversubscribe the cores the workers already fill, and a different
    # thread count could change the rounding of a score.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@contextmanager
def torch_one_thread() -> Iterator[None]:
    import sys

    torch = sys.modules.get("torch")  # imported by the torch engine, never for onnx
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # new threads take it up when they first run an op
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _score_audio(model: _Model, audio: np.ndarray, item: "_Pending", index: int) -> np.ndarray:
    features = log_mel(audio)
    kept = item.features  # read once: the reader may drop the dict meanwhile
    if kept is not None:
        kept[index] = features
    return _score_features(model, features)


def _score_features(model: _Model, features: np.ndarray) -> np.ndarray:
    return judged(model.score(features), features)


def judged(scores, features: np.ndarray) -> np.ndarray:
    """``scores`` as float32, with NaN for each segment that holds no speech to judge
    (``features.speech_activity`` below ``MIN_SPEECH_FRACTION``)."""
    scores = np.array(scores, dtype=np.float32)
    scores[speech_activity(features) < MIN_SPEECH_FRACTION] = np.nan
    return scores


@dataclass
class _Pending:
    """A file the reader has finished with, whose batches may still be scoring."""

    result: FileResult
    times: List[Tuple[float, float]] = field(default_factory=list)  # (start_s, end_s)
    batches: List[Future] = field(default_factory=list)  # each gives a batch's scores
    stats: Tuple[int, float, bool] = (0, 0.0, False)  # samples, peak, truncated
    log: DecoderLog = field(default_factory=DecoderLog)  # the decoder's complaints
    features: Optional[dict] = None  # batch index -> features, while they may be cached
    entry: Optional["_Entry"] = None  # the cache entry to write once scored

    def done(self) -> bool:
        return all(batch.done() for batch in self.batches)


def _read_file(path: str, options: ScanOptions, scores_key: str,
               workers: _Workers) -> _Pending:
    try:
        size = os.path.getsize(path)
        digest = file_sha256(path)
        log = DecoderLog()
        info = probe(path, log, read_level=False)  # the level only if decoded
        base = FileResult(path=path, status=OK, sample_rate=info.sample_rate,
                          channels=info.channels, format=info.format, decoder=info.decoder,
                          size_bytes=size, sha256=digest)
        if info.sample_rate < MIN_SAMPLE_RATE:
            return _Pending(_failed_from(base, SKIPPED, _too_slow(info.sample_rate)))
        entry = _load_cache(options, digest, scores_key)
        if entry is not None and (scores_key in entry.scores or entry.features is not None):
            item = _Pending(base, entry.times, stats=entry.stats, log=entry.log)
            if scores_key in entry.scores:
                item.batches = [_done(entry.scores[scores_key])]
            elif _judgeable(entry.stats):  # features cached, scored by another model
                item.batches = [
                    workers.submit(_score_features, entry.features[i:i + BATCH_SEGMENTS])
                    for i in range(0, len(entry.times), BATCH_SEGMENTS)]
                item.entry = entry
        else:
            item = _extract(path, info, options, workers, _Pending(base, log=log))
            item.entry = _Entry(digest, item.times, item.stats, item.log, None,
                                entry.scores if entry is not None else {})
    except (DecodeError, OSError, ValueError, MemoryError, EOFError) as error:
        return _Pending(_failed(path, ERROR, _reason(error)))
    total, peak, truncated = item.stats
    item.result = replace(base, duration_s=round(total / SAMPLE_RATE, 6), truncated=truncated,
                          error=_decoding_notes(info, total, truncated, item.log))
    if total < MIN_SAMPLES:
        item.result = _failed_from(item.result, SKIPPED,
                                   f"too short to judge ({total / SAMPLE_RATE:.3f} s < "
                                   f"{MIN_SAMPLES / SAMPLE_RATE:.1f} s)")
    elif peak == 0.0:
        item.result = _failed_from(item.result, SKIPPED, "digital silence: nothing to judge")
    return item


def _too_slow(sample_rate: int) -> str:
    return (f"sampled at {sample_rate:,} Hz, too slow to carry speech (under "
            f"{MIN_SAMPLE_RATE:,} Hz; a wrong rate in its header?): nothing to judge")


def _decoding_notes(info, total: int, truncated: bool, log: DecoderLog) -> str:
    """What a scored file's report row must say about how its audio was read ("" if nothing)."""
    notes = [_partly_decoded(info, total, truncated)]
    if log.level != 1.0:
        notes.append(f"float samples run to {log.level:,.0f} times full scale: scaled down "
                     f"by that factor before scoring")
    if log.inverted:
        named = ("channel " if len(log.inverted) == 1 else "channels ") + ", ".join(
            str(channel) for channel in log.inverted)
        notes.append(f"{named} of {info.channels} ran against channel 1 (a lead "
                     f"wired in reverse?): inverted before the channels were mixed, which "
                     f"would otherwise have cancelled out")
    if log.count:
        problems = "1 problem" if log.count == 1 else f"{log.count:,} problems"
        notes.append(f"the decoder reported {problems} in the stream (first: "
                     f"{log.lines[0].rstrip('.!')}): the audio may have gaps or glitches, "
                     f"which can sway the score")
    return "; ".join(filter(None, notes))


def _partly_decoded(info, total: int, truncated: bool) -> str:
    """A note when the decoder gave much less audio than the header announced, else "".

    A damaged compressed stream (MP3 above all) can end early without any error from the
    decoder; the scan then judges what it got, and the reports must say the rest is missing.
    Headers estimate (a VBR MP3 without a frame index), so small shortfalls pass.
    """
    announced, decoded = info.duration_s, total / SAMPLE_RATE
    if truncated or announced is None or announced - decoded <= max(0.5, 0.05 * announced):
        return ""
    return (f"only {decoded:.1f} s of the {announced:.1f} s its header announces could be "
            f"decoded (a damaged stream?): the rest was not scanned")


def _judgeable(stats: Tuple[int, float, bool]) -> bool:
    total, peak, _ = stats
    return total >= MIN_SAMPLES and peak != 0.0


def _extract(path: str, info, options: ScanOptions, workers: _Workers,
             item: _Pending) -> _Pending:
    """Decode ``path`` block by block and hand its segments to the workers in batches.

    Memory stays bounded by one decode block plus the batches in flight, whatever the
    file length; the features are kept for the cache only when the file is short enough.
    """
    limit = None if options.max_duration_s is None else int(options.max_duration_s * SAMPLE_RATE)
    state = {"total": 0, "peak": 0.0, "truncated": False}

    def blocks() -> Iterator[np.ndarray]:
        for block, cut in capped_blocks(stream_blocks(path, info=info, log=item.log), limit):
            state["truncated"] |= cut
            state["total"] += block.size
            if block.size:
                state["peak"] = max(state["peak"], float(np.abs(block).max()))
                yield block

    if options.cache_dir is not None:
        item.features = {}
    audio: List[np.ndarray] = []
    for start_s, end_s, samples in iter_segments(blocks(), options.hop_s):
        item.times.append((round(start_s, 6), round(end_s, 6)))
        audio.append(samples)
        if len(audio) == BATCH_SEGMENTS:
            item.batches.append(workers.submit(_score_audio, np.stack(audio), item,
                                               len(item.batches)))
            audio = []
        if item.features is not None and len(item.times) > CACHE_MAX_SEGMENTS:
            item.features = None  # too long to cache: let the kept features go
    if audio:
        item.batches.append(workers.submit(_score_audio, np.stack(audio), item,
                                           len(item.batches)))
    item.stats = (state["total"], state["peak"], state["truncated"])
    return item


def _finish(item: _Pending, threshold: float, options: ScanOptions,
            scores_key: str) -> FileResult:
    try:
        batches = [batch.result() for batch in item.batches]
    except (ValueError, MemoryError) as error:
        return _failed(item.result.path, ERROR, _reason(error))
    scores = np.concatenate(batches).astype(np.float32) if batches else np.zeros(0, np.float32)
    if item.entry is not None and options.cache_dir is not None:
        entry = item.entry
        if entry.features is None and item.features is not None:
            entry = replace(entry, features=_joined(item.features, len(item.batches)))
        if item.batches:
            entry = replace(entry, scores=dict(entry.scores, **{scores_key: scores}))
        _store_cache(options, entry)
    if item.result.status != OK:
        return item.result
    segments = tuple(segment_score(i, start, end, score, threshold)
                     for i, ((start, end), score) in enumerate(zip(item.times, scores.tolist())))
    values = [segment.score for segment in segments if segment.score is not None]
    if not values:
        return _failed_from(item.result, SKIPPED, f"no speech in any of its {len(segments)} "
                            "segments (silence or steady noise): nothing to judge")
    score, verdict = aggregate(values, threshold)
    return replace(item.result, verdict=verdict, score=score, n_segments=len(segments),
                   max_segment_score=score, mean_segment_score=round(float(np.mean(values)), 6),
                   fake_segments=sum(s.verdict == FAKE for s in segments), segments=segments)


def segment_score(index: int, start: float, end: float, score: float,
                  threshold: float) -> SegmentScore:
    """One window's record; a NaN score (see ``judged``) becomes a NO_SPEECH window."""
    if math.isnan(score):
        return SegmentScore(index=index, start_s=start, end_s=end, score=None,
                            verdict=NO_SPEECH)
    # round once, then compare the rounded value everywhere: a segment and its file must
    # never disagree about a score that sits on the threshold
    score = round(score, 6)
    return SegmentScore(index=index, start_s=start, end_s=end, score=score,
                        verdict=FAKE if score >= threshold else REAL)


def _joined(features: dict, n_batches: int) -> np.ndarray:
    parts = [features[i] for i in range(n_batches)]
    return np.concatenate(parts) if parts else np.zeros((0, N_MELS, N_FRAMES), np.float32)


def _failed(path: str, status: str, reason: str) -> FileResult:
    try:
        size = os.path.getsize(path)
    except OSError:
        size = None
    return FileResult(path=path, status=status, error=reason, size_bytes=size)


def _failed_from(base: FileResult, status: str, reason: str) -> FileResult:
    return replace(base, status=status, error="; ".join(filter(None, [reason, base.error])))


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"cannot read file: {error.strerror}"
    if isinstance(error, MemoryError):
        return "out of memory while decoding"
    return str(error) or type(error).__name__


def _threshold(model, options: ScanOptions) -> float:
    # model: a Detector or an engine Scorer, both carry the checkpoint's threshold
    return model.threshold if options.threshold is None else options.threshold


def _effective_jobs(jobs: int) -> int:
    return (os.cpu_count() or 1) if jobs in (0, -1) else max(1, jobs)


# --- cache -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Entry:
    """One file's cache entry: segment times, decode stats, the decoder's complaints, the
    features when the file is short enough, and the scores of every (engine, model) that
    scored them."""

    digest: str
    times: List[Tuple[float, float]]
    stats: Tuple[int, float, bool]
    log: DecoderLog
    features: Optional[np.ndarray]  # (n_segments, N_MELS, N_FRAMES) float32
    scores: dict  # "scores_<engine>_<model sha256[:16]>" -> (n_segments,) float32


def _cache_path(options: ScanOptions, digest: str) -> Optional[str]:
    if options.cache_dir is None:
        return None
    key = (f"{digest}-{frontend_hash()}-d{DECODE_VERSION}-hop{options.hop_s:g}"
           f"-max{options.max_duration_s or 0:g}")
    return os.path.join(options.cache_dir, key[:2], key + ".npz")


def _load_cache(options: ScanOptions, digest: str, scores_key: str) -> Optional[_Entry]:
    path = _cache_path(options, digest)
    if path is None or not os.path.exists(path):
        return None
    try:
        with np.load(path) as data:
            times = [tuple(t) for t in data["times"].tolist()]
            stats = (int(data["total"]), float(data["peak"]), bool(data["truncated"]))
            log = DecoderLog(int(data["decoder_count"]), data["decoder_lines"].tolist(),
                             data["inverted_channels"].tolist(), float(data["float_level"]))
            scores = {key: data[key] for key in data.files if key.startswith("scores_")}
            features = None
            if scores_key not in scores and "features" in data.files:
                features = data["features"]  # a zip member is read only when asked for
                if features.shape != (len(times), N_MELS, N_FRAMES):
                    return None
            if any(value.shape != (len(times),) for value in scores.values()):
                return None
            return _Entry(digest, times, stats, log, features, scores)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None  # a damaged cache entry is recomputed, never trusted


def _store_cache(options: ScanOptions, entry: _Entry) -> None:
    path = _cache_path(options, entry.digest)
    if path is None:
        return
    total, peak, truncated = entry.stats
    arrays = dict(entry.scores, times=np.array(entry.times, dtype=np.float64).reshape(-1, 2),
                  total=total, peak=peak, truncated=truncated,
                  decoder_count=entry.log.count,
                  decoder_lines=np.array(entry.log.lines, dtype=str),
                  inverted_channels=np.array(entry.log.inverted, dtype=np.int64),
                  float_level=entry.log.level)
    if entry.features is not None:
        arrays["features"] = np.asarray(entry.features, dtype=np.float32).reshape(
            len(entry.times), N_MELS, N_FRAMES)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp.npz"
    try:
        np.savez(temporary, **arrays)
        os.replace(temporary, path)
    except OSError:
        if os.path.exists(temporary):
            os.remove(temporary)

"""Score every segment of every file, in parallel, and aggregate per file.

Files are processed in fixed chunks (``FILES_PER_TASK`` consecutive files in sorted
order), each chunk by one joblib worker that decodes, extracts features and runs the
model in batches. Chunks never depend on ``jobs``, and every worker runs torch with one
thread, so scores are bit-identical whatever ``--jobs`` is. Nothing here prints: the
caller passes a ``progress(done, total, path)`` callback.
"""

import hashlib
import os
import zipfile
import zlib
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import __version__
from .audio import (MIN_SAMPLES, SAMPLE_RATE, SEGMENT_SECONDS, DecodeError, iter_segments,
                    probe, stream_blocks)
from .features import N_FRAMES, N_MELS, frontend_hash, log_mel
from .results import ERROR, FAKE, OK, REAL, SKIPPED, FileResult, ScanReport, SegmentScore

FILES_PER_TASK = 8
BATCH_SEGMENTS = 32
CACHE_MAX_SEGMENTS = 720  # an hour at the default hop; longer files are not cached

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ScanOptions:
    """How to scan. Times in seconds; ``threshold`` None means the checkpoint's."""

    hop_s: float = SEGMENT_SECONDS
    threshold: Optional[float] = None
    jobs: int = -1
    cache_dir: Optional[str] = None
    max_duration_s: Optional[float] = None

    def __post_init__(self):
        if not 1 / SAMPLE_RATE <= self.hop_s <= SEGMENT_SECONDS:
            raise ValueError(f"hop must be between one sample and {SEGMENT_SECONDS} seconds")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ValueError("threshold must be in [0, 1]")
        if self.max_duration_s is not None and self.max_duration_s <= 0:
            raise ValueError("max duration must be positive")


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
    """Scan ``paths`` (audio files) and return one ``FileResult`` per path, in order."""
    from joblib import Parallel, delayed

    chunks = [list(paths[i:i + FILES_PER_TASK]) for i in range(0, len(paths), FILES_PER_TASK)]
    jobs = _effective_jobs(options.jobs, len(chunks))
    results: List[FileResult] = []
    if progress:
        progress(0, len(paths), "")
    parallel = Parallel(n_jobs=jobs, return_as="generator")
    for chunk_results in parallel(delayed(_scan_chunk)(chunk, model_path, options)
                                  for chunk in chunks):
        results.extend(chunk_results)
        if progress:
            progress(len(results), len(paths), chunk_results[-1].path)
    return results


def build_report(results: Sequence[FileResult], detector, options: ScanOptions,
                 command: str = "", elapsed_s: Optional[float] = None,
                 settings: Optional[dict] = None) -> ScanReport:
    """Wrap results with the model and settings that produced them."""
    provenance = detector.metadata.get("provenance", {})
    return ScanReport(
        files=tuple(results),
        threshold=_threshold(detector, options),
        settings=dict(settings or {}, hop_s=options.hop_s, max_duration_s=options.max_duration_s,
                      cache=options.cache_dir is not None, segment_seconds=SEGMENT_SECONDS,
                      sample_rate=SAMPLE_RATE),
        model={"path": detector.path, "sha256": detector.sha256, "arch": detector.model.arch,
               "threshold": detector.threshold,
               "trained": provenance.get("trained_at", ""),
               "training_command": provenance.get("command", "")},
        fscan_version=__version__,
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=command,
        elapsed_s=elapsed_s,
    )


# --- worker side -------------------------------------------------------------------------

_DETECTORS = {}


def _detector(model_path: str):
    # loaded once per worker process, reused by every chunk it handles
    if model_path not in _DETECTORS:
        import torch

        from .model import load_checkpoint

        torch.set_num_threads(1)
        _DETECTORS[model_path] = load_checkpoint(model_path)
    return _DETECTORS[model_path]


def _scan_chunk(paths: Sequence[str], model_path: str, options: ScanOptions
                ) -> List[FileResult]:
    import torch

    torch.set_num_threads(1)
    detector = _detector(model_path)
    threshold = _threshold(detector, options)
    batcher = _Batcher(detector)
    pending = []
    for path in paths:
        try:
            pending.append(_read_file(path, options, batcher))
        except (DecodeError, OSError, ValueError, MemoryError, EOFError) as error:
            pending.append(_Pending(_failed(path, ERROR, _reason(error)), []))
    scores = batcher.finish()
    return [_finish(item, scores, threshold) for item in pending]


@dataclass
class _Pending:
    result: FileResult
    segments: List[Tuple[float, float, int]]  # (start_s, end_s, index into batcher scores)


class _Batcher:
    """Collects segment features across files and scores them in fixed-size batches."""

    def __init__(self, detector):
        self.detector = detector
        self.features: List[np.ndarray] = []
        self.scores: List[float] = []

    def add(self, features: np.ndarray) -> int:
        self.features.append(features)
        if len(self.features) == BATCH_SEGMENTS:
            self._flush()
        return len(self.scores) + len(self.features) - 1

    def finish(self) -> List[float]:
        self._flush()
        return self.scores

    def _flush(self):
        if self.features:
            batch = np.stack(self.features)
            self.scores.extend(self.detector.score(batch).tolist())
            self.features = []


def _read_file(path: str, options: ScanOptions, batcher: _Batcher) -> _Pending:
    size = os.path.getsize(path)
    digest = _sha256(path)
    info = probe(path)
    base = FileResult(path=path, status=OK, sample_rate=info.sample_rate,
                      channels=info.channels, format=info.format, decoder=info.decoder,
                      size_bytes=size, sha256=digest)
    cached = _load_cache(options, digest)
    if cached is not None:
        times, features, stats = cached
        segments = [(start, end, batcher.add(feature))
                    for (start, end), feature in zip(times, features)]
    else:
        segments, stats = _extract(path, options, batcher, digest)
    total, peak, truncated = stats
    base = replace(base, duration_s=round(total / SAMPLE_RATE, 6), truncated=truncated)
    if total < MIN_SAMPLES:
        return _Pending(_failed_from(base, SKIPPED, f"too short to judge ({total / SAMPLE_RATE:.3f}"
                                     f" s < {MIN_SAMPLES / SAMPLE_RATE:.1f} s)"), [])
    if peak == 0.0:
        return _Pending(_failed_from(base, SKIPPED, "digital silence: nothing to judge"), [])
    return _Pending(base, segments)


def _extract(path: str, options: ScanOptions, batcher: _Batcher, digest: str):
    """Decode ``path`` block by block, queue each segment's features for scoring.

    Memory stays bounded by one decode block plus one batch, whatever the file length;
    the features are kept for the cache only when the file is short enough.
    """
    limit = None if options.max_duration_s is None else int(options.max_duration_s * SAMPLE_RATE)
    state = {"total": 0, "peak": 0.0, "truncated": False}

    def blocks() -> Iterator[np.ndarray]:
        for block in stream_blocks(path):
            if limit is not None and state["total"] + block.size > limit:
                block = block[:limit - state["total"]]
                state["truncated"] = True
            state["total"] += block.size
            if block.size:
                state["peak"] = max(state["peak"], float(np.abs(block).max()))
                yield block
            if state["truncated"]:
                break

    segments, times = [], []
    kept = [] if options.cache_dir is not None else None
    for start_s, end_s, samples in iter_segments(blocks(), options.hop_s):
        feature = log_mel(samples)
        start_s, end_s = round(start_s, 6), round(end_s, 6)
        segments.append((start_s, end_s, batcher.add(feature)))
        times.append((start_s, end_s))
        if kept is not None:
            kept.append(feature)
            if len(kept) > CACHE_MAX_SEGMENTS:
                kept = None  # too long to cache
    stats = (state["total"], state["peak"], state["truncated"])
    if kept is not None:
        _store_cache(options, digest, times, kept, stats)
    return segments, stats


def _finish(item: _Pending, scores: List[float], threshold: float) -> FileResult:
    if item.result.status != OK:
        return item.result
    # round once, then compare the rounded value everywhere: a segment and its file must
    # never disagree about a score that sits on the threshold
    rounded = [(start, end, round(scores[k], 6)) for start, end, k in item.segments]
    segments = tuple(
        SegmentScore(index=i, start_s=start, end_s=end, score=score,
                     verdict=FAKE if score >= threshold else REAL)
        for i, (start, end, score) in enumerate(rounded))
    values = [segment.score for segment in segments]
    score, verdict = aggregate(values, threshold)
    return replace(item.result, verdict=verdict, score=score, n_segments=len(segments),
                   max_segment_score=score, mean_segment_score=round(float(np.mean(values)), 6),
                   fake_segments=sum(s.verdict == FAKE for s in segments), segments=segments)


def _failed(path: str, status: str, reason: str) -> FileResult:
    try:
        size = os.path.getsize(path)
    except OSError:
        size = None
    return FileResult(path=path, status=status, error=reason, size_bytes=size)


def _failed_from(base: FileResult, status: str, reason: str) -> FileResult:
    return replace(base, status=status, error=reason)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"cannot read file: {error.strerror}"
    if isinstance(error, MemoryError):
        return "out of memory while decoding"
    return str(error) or type(error).__name__


def _threshold(detector, options: ScanOptions) -> float:
    return detector.threshold if options.threshold is None else options.threshold


def _effective_jobs(jobs: int, n_tasks: int) -> int:
    cores = os.cpu_count() or 1
    wanted = cores if jobs in (0, -1) else max(1, jobs)
    return max(1, min(wanted, n_tasks))


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- feature cache -----------------------------------------------------------------------

def _cache_path(options: ScanOptions, digest: str) -> Optional[str]:
    if options.cache_dir is None:
        return None
    key = f"{digest}-{frontend_hash()}-hop{options.hop_s:g}-max{options.max_duration_s or 0:g}"
    return os.path.join(options.cache_dir, key[:2], key + ".npz")


def _load_cache(options: ScanOptions, digest: str):
    path = _cache_path(options, digest)
    if path is None or not os.path.exists(path):
        return None
    try:
        with np.load(path) as data:
            times = [tuple(t) for t in data["times"].tolist()]
            stats = (int(data["total"]), float(data["peak"]), bool(data["truncated"]))
            return times, list(data["features"]), stats
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None  # a damaged cache entry is recomputed, never trusted


def _store_cache(options: ScanOptions, digest: str, times, features, stats) -> None:
    path = _cache_path(options, digest)
    total, peak, truncated = stats
    if path is None:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp.npz"
    try:
        np.savez(temporary, times=np.array(times, dtype=np.float64).reshape(-1, 2),
                 features=np.array(features, dtype=np.float32).reshape(len(times), N_MELS, N_FRAMES),
                 total=total, peak=peak,
                 truncated=truncated)
        os.replace(temporary, path)
    except OSError:
        if os.path.exists(temporary):
            os.remove(temporary)

"""Scan in chunks of files as tasks: in joblib's loky worker processes on this
machine (``loky``) or on the workers of a Dask cluster (``dask``).

The default backend, ``threads``, is ``scan.scan_paths`` itself: one process whose
threads share one model. This module runs the same scan as tasks, one task per chunk of
files (at most ``FILES_PER_CHUNK`` files or ``CHUNK_BYTES`` of them, whichever comes
first, so that scheduling costs little per file and one huge file does not hold up a
crowd of small ones). A task runs the ordinary scan, on one thread, over its chunk and
sends back the ``FileResult``s: segment scores, never features. Every file is therefore
decoded, featurised, scored and judged by the same code as in a local scan, and the
results are identical.

On the worker the model is loaded once per process, not per task or file
(``engine.open_scorer`` keeps it per checkpoint sha256), after checking that the
worker's checkpoint file is the one the client read. Results come back as chunks
finish (joblib's ``return_as="generator_unordered"`` for loky, distributed's
``as_completed`` for dask; see ``_run_dask`` for why not joblib's dask backend): the
client feeds the progress callback and puts them back in input order.

Failures: a file that cannot be read is an ``error`` result, as locally. A task that
raises is run again up to ``TASK_RETRIES`` times (dask's ``retries``). When a worker
dies, the scheduler runs its tasks on another worker; a chunk that keeps killing
workers (``distributed.scheduler.allowed-failures``, 3 by default) ends in
``KilledWorker``: that chunk's files are then run one task per file, and a file that
still kills its worker is reported as an ``error`` with that reason.

dask and distributed are optional (``pip install 'fscan[dask]'``) and imported only
here, only when the dask backend runs.
"""

import itertools
import os
import socket
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import Iterator, List, Optional, Sequence, Tuple

from .checkpoint import ModelError, file_sha256, read_checkpoint_info
from .results import ERROR, FileResult

SCHEDULER_ENV = "FSCAN_DASK_SCHEDULER"  # default for --scheduler
FILES_PER_CHUNK = 16  # files per task: a task costs the scheduler ~1 ms, a file ~10-100 ms
CHUNK_BYTES = 64 * 2 ** 20  # a chunk closes at this many bytes of input files
TASK_RETRIES = 2  # reruns of a task that raised (an exception, not a dead worker)
CONNECT_TIMEOUT_S = 10.0

Chunk = List[Tuple[int, str]]  # (index in the input, path)


class BackendError(Exception):
    """A backend that cannot run: dask not installed, no scheduler address, or a
    scheduler that cannot be reached."""


def scan_in_chunks(paths: Sequence[str], model_path: str, options, progress=None,
                   files_per_chunk: int = FILES_PER_CHUNK) -> List[FileResult]:
    """``scan.scan_paths`` for ``options.backend`` ``"loky"`` or ``"dask"``.

    Returns one ``FileResult`` per path, in input order, equal to what the threads
    backend gives. ``progress(done, total, path)`` is called as results arrive.

    Raises
    ------
    BackendError
        dask is missing, or the scheduler is not given or cannot be reached.
    checkpoint.ModelError
        The checkpoint cannot be used here or on a worker.
    """
    model_sha256 = read_checkpoint_info(model_path).sha256  # a bad model fails here, once
    results: List[Optional[FileResult]] = [None] * len(paths)
    done = 0
    if progress:
        progress(0, len(paths), "")

    def collect(indices: List[int], chunk_results: List[FileResult]) -> None:
        nonlocal done
        for index, result in zip(indices, chunk_results):
            results[index] = result
            done += 1
            if progress:
                progress(done, len(paths), result.path)

    chunks = chunk_paths(paths, files_per_chunk)  # lazy: stats files as tasks go out
    task_options = replace(options, backend="threads", jobs=1, scheduler=None)
    if options.backend == "loky":
        tasks = _run_loky(chunks, model_path, model_sha256, task_options, options.jobs)
    elif options.backend == "dask":
        _import_distributed()
        client = connect(options.scheduler)
        tasks = _run_dask(client, chunks, model_path, model_sha256, task_options)
    else:
        raise ValueError(f"not a chunked backend: {options.backend!r}")
    for indices, chunk_results in tasks:
        collect(indices, chunk_results)
    return results


def chunk_paths(paths: Sequence[str], files_per_chunk: int = FILES_PER_CHUNK,
                chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Consecutive ``(index, path)`` lists of at most ``files_per_chunk`` files and,
    unless a single file is larger, at most ``chunk_bytes`` bytes."""
    chunk: Chunk = []
    size = 0
    for index, path in enumerate(paths):
        try:
            file_bytes = os.path.getsize(path)
        except OSError:
            file_bytes = 0  # the worker reports why it cannot be read
        if chunk and (len(chunk) == files_per_chunk or size + file_bytes > chunk_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append((index, path))
        size += file_bytes
    if chunk:
        yield chunk


def connect(address: Optional[str] = None, timeout_s: Optional[float] = None):
    """A ``distributed.Client`` of the scheduler at ``address`` (default: the
    ``FSCAN_DASK_SCHEDULER`` environment variable); use it as a context manager.
    ``timeout_s`` defaults to ``CONNECT_TIMEOUT_S``.

    Raises
    ------
    BackendError
        dask is missing, no address, or no scheduler answers within ``timeout_s``.
    """
    address = address or os.environ.get(SCHEDULER_ENV)
    if not address:
        raise BackendError(f"--backend dask needs a scheduler: --scheduler tcp://HOST:PORT "
                           f"or the {SCHEDULER_ENV} environment variable")
    distributed = _import_distributed()
    try:
        return distributed.Client(address, timeout=timeout_s or CONNECT_TIMEOUT_S,
                                  set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise BackendError(f"cannot reach the Dask scheduler at {address}: {error}") from error


def scan_chunk(chunk: Chunk, model_path: str, model_sha256: str,
               options) -> Tuple[List[int], List[FileResult]]:
    """Run on a worker: scan the chunk's files with the threads backend, one thread.

    Returns the chunk's input indices and its results, in chunk order.
    """
    from .scan import scan_paths

    if _worker_model_sha256(model_path) != model_sha256:
        raise ModelError(f"{socket.gethostname()}: {model_path} is not the checkpoint the "
                         "client read (sha256 differs); workers need the same model file")
    indices = [index for index, _ in chunk]
    with _ONE_THREAD_PER_LIBRARY.held(options.engine):
        return indices, scan_paths([path for _, path in chunk], model_path, options)


# --- running tasks -------------------------------------------------------------------

def _run_loky(chunks: Iterator[Chunk], model_path: str, model_sha256: str, options,
              n_jobs: int) -> Iterator[Tuple[List[int], List[FileResult]]]:
    """Chunk results in the order they finish, from joblib's loky worker processes."""
    from joblib import Parallel, delayed

    # batch_size=1: a chunk is already the unit of work; joblib's auto-batching would
    # group chunks and make the progress coarser
    parallel = Parallel(n_jobs=n_jobs, backend="loky", batch_size=1,
                        return_as="generator_unordered")
    yield from parallel(delayed(scan_chunk)(chunk, model_path, model_sha256, options)
                        for chunk in chunks)


def _run_dask(client, chunks: Iterator[Chunk], model_path: str, model_sha256: str,
              options) -> Iterator[Tuple[List[int], List[FileResult]]]:
    """Chunk results in the order they finish, from the cluster behind ``client``
    (closed at the end).

    Through distributed's own futures rather than joblib's dask backend: in joblib 1.6
    a task that the scheduler gives up on (``KilledWorker``) never reaches
    ``joblib.Parallel``, which then waits forever. Here such a chunk is split into one
    task per file, and a single file that still kills its worker becomes an ``error``
    result. At most two tasks per worker thread are in flight, so the client holds a
    bounded number of futures whatever the number of files.
    """
    from distributed import KilledWorker, as_completed

    with client:
        in_flight = 2 * max(1, sum(client.nthreads().values()))
        running = as_completed(loop=client.loop)
        chunk_of = {}

        def submit(chunk: Chunk) -> None:
            future = client.submit(scan_chunk, chunk, model_path, model_sha256, options,
                                   retries=TASK_RETRIES, pure=False)
            chunk_of[future] = chunk
            running.add(future)

        for chunk in itertools.islice(chunks, in_flight):
            submit(chunk)
        for future in running:
            chunk = chunk_of.pop(future)
            try:
                yield future.result()
            except KilledWorker:
                if len(chunk) > 1:
                    for item in chunk:  # find the file that kills its workers
                        submit([item])
                else:
                    index, path = chunk[0]
                    yield [index], [FileResult(
                        path=path, status=ERROR,
                        error="a worker process died each time it scanned this file "
                              "(dask KilledWorker)")]
            future.release()
            for chunk in itertools.islice(chunks, 1):
                submit(chunk)


# --- helpers -------------------------------------------------------------------------

class _OneThreadPerLibrary:
    """One BLAS and one torch thread while any task of this process runs.

    Several tasks run at once in a dask worker process. ``scan_paths`` sets and restores
    these limits per call; two overlapping calls could restore a larger thread count
    under each other, and a different count can change a score's rounding. So the
    first task to start sets them for the process and the last to finish restores them.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.active = 0
        self.restore = None

    @contextmanager
    def held(self, engine: str) -> Iterator[None]:
        with self.lock:
            if self.active == 0:
                self.restore = _limit_threads(engine)
            self.active += 1
        try:
            yield
        finally:
            with self.lock:
                self.active -= 1
                if self.active == 0:
                    self.restore()


def _limit_threads(engine: str):
    """Apply the scanner's own one-thread limits; returns the function that lifts them."""
    from .scan import blas_one_thread, torch_one_thread

    stack = ExitStack()
    stack.enter_context(blas_one_thread())
    if engine == "torch":
        import torch  # noqa: F401  (imported first, so that its thread count is limited too)

        stack.enter_context(torch_one_thread())
    return stack.close


_ONE_THREAD_PER_LIBRARY = _OneThreadPerLibrary()


def _worker_model_sha256(model_path: str) -> str:
    try:
        return file_sha256(model_path)
    except OSError as error:
        raise ModelError(f"cannot read model {model_path} on {socket.gethostname()}: "
                         f"{error.strerror or error}") from error


def _import_distributed():
    try:
        import dask  # noqa: F401  (joblib's dask backend needs both)
        import distributed
    except ImportError as error:
        raise BackendError("--backend dask needs the optional packages dask and "
                           "distributed: pip install 'fscan[dask]'") from error
    return distributed

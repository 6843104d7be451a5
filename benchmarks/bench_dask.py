"""Throughput of a scan on a Dask cluster against the local scan (issue 7).

    python benchmarks/bench_dask.py            # ~1 min after the corpora exist
    python benchmarks/bench_dask.py --help     # --model, --small-files, --repeat, --out

Two corpora under ``work/`` (git-ignored, seeded, rebuilt only when missing):

- the quick speech-like corpus of ``bench_scan.py`` (``corpus.py``, 14 files, ~9 min
  of audio, one 2 min file), or the one named by ``--corpus``: throughput in x real
  time;
- ``--small-files`` 1 s 16 kHz WAV clips: the cost of a file that is mostly overhead.

Each is scanned in this process with ``scan.scan_paths`` (bundled model unless
``--model``, no cache), by:

- the threads backend (the default) with ``jobs`` 1 and 2;
- ``backend="dask"`` on a ``LocalCluster`` on loopback with 1 and 2 worker processes
  of one thread each, started with ``MALLOC_MMAP_THRESHOLD_`` (see ``WORKER_ENV``);
  once more without it, to show what dask's default worker environment costs. The first scan on a fresh cluster is reported apart ("cold":
  the workers import fscan and torch and load the model); then the median of
  ``--repeat`` scans ("warm").

Overhead per file = (dask, 1 worker, warm - threads, jobs 1) / number of small files:
what chunking, scheduling and sending results back cost per file, on top of the scan.
Figures go to stdout and ``--out`` (default ``work/bench_dask.json``).
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_scan  # noqa: E402  (machine(), other_load(), REPO)
import corpus as corpus_module  # noqa: E402

REPO = bench_scan.REPO
# dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's mmap
# threshold at 128 KiB: every decode block and feature batch is then mmap'd, zeroed and
# unmapped, and the scan costs twice the CPU (measured). A 32 MiB mmap threshold keeps
# dask's trimming and the scan's speed; docs/scaling.md tells users to set it.
WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint (default: the bundled one)")
    parser.add_argument("--corpus", help="an existing corpus.py folder (with manifest.json), "
                        "e.g. bench_scan.py's work/bench_corpus/audio (default: build the "
                        "quick corpus)")
    parser.add_argument("--small-files", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(REPO, "work", "bench_dask.json"))
    args = parser.parse_args(argv)

    from forensics_scan.checkpoint import bundled_model_path

    model = os.path.abspath(args.model or bundled_model_path())
    if args.corpus:
        speech_dir = args.corpus
        with open(os.path.join(speech_dir, "manifest.json")) as handle:
            manifest = json.load(handle)
    else:
        speech_dir = os.path.join(REPO, "work", "bench_corpus", "quick")
        manifest = corpus_module.build(speech_dir, corpus_module.corpus_specs(quick=True),
                                       log=log)
    speech = sorted(os.path.join(speech_dir, spec["path"]) for spec in manifest["files"])
    small = small_files(os.path.join(REPO, "work", "bench_dask_small"), args.small_files)
    corpora = {"speech": (speech, manifest["total_seconds"]),
               "small": (small, float(len(small)))}
    figures = {"machine": bench_scan.machine(), "load_at_start": bench_scan.other_load(),
               "model": model, "repeat": args.repeat,
               "corpora": {name: {"files": len(paths), "audio_s": audio_s}
                           for name, (paths, audio_s) in corpora.items()}}
    for jobs in (1, 2):
        for name, (paths, audio_s) in corpora.items():
            log(f"threads, jobs {jobs}, {name}")
            figures[f"threads_jobs{jobs}_{name}"] = timed(
                paths, model, audio_s, args.repeat, jobs=jobs)
    for workers in (1, 2):
        figures.update(on_cluster(workers, corpora, model, args.repeat))
    log("dask, 1 worker, dask's default worker environment (no MALLOC_MMAP_THRESHOLD_)")
    tuned = dict(WORKER_ENV)
    WORKER_ENV.clear()
    try:
        plain = on_cluster(1, {"speech": corpora["speech"]}, model, 1)
    finally:
        WORKER_ENV.update(tuned)
    figures["dask_1w_speech_dask_default_env"] = plain["dask_1w_speech"]
    n_small = len(small)
    figures["overhead_ms_per_file"] = round(
        1000 * (figures["dask_1w_small"]["wall_s"] - figures["threads_jobs1_small"]["wall_s"])
        / n_small, 2)
    figures["load_at_end"] = bench_scan.other_load()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(figures, handle, indent=1, sort_keys=True)
    print(table(figures))
    log(f"figures written to {args.out}")
    return 0


def on_cluster(workers: int, corpora: dict, model: str, repeat: int) -> dict:
    """Cold and warm scans of each corpus on a fresh LocalCluster of ``workers``
    single-threaded worker processes, started with ``WORKER_ENV``."""
    import dask
    from distributed import LocalCluster

    figures = {}
    started = time.perf_counter()
    settings = {f"distributed.nanny.pre-spawn-environ.{name}": value
                for name, value in WORKER_ENV.items()}
    with dask.config.set(settings), LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=":0") as cluster:
        figures[f"dask_{workers}w_cluster_start_s"] = round(time.perf_counter() - started, 3)
        for number, (name, (paths, audio_s)) in enumerate(corpora.items()):
            if number == 0:
                log(f"dask, {workers} worker(s), cold, {name}")
                figures[f"dask_{workers}w_{name}_cold"] = timed(
                    paths, model, audio_s, 1, backend="dask",
                    scheduler=cluster.scheduler_address)
            log(f"dask, {workers} worker(s), warm, {name}")
            figures[f"dask_{workers}w_{name}"] = timed(
                paths, model, audio_s, repeat, backend="dask",
                scheduler=cluster.scheduler_address)
    for name in WORKER_ENV:
        os.environ.pop(name, None)  # the nanny exports it here too: keep clusters apart
    return figures


def timed(paths, model: str, audio_s: float, repeat: int, **options) -> dict:
    from forensics_scan.scan import ScanOptions, scan_paths

    walls, results = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        results = scan_paths(paths, model, ScanOptions(**options))
        walls.append(time.perf_counter() - started)
    wall = statistics.median(walls)
    return {"wall_s": round(wall, 3), "runs_s": [round(w, 3) for w in walls],
            "x_real_time": round(audio_s / wall, 1),
            "files_per_s": round(len(paths) / wall, 1),
            "scores": round(float(sum(r.score or 0 for r in results)), 6)}


def small_files(folder: str, count: int):
    """``count`` seeded 1 s 16 kHz mono speech-like WAV clips (kept between runs)."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for number in range(count):
        path = os.path.join(folder, f"clip_{number:05d}.wav")
        if not os.path.exists(path):
            rng = np.random.default_rng(number)
            voice = corpus_module._Voice(rng)
            sf.write(path, voice.next(corpus_module.GEN_RATE), corpus_module.GEN_RATE,
                     subtype="PCM_16")
        paths.append(path)
    return paths


def table(figures: dict) -> str:
    rows = ["| run | speech corpus: wall s, x real time | 1 s clips: wall s, files/s |",
            "| --- | --- | --- |"]
    names = [("threads, jobs 1", "threads_jobs1"), ("threads, jobs 2", "threads_jobs2"),
             ("dask, 1 worker, warm", "dask_1w"), ("dask, 2 workers, warm", "dask_2w")]
    for label, key in names:
        speech, small = figures[f"{key}_speech"], figures[f"{key}_small"]
        rows.append(f"| {label} | {speech['wall_s']} s, {speech['x_real_time']}x | "
                    f"{small['wall_s']} s, {small['files_per_s']} |")
    for workers in (1, 2):
        cold = figures[f"dask_{workers}w_speech_cold"]
        rows.append(f"| dask, {workers} worker(s), cold (first scan) | {cold['wall_s']} s, "
                    f"{cold['x_real_time']}x | cluster start "
                    f"{figures[f'dask_{workers}w_cluster_start_s']} s |")
    plain = figures["dask_1w_speech_dask_default_env"]
    rows.append(f"| dask, 1 worker, dask's default malloc settings | {plain['wall_s']} s, "
                f"{plain['x_real_time']}x | - |")
    rows.append(f"\noverhead per file (dask 1 worker warm - threads jobs 1, 1 s clips): "
                f"{figures['overhead_ms_per_file']} ms")
    return "\n".join(rows)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())

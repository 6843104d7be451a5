"""Speed and memory benchmark of ``fscan`` on a reproducible speech-like corpus.

    python benchmarks/bench_scan.py            # >= 60 min corpus, all figures (~5 min)
    python benchmarks/bench_scan.py --quick    # ~5 min corpus, a smoke run (~1 min)

The corpus (see ``corpus.py``) is built once under ``--corpus`` (default
``work/bench_corpus``, git-ignored) together with a seeded, randomly initialised
checkpoint of the default LCNN architecture (same compute as a trained one), unless
``--model`` names another. Every end-to-end figure runs the real command line in a
fresh process, ``fscan CORPUS --csv out.csv --no-cache --quiet`` plus the option
under test, and samples the resident memory of its whole process tree.

The time split by stage is measured in this process, on one thread, with the library
functions of the fscan under test on the same corpus: it says where the CPU time goes,
not how the stages overlap in a parallel scan.

Figures go to a table on stdout and to ``--out`` (JSON). To time another fscan (an
older commit, say), put its source first on ``PYTHONPATH``: everything here imports
``forensics_scan`` and starts ``python -m forensics_scan``.
"""

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus as corpus_module  # noqa: E402  (the sibling file, not an installed package)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FSCAN = [sys.executable, "-m", "forensics_scan"]
GNU_TIME = "/usr/bin/time"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", help="corpus folder (default: work/bench_corpus[_quick])")
    parser.add_argument("--quick", action="store_true", help="~5 min corpus, one repeat")
    parser.add_argument("--model", help="checkpoint to time (default: a seeded random one)")
    parser.add_argument("--out", help="JSON file for the figures (default: in the corpus folder)")
    parser.add_argument("--repeat", type=int, help="runs per end-to-end figure (median)")
    parser.add_argument("--skip-long", action="store_true", help="skip the 3-hour memory check")
    parser.add_argument("--long-hours", type=float, default=3.0)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX engine figures")
    args = parser.parse_args(argv)

    folder = os.path.abspath(args.corpus or os.path.join(
        REPO, "work", "bench_corpus_quick" if args.quick else "bench_corpus"))
    repeat = args.repeat or (1 if args.quick else 3)
    out_path = os.path.abspath(args.out or os.path.join(folder, "results.json"))
    audio_dir = os.path.join(folder, "audio")

    log(f"corpus: {audio_dir}")
    started = time.time()
    manifest = corpus_module.build(audio_dir, corpus_module.corpus_specs(args.quick), log=log)
    log(f"  {len(manifest['files'])} files, {manifest['total_seconds'] / 60:.1f} min "
        f"(ready in {time.time() - started:.0f} s)")
    model = os.path.abspath(args.model) if args.model else make_model(folder)
    audio_s = manifest["total_seconds"]

    import forensics_scan

    figures = {"machine": machine(), "fscan": {"version": forensics_scan.__version__,
                                               "source": os.path.dirname(forensics_scan.__file__)},
               "corpus": {"folder": audio_dir, "files": len(manifest["files"]),
                          "audio_seconds": audio_s, "quick": args.quick},
               "model": model, "repeat": repeat, "started_at": now(),
               "load_at_start": other_load()}
    work = tempfile.mkdtemp(prefix="fscan-bench-")
    # 'python -m' puts the working directory first on sys.path: outside the checkout, the
    # fscan under test is the one this Python imports, not ./forensics_scan
    previous_cwd = os.getcwd()
    os.chdir(work)
    try:
        csv = os.path.join(work, "out.csv")
        scan = [audio_dir, "--model", model, "--csv", csv, "--quiet"]

        log("fscan --help")
        figures["help_s"] = median_wall(FSCAN + ["--help"], 5)

        for jobs in (1, 2):
            log(f"end to end, --jobs {jobs}")
            figures[f"jobs{jobs}"] = end_to_end(scan + ["--no-cache", "--jobs", str(jobs)],
                                                audio_s, repeat)
        if supports_engine() and not args.no_onnx:
            log("end to end, --engine onnx --jobs 2 (export into a temporary folder included)")
            figures["onnx_jobs2"] = end_to_end(
                scan + ["--no-cache", "--jobs", "2", "--engine", "onnx"], audio_s, repeat)
            log("end to end, --engine onnx --jobs 2, export already in the cache folder")
            figures["onnx_jobs2_export_cached"] = onnx_export_cached(scan, model, audio_s,
                                                                     repeat, work)

        log("cache: first scan fills it, second reads it")
        cache_dir = os.path.join(work, "cache")
        first = end_to_end(scan + ["--cache-dir", cache_dir], audio_s, 1)
        second = end_to_end(scan + ["--cache-dir", cache_dir], audio_s, repeat)
        figures["cache"] = {"first": first, "second": second,
                            "speedup": first["wall_s"] / second["wall_s"]}

        log("latency of one 5 s segment")
        figures["latency"] = latency(model, work)

        log("stages, in process, one thread")
        figures["stages"] = stages(manifest, audio_dir, model, "torch")
        if supports_engine() and not args.no_onnx:
            figures["stages_onnx_model_s"] = stages(manifest, audio_dir, model, "onnx",
                                                    model_only=True)["model_s"]

        if not args.skip_long:
            spec = corpus_module.long_spec(args.long_hours)
            long_dir = os.path.join(folder, "long")
            log(f"memory: {args.long_hours:g} h file ({spec.path})")
            corpus_module.build(long_dir, [spec], log=log)
            long_file = os.path.join(long_dir, spec.path)
            figures["long_file"] = dict(end_to_end(
                [long_file, "--model", model, "--csv", csv, "--quiet", "--cache-dir",
                 os.path.join(work, "long_cache")], spec.seconds, 1), hours=args.long_hours)
    finally:
        os.chdir(previous_cwd)
        shutil.rmtree(work, ignore_errors=True)
    figures["load_at_end"] = other_load()
    figures["finished_at"] = now()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as handle:
        json.dump(figures, handle, indent=1, sort_keys=True)
    print(table(figures))
    log(f"figures written to {out_path}")
    return 0


# --- end to end ----------------------------------------------------------------------------

def end_to_end(args, audio_s: float, repeat: int) -> dict:
    """Run ``fscan ARGS`` ``repeat`` times; median wall time, peak memory of the slowest."""
    runs = [run_measured(FSCAN + args) for _ in range(repeat)]
    wall = statistics.median(run["wall_s"] for run in runs)
    return {"wall_s": round(wall, 3), "x_real_time": round(audio_s / wall, 1),
            "runs_s": [round(run["wall_s"], 3) for run in runs],
            "cpu_s": round(statistics.median(run["cpu_s"] for run in runs), 3),
            "peak_tree_rss_mb": round(max(run["tree_rss_mb"] for run in runs), 1),
            "max_process_rss_mb": round(max(run["max_rss_mb"] for run in runs), 1),
            "exit_code": runs[-1]["exit_code"]}


def onnx_export_cached(scan, model: str, audio_s: float, repeat: int, work: str) -> dict:
    """``--engine onnx`` whose export is already in the cache folder, as from the second
    scan on: each run gets a fresh cache folder holding only the export, so no features
    or scores are cached."""
    seed = os.path.join(work, "onnx_seed")
    spec = corpus_module.Spec("one.wav", 6.0, 16000, 1, "WAV", "PCM_16")
    clip = os.path.join(work, spec.path)
    corpus_module.write(clip, spec)
    run_measured(FSCAN + [clip, "--model", model, "--engine", "onnx", "--cache-dir", seed,
                          "--quiet", "--csv", os.path.join(work, "one.csv")])
    runs = []
    for number in range(repeat):
        cache_dir = os.path.join(work, f"onnx_cache_{number}")
        shutil.copytree(os.path.join(seed, "onnx"), os.path.join(cache_dir, "onnx"))
        runs.append(end_to_end(scan + ["--jobs", "2", "--engine", "onnx", "--cache-dir",
                                       cache_dir], audio_s, 1))
    best = sorted(runs, key=lambda run: run["wall_s"])[len(runs) // 2]  # the median run
    return dict(best, runs_s=[run["wall_s"] for run in runs])


def run_measured(command) -> dict:
    """Wall time, CPU time and peak RSS of one command and all its processes.

    The largest single process comes from GNU time's %M (the kernel's ru_maxrss, exact;
    measured from this process, ru_maxrss would include the benchmark's own pages that
    the child had before exec). The sum over the process tree is sampled from /proc
    every 20 ms, so a spike shorter than that can be missed.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as rss_file:
        if os.path.exists(GNU_TIME):
            command = [GNU_TIME, "-f", "%M", "-o", rss_file.name] + list(command)
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sampler = _TreeSampler(process.pid)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        sampler.stop()
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr = process.stderr.read().decode("utf-8", "replace")
        process.stderr.close()
        if process.returncode not in (0, 1):  # 1: synthetic speech found, fine here
            raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stderr}")
        lines = rss_file.read().split()
        max_rss_kb = int(lines[-1]) if lines else usage.ru_maxrss
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "max_rss_mb": max_rss_kb / 1024, "tree_rss_mb": sampler.peak / 2 ** 20,
            "exit_code": process.returncode}


class _TreeSampler(threading.Thread):
    def __init__(self, root: int, interval_s: float = 0.02):
        super().__init__(daemon=True)
        self.root, self.interval_s, self.peak = root, interval_s, 0
        self._stop_event = threading.Event()

    def run(self):
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop_event.is_set():
            self.peak = max(self.peak, sum(_rss_pages(pid) for pid in _tree(self.root)) * page)
            self._stop_event.wait(self.interval_s)

    def stop(self):
        self._stop_event.set()
        self.join()


def _tree(root: int):
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parents[int(name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        tree.update(children)
        frontier.extend(children)
    return tree


def _rss_pages(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def median_wall(command, repeat: int) -> float:
    walls = []
    for _ in range(repeat):
        started = time.perf_counter()
        returncode = subprocess.run(command, stdout=subprocess.DEVNULL).returncode
        if returncode not in (0, 1):  # 1: synthetic speech found, fine here
            raise RuntimeError(f"{' '.join(map(str, command))} failed ({returncode})")
        walls.append(time.perf_counter() - started)
    return round(statistics.median(walls), 3)


# --- in process ------------------------------------------------------------------------

def stages(manifest: dict, audio_dir: str, model: str, engine: str,
           model_only: bool = False) -> dict:
    """CPU time per stage over the corpus, one thread, library functions of the fscan
    under test: read+hash (sha256, header), decode+resample (``stream_blocks`` and
    ``iter_segments``), features (``log_mel``), model (engine), reports (CSV writer)."""
    from threadpoolctl import threadpool_limits

    from forensics_scan import scan as scan_module
    from forensics_scan.audio import iter_segments, probe, stream_blocks
    from forensics_scan.features import log_mel

    batch_size = getattr(scan_module, "BATCH_SEGMENTS", 32)
    paths = sorted(os.path.join(audio_dir, spec["path"]) for spec in manifest["files"])
    times = dict.fromkeys(["read_hash_s", "decode_s", "features_s", "model_s"], 0.0)
    n_segments = 0
    with threadpool_limits(1), _scorer(model, engine) as score:
        score(np.zeros((batch_size, 80, 501), np.float32))  # warm-up: kernels, allocator
        for path in paths:
            clock = time.perf_counter()
            _sha256(path)
            probe(path)
            times["read_hash_s"] += time.perf_counter() - clock
            segments = _timed(iter_segments(stream_blocks(path)), times, "decode_s")
            batch = []
            for _, _, samples in segments:
                batch.append(samples)
                if len(batch) == batch_size:
                    n_segments += _features_and_model(batch, log_mel, score, times)
                    batch = []
            if batch:
                n_segments += _features_and_model(batch, log_mel, score, times)
    if model_only:
        return {"model_s": round(times["model_s"], 3)}
    times["reports_s"] = _report_time(paths, model)
    total = sum(times.values())
    audio_s = manifest["total_seconds"]
    return dict({key: round(value, 3) for key, value in times.items()},
                total_s=round(total, 3), segments=n_segments, batch=batch_size,
                share={key: round(value / total, 3) for key, value in times.items()},
                x_real_time_one_core={key: round(audio_s / value, 0)
                                      for key, value in times.items() if value > 0})


def _sha256(path: str) -> str:
    # the benchmark's own copy of checkpoint.file_sha256: it also times older versions
    # of fscan that do not have that module
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _features_and_model(batch, log_mel, score, times) -> int:
    clock = time.perf_counter()
    features = log_mel(np.stack(batch))
    middle = time.perf_counter()
    score(features)
    times["features_s"] += middle - clock
    times["model_s"] += time.perf_counter() - middle
    return len(batch)


def _timed(iterator, times: dict, key: str):
    # charge the time spent inside the iterator (not in its consumer) to ``key``
    while True:
        clock = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            times[key] += time.perf_counter() - clock
            return
        times[key] += time.perf_counter() - clock
        yield item


class _scorer:
    """``score(features) -> probabilities`` with the engine of the fscan under test
    (plain ``Detector.score`` for a version without engines)."""

    def __init__(self, model: str, engine: str):
        self.model, self.engine, self.context = model, engine, None

    def __enter__(self):
        import torch

        torch.set_num_threads(1)
        try:
            from forensics_scan.engine import open_scorer
        except ImportError:
            from forensics_scan.model import load_checkpoint

            detector = load_checkpoint(self.model)
            return lambda features: detector.score(features).numpy()
        self.context = open_scorer(self.model, self.engine)
        return self.context.__enter__().score

    def __exit__(self, *exc_info):
        if self.context is not None:
            self.context.__exit__(*exc_info)


def _report_time(paths, model: str) -> float:
    """Seconds to build the report and write the CSV for the corpus (results from an
    in-process scan, which is not timed)."""
    from forensics_scan.model import load_checkpoint
    from forensics_scan.reports import write_report
    from forensics_scan.scan import ScanOptions, build_report, scan_paths

    results = scan_paths(paths, model, ScanOptions(jobs=2))
    detector = load_checkpoint(model)
    with tempfile.TemporaryDirectory() as folder:
        clock = time.perf_counter()
        report = build_report(results, detector, ScanOptions(jobs=2))
        write_report("csv", report, os.path.join(folder, "out.csv"))
        return time.perf_counter() - clock


def latency(model: str, work: str) -> dict:
    """One 5 s segment: model only (features in, probability out, warm, one thread),
    the library on a 5 s file (warm, ``scan_paths``), and the command line on it
    (cold: a fresh process, startup and model loading included)."""
    import soundfile as sf

    from forensics_scan.features import log_mel
    from forensics_scan.scan import ScanOptions, scan_paths

    spec = corpus_module.Spec("five.wav", 5.0, 16000, 1, "WAV", "PCM_16")
    path = os.path.join(work, spec.path)
    corpus_module.write(path, spec)
    audio, _ = sf.read(path, dtype="float32")
    features = log_mel(audio)[None]
    with _scorer(model, "torch") as score:
        model_ms = _median_ms(lambda: score(features), 50)
    options = ScanOptions(jobs=1)
    scan_paths([path], model, options)  # warm-up
    library_ms = _median_ms(lambda: scan_paths([path], model, options), 10)
    cli = median_wall(FSCAN + [path, "--model", model, "--no-cache", "--quiet", "--jobs", "1",
                               "--csv", os.path.join(work, "five.csv")], 3)
    return {"model_only_ms": model_ms, "library_5s_file_ms": library_ms,
            "cli_5s_file_s": cli}


def _median_ms(function, repeat: int) -> float:
    function()
    walls = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        walls.append(time.perf_counter() - started)
    return round(1000 * statistics.median(walls), 2)


# --- setup and reporting ---------------------------------------------------------------------

def make_model(folder: str) -> str:
    """A seeded random checkpoint of the default architecture (same cost as a trained one)."""
    path = os.path.join(folder, "bench_lcnn.safetensors")
    if not os.path.exists(path):
        import torch

        from forensics_scan.model import LCNN, save_checkpoint

        torch.manual_seed(20261126)
        model = LCNN().eval()
        save_checkpoint(path, model, threshold=0.5, provenance={"benchmark": True})
    return path


def supports_engine() -> bool:
    try:
        import forensics_scan.engine  # noqa: F401
    except ImportError:
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        info["cpu"] = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                            if line.startswith("Model name")), "")
        with open("/proc/meminfo") as handle:
            info["memory_gb"] = round(int(handle.readline().split()[1]) / 2 ** 20, 1)
    except (OSError, StopIteration):
        pass
    for name in ("numpy", "torch", "onnxruntime", "soundfile", "soxr", "scipy"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    return info


def other_load() -> dict:
    """1-minute load average and whether a training job shares the machine."""
    training = subprocess.run(["pgrep", "-f", "fscan train"], capture_output=True,
                              text=True).stdout.split()
    return {"loadavg_1min": os.getloadavg()[0], "fscan_train_running": bool(training)}


def table(figures: dict) -> str:
    audio_min = figures["corpus"]["audio_seconds"] / 60
    rows = [("corpus", f"{figures['corpus']['files']} files, {audio_min:.1f} min of audio"),
            ("fscan --help", f"{figures['help_s']:.3f} s")]
    for key, label in (("jobs1", "--jobs 1, --no-cache"), ("jobs2", "--jobs 2, --no-cache"),
                       ("onnx_jobs2", "--engine onnx --jobs 2, --no-cache"),
                       ("onnx_jobs2_export_cached", "--engine onnx --jobs 2, export cached")):
        if key in figures:
            rows.append((label, _run_text(figures[key])))
    cache = figures["cache"]
    rows.append(("cache: first scan (fills)", _run_text(cache["first"])))
    rows.append(("cache: second scan", _run_text(cache["second"])))
    rows.append(("cache speed-up", f"{cache['speedup']:.1f}x"))
    lat = figures["latency"]
    rows.append(("one 5 s segment, model only", f"{lat['model_only_ms']:.2f} ms"))
    rows.append(("5 s file, library (warm)", f"{lat['library_5s_file_ms']:.1f} ms"))
    rows.append(("5 s file, command line (cold)", f"{lat['cli_5s_file_s']:.3f} s"))
    st = figures["stages"]
    for key in ("read_hash_s", "decode_s", "features_s", "model_s", "reports_s"):
        rows.append((f"stage {key[:-2]} (1 thread)",
                     f"{st[key]:.2f} s  {100 * st['share'][key]:4.1f} %  "
                     f"{st['x_real_time_one_core'].get(key, float('inf')):.0f}x real time"))
    if "stages_onnx_model_s" in figures:
        rows.append(("stage model, onnx (1 thread)", f"{figures['stages_onnx_model_s']:.2f} s"))
    if "long_file" in figures:
        rows.append((f"{figures['long_file']['hours']:g} h file, default cache on",
                     _run_text(figures["long_file"])))
    load = figures["load_at_start"], figures["load_at_end"]
    rows.append(("other load (start / end)",
                 f"loadavg {load[0]['loadavg_1min']:.2f} / {load[1]['loadavg_1min']:.2f}; "
                 f"fscan train running: {load[0]['fscan_train_running']} / "
                 f"{load[1]['fscan_train_running']}"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _run_text(run: dict) -> str:
    return (f"{run['wall_s']:7.2f} s  {run['x_real_time']:7.0f}x real time  "
            f"CPU {run['cpu_s']:6.2f} s  peak RSS {run['peak_tree_rss_mb']:.0f} MB (tree), "
            f"{run['max_process_rss_mb']:.0f} MB (largest process)")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


if __name__ == "__main__":
    sys.exit(main())

"""Many small files: memory stays bounded and the progress bar stays accurate (issue 5).

    python benchmarks/bench_many_files.py              # 10,000 files (~5 min the first time)
    python benchmarks/bench_many_files.py -n 500       # a smoke run

Builds ``-n`` small seeded files under ``--folder`` (default ``work/many_files``,
git-ignored; reused when it already holds the same spec): speech-like clips of 0.5-4 s
(``corpus.py``'s generator), mostly 16 kHz mono WAV, some 44.1 kHz stereo FLAC and
44.1 kHz MP3, spread over nested folders, plus a few inputs that cannot be scored
(zero-byte ``.wav``, text named ``.wav``, random bytes named ``.mp3``, a 0.05 s clip,
digital silence). Then:

1. **Command line**, in a child process: ``fscan FOLDER --csv out.csv --no-cache
   --quiet`` (bundled model unless ``--model``, ``--jobs`` as fscan's default unless
   given). Every ``--interval-ms`` the benchmark reads the child's ``VmRSS`` and
   ``VmHWM`` from ``/proc/PID/status`` and which input files it has open
   (``/proc/PID/fd``): the scan reads files in sorted order, so the highest open file
   says how far the scan is, and the RSS can be given at 10 %, 50 % and 100 % of the
   files, not just of the time. GNU time's ``%M`` gives the exact peak. The CSV must
   hold exactly one row per input file, every row that is not ``ok`` must give a reason,
   every clean clip must be scored, and every broken one must not be.
2. **Library**, in this process: ``forensics_scan.scan.scan_paths`` on the same file
   list (the one ``find_audio_files`` gives the command line) with a progress callback
   that records every ``(done, total)`` and also drives the real ``ProgressBar`` (rich,
   drawing into a string as if on a terminal). ``scan_paths`` reports ``(0, N)`` before
   the first file and ``(k, N)`` as each file is finished, in order, so there must be
   ``N + 1`` calls, ``done`` rising by exactly one, ``total`` fixed at ``N``, and the bar
   must end at ``N/N``. Also: the longest time the bar stood still, and how far a
   linear ETA taken at 10 % and 50 % was from the real remaining time.

A table goes to stdout and every figure to ``--out`` (default ``work/many_files.json``).
Exit status 1 when a check fails.
"""

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_scan  # noqa: E402  (sibling script: machine(), other_load(), FSCAN, GNU_TIME)
import corpus as corpus_module  # noqa: E402

REPO = bench_scan.REPO
SPEC_VERSION = 1  # bump when the spec or a writer changes: a stale folder is rebuilt
MARKER = ".fscan-bench-many-files"  # marks a folder this script may delete and rebuild
FRACTIONS = (0.1, 0.5, 1.0)

# file kinds: clean clips must be scored ("ok"); broken ones must come back with a reason
CLEAN = {"wav16k": 0.85, "flac44k": 0.09, "mp3": 0.06}  # shares of the clean files
BROKEN = {  # kind -> status the scan should give it
    "zero_byte": "error", "text_as_wav": "error", "random_bytes_mp3": "error",
    "too_short": "skipped", "silence": "skipped",
}


@dataclass(frozen=True)
class Item:
    """One input file."""

    path: str  # relative to the folder
    kind: str  # a key of CLEAN or BROKEN
    seconds: float  # 0 for the broken kinds without audio


# --- the file set -----------------------------------------------------------------------

def items(n: int, seed: int) -> List[Item]:
    """``n`` seeded inputs: ``max(1, n // 2000)`` of each broken kind, the rest clean."""
    rng = np.random.default_rng(seed)
    per_broken = max(1, n // 2000)
    broken_at = rng.choice(n, size=min(n, per_broken * len(BROKEN)), replace=False)
    kinds = rng.choice(list(CLEAN), size=n, p=list(CLEAN.values())).tolist()
    for position, index in enumerate(sorted(broken_at.tolist())):
        kinds[index] = list(BROKEN)[position % len(BROKEN)]
    seconds = rng.uniform(0.5, 4.0, n).round(2)
    extension = {"flac44k": ".flac", "mp3": ".mp3", "random_bytes_mp3": ".mp3"}
    out = []
    for i, kind in enumerate(kinds):
        # nested folders 0-3 deep: d00..d19 / s0..s9 / t0..t2
        parts = [f"d{(i // 500) % 20:02d}", f"s{(i // 50) % 10}", f"t{i % 3}"][:i % 4]
        name = f"{kind}_{i:05d}{extension.get(kind, '.wav')}"
        length = {"too_short": 0.05, "silence": 2.0}.get(
            kind, float(seconds[i]) if kind in CLEAN else 0.0)
        out.append(Item("/".join(parts + [name]), kind, length))
    return out


def _corpus_spec(item: Item) -> corpus_module.Spec:
    if item.kind == "flac44k":
        return corpus_module.Spec(item.path, item.seconds, 44100, 2, "FLAC", "PCM_16")
    if item.kind == "mp3":
        return corpus_module.Spec(item.path, item.seconds, 44100, 1, "MP3", "MPEG_LAYER_III")
    return corpus_module.Spec(item.path, item.seconds, 16000, 1, "WAV", "PCM_16")


def _write_item(args) -> int:
    folder, item = args
    path = os.path.join(folder, item.path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    seed = int.from_bytes(hashlib.sha256(item.path.encode()).digest()[:4], "little")
    if item.kind in CLEAN or item.kind == "too_short":
        corpus_module.write(path, _corpus_spec(item))
    elif item.kind == "silence":
        import soundfile as sf

        sf.write(path, np.zeros(int(item.seconds * 16000), np.int16), 16000, subtype="PCM_16")
    elif item.kind == "zero_byte":
        open(path, "wb").close()
    elif item.kind == "text_as_wav":
        with open(path, "w") as handle:
            handle.write("Minutes of the meeting, not a recording.\n" * 40)
    elif item.kind == "random_bytes_mp3":
        with open(path, "wb") as handle:
            handle.write(np.random.default_rng(seed).bytes(8192))
    return os.path.getsize(path)


def build(folder: str, wanted: List[Item], log) -> dict:
    """Write the files of ``wanted`` under ``folder`` unless it already holds exactly them."""
    spec_hash = hashlib.sha256(json.dumps(
        [SPEC_VERSION, corpus_module.CORPUS_VERSION, [asdict(i) for i in wanted]]).encode()
    ).hexdigest()
    manifest_path = os.path.join(folder, "manifest.json")
    previous = corpus_module._read_json(manifest_path)
    if previous.get("spec_sha256") == spec_hash and all(
            _size(os.path.join(folder, i.path)) == previous.get("sizes", {}).get(i.path)
            for i in wanted):
        log(f"files: reusing {folder} ({len(wanted)} files, same spec)")
        return previous
    if os.path.isdir(folder) and os.listdir(folder):
        if not os.path.exists(os.path.join(folder, MARKER)):
            raise SystemExit(f"{folder} exists and was not made by this script: "
                             "give another --folder or remove it")
        log(f"files: {folder} holds another spec; rebuilding it")
        shutil.rmtree(folder)
    os.makedirs(folder)
    open(os.path.join(folder, MARKER), "w").close()  # not an audio extension: never scanned
    log(f"files: writing {len(wanted)} files under {folder}")
    started = time.time()
    sizes = {}
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        for item, size in zip(wanted, pool.map(_write_item, [(folder, i) for i in wanted],
                                               chunksize=64)):
            sizes[item.path] = size
            if len(sizes) % 1000 == 0:
                log(f"  {len(sizes)} / {len(wanted)} ({time.time() - started:.0f} s)")
    manifest = {"spec_sha256": spec_hash, "files": len(wanted), "sizes": sizes,
                "kinds": {kind: sum(i.kind == kind for i in wanted)
                          for kind in list(CLEAN) + list(BROKEN)},
                "audio_seconds": round(sum(i.seconds for i in wanted if i.kind in CLEAN), 3),
                "build_s": round(time.time() - started, 1)}
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
    log(f"  done in {manifest['build_s']:.0f} s")
    return manifest


def _size(path: str) -> Optional[int]:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


# --- 1. the command line in a child process -------------------------------------------------

class _Sampler(threading.Thread):
    """Samples the scanning process: time, VmRSS, VmHWM, highest input file open."""

    def __init__(self, root: int, index: Dict[str, int], interval_s: float):
        super().__init__(daemon=True)
        self.root, self.index, self.interval_s = root, index, interval_s
        self.samples: List[tuple] = []  # (t_s, rss_kb, hwm_kb, position or -1)
        self.pid: Optional[int] = None
        self.started = time.perf_counter()
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            pid = self.pid or self._scanner()
            if pid is not None:
                self.pid = pid
                status = _status(pid)
                if status.get("VmRSS"):  # a zombie has none
                    self.samples.append((time.perf_counter() - self.started,
                                         status.get("VmRSS", 0), status.get("VmHWM", 0),
                                         self._position(pid)))
            self._stop_event.wait(self.interval_s)

    def _scanner(self) -> Optional[int]:
        # the python under GNU time; the root itself when there is no wrapper
        if not os.path.exists(bench_scan.GNU_TIME):
            return self.root
        try:
            with open(f"/proc/{self.root}/task/{self.root}/children") as handle:
                children = handle.read().split()
        except OSError:
            children = [str(pid) for pid in bench_scan._tree(self.root) if pid != self.root]
        return int(children[0]) if children else None

    def _position(self, pid: int) -> int:
        best = -1
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return best
        for name in names:
            try:
                best = max(best, self.index.get(os.readlink(f"/proc/{pid}/fd/{name}"), -1))
            except OSError:
                continue
        return best

    def stop(self):
        self._stop_event.set()
        self.join()


def _machine_cpu_s() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores, /proc/stat)."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # guest time is already counted in user
    return busy / os.sysconf("SC_CLK_TCK")


def _status(pid: int) -> dict:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return {line.split(":")[0]: int(line.split()[1]) for line in handle
                    if line.startswith(("VmRSS", "VmHWM"))}
    except (OSError, ValueError, IndexError):
        return {}


def run_cli(folder: str, paths: List[str], model: Optional[str], jobs: Optional[int],
            interval_s: float, work: str) -> dict:
    csv_path = os.path.join(work, "out.csv")
    command = bench_scan.FSCAN + [folder, "--csv", csv_path, "--no-cache", "--quiet"]
    if model:
        command += ["--model", model]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    time_path = os.path.join(work, "time.txt")
    if os.path.exists(bench_scan.GNU_TIME):
        command = [bench_scan.GNU_TIME, "-f", "%M %e %U %S", "-o", time_path] + command
    index = {os.path.realpath(path): i for i, path in enumerate(paths)}
    with open(os.path.join(work, "stderr.txt"), "w+") as stderr:
        cpu_before = _machine_cpu_s()
        started = time.perf_counter()
        # cwd outside the checkout: 'python -m' must import the installed fscan
        process = subprocess.Popen(command, cwd=work, stdout=subprocess.DEVNULL, stderr=stderr)
        sampler = _Sampler(process.pid, index, interval_s)
        sampler.started = started
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        busy_s = _machine_cpu_s() - cpu_before
        sampler.stop()
        stderr.seek(0)
        errors = stderr.read()
    exit_code = os.waitstatus_to_exitcode(status)
    gnu = []
    if os.path.exists(time_path):
        with open(time_path) as handle:
            gnu = handle.read().split()
    samples = sampler.samples
    figures = {"command": " ".join(command[command.index("-m") - 1:]), "exit_code": exit_code,
               "wall_s": round(wall, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
               "peak_rss_mb": round(int(gnu[-4]) / 1024, 1) if len(gnu) >= 4 else None,
               "peak_rss_sampled_mb": round(max((s[2] for s in samples), default=0) / 1024, 1),
               # CPU seconds the whole machine spent outside fscan during the run (this
               # benchmark's sampler included, a few per cent of one core)
               "other_cpu_s": round(busy_s - (usage.ru_utime + usage.ru_stime), 1),
               "samples": len(samples), "interval_ms": round(1000 * interval_s),
               "stderr_tail": errors[-2000:]}
    figures.update(_memory_curve(samples, len(paths), wall))
    figures["csv"] = check_csv(csv_path)
    return figures


def _memory_curve(samples: List[tuple], n: int, wall: float) -> dict:
    """RSS when the scan had reached 10/50/100 % of the files (from the files it had open;
    "100 %" is the furthest file seen open when the very last one was not caught), at
    10/50/100 % of the wall time (100 %: the last sample, after the report is written),
    and the growth between 10 % and 100 % of the files."""
    fixes = [(t, rss, pos) for t, rss, _, pos in samples if pos >= 0]
    by_files, reached = {}, -1
    for t, rss, pos in fixes:
        reached = max(reached, pos)
        for fraction in FRACTIONS:
            key = f"{round(100 * fraction)}%"
            if key not in by_files and reached + 1 >= int(np.ceil(fraction * n)):
                by_files[key] = {"file": reached + 1, "t_s": round(t, 2),
                                 "rss_mb": round(rss / 1024, 1)}
    if fixes and "100%" not in by_files:
        # the last files go by faster than the sampling: take the furthest point seen
        t, rss, pos = max(fixes, key=lambda fix: (fix[2], -fix[0]))
        by_files["100%"] = {"file": pos + 1, "t_s": round(t, 2), "rss_mb": round(rss / 1024, 1)}
    by_time = {}
    for fraction in FRACTIONS:
        near = [s for s in samples if s[0] <= fraction * wall]
        if near:
            by_time[f"{round(100 * fraction)}%"] = {"t_s": round(near[-1][0], 2),
                                                   "rss_mb": round(near[-1][1] / 1024, 1)}
    curve = {"rss_by_files": by_files, "rss_by_time": by_time,
             "first_file_open_s": round(fixes[0][0], 2) if fixes else None,
             "files_seen_open": len({pos for _, _, pos in fixes})}
    if "10%" in by_files and "100%" in by_files:
        low, high = by_files["10%"], by_files["100%"]
        middle = by_files.get("50%", high)
        curve["files_per_s_10_to_50"] = round(
            (middle["file"] - low["file"]) / max(middle["t_s"] - low["t_s"], 1e-9), 1)
        curve["files_per_s_50_to_100"] = round(
            (high["file"] - middle["file"]) / max(high["t_s"] - middle["t_s"], 1e-9), 1)
        growth = high["rss_mb"] - low["rss_mb"]
        curve["growth_10_to_100_mb"] = round(growth, 1)
        curve["growth_mb_per_1000_files"] = round(
            1000 * growth / max(1, high["file"] - low["file"]), 2)
        # the same over every fix in between: least-squares slope, MB per 1000 files
        window = [(pos, rss) for t, rss, pos in fixes if low["t_s"] <= t <= high["t_s"]]
        if len(window) >= 3:
            x, y = np.array(window, dtype=float).T
            curve["slope_mb_per_1000_files"] = round(float(np.polyfit(x, y / 1024, 1)[0])
                                                     * 1000, 2)
    return curve


def check_csv(path: str) -> dict:
    """Rows, statuses, reasons: the CSV as read back (paths un-neutralised)."""
    if not os.path.exists(path):
        return {"exists": False, "rows": 0, "paths": []}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["path"].startswith("'"):
            row["path"] = row["path"][1:]
    statuses: Dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    return {"exists": True, "rows": len(rows), "statuses": statuses,
            "verdicts": {v: sum(r["verdict"] == v for r in rows) for v in ("real", "fake")},
            "audio_seconds": round(sum(float(r["duration_s"] or 0) for r in rows
                                       if r["status"] == "ok"), 3),
            "by_path": {r["path"]: (r["status"], r["error"]) for r in rows}}


def judge_csv(found: dict, paths: List[str], kinds: Dict[str, str]) -> dict:
    by_path = found.pop("by_path", {})
    missing = [p for p in paths if p not in by_path]
    extra = [p for p in by_path if p not in set(paths)]
    no_reason = [p for p, (status, error) in by_path.items() if status != "ok" and not error]
    wrong = {}
    reasons = {}
    for path in paths:
        if path not in by_path:
            continue
        status, error = by_path[path]
        kind = kinds[path]
        expected = BROKEN.get(kind, "ok")
        if status != expected:
            wrong[path] = f"{kind}: {status} (expected {expected}) {error}".strip()
        if kind in BROKEN:  # the reasons, with the file's own path left out
            reasons.setdefault(kind, set()).add(f"{status}: {error.replace(path, 'FILE')}")
    found.update(missing=missing[:20], n_missing=len(missing), extra=extra[:20],
                 n_extra=len(extra), non_ok_without_reason=no_reason[:20],
                 unexpected_status=dict(list(wrong.items())[:20]), n_unexpected=len(wrong),
                 broken_reasons={kind: sorted(text) for kind, text in reasons.items()},
                 ok=(found["rows"] == len(paths) and not missing and not extra
                     and not no_reason and not wrong))
    return found


# --- 2. the library in this process -------------------------------------------------------

def run_library(paths: List[str], model: str, jobs: Optional[int]) -> dict:
    from rich.console import Console

    from forensics_scan.reports.terminal import ProgressBar
    from forensics_scan.scan import ScanOptions, scan_paths

    n = len(paths)
    marks = {int(np.ceil(fraction * n)): f"{round(100 * fraction)}%" for fraction in FRACTIONS}
    calls: List[tuple] = []  # (done, total, t_s)
    rss = {}
    screen = io.StringIO()
    bar = ProgressBar(console=Console(file=screen, force_terminal=True, width=120,
                                      color_system=None))
    options = ScanOptions(jobs=-1 if jobs is None else jobs, cache_dir=None)

    def progress(done: int, total: int, path: str) -> None:
        calls.append((done, total, time.perf_counter() - started))
        bar(done, total, path)
        if done in marks and marks[done] not in rss:
            rss[marks[done]] = round(_status(os.getpid()).get("VmRSS", 0) / 1024, 1)

    rss["before"] = round(_status(os.getpid()).get("VmRSS", 0) / 1024, 1)
    started = time.perf_counter()
    with bar:
        results = scan_paths(paths, model, options, progress)
    wall = time.perf_counter() - started
    task = bar._progress.tasks[0] if getattr(bar, "_progress", None) else None
    done = [c[0] for c in calls]
    totals = {c[1] for c in calls}
    steps = np.diff(done) if len(done) > 1 else np.zeros(0)
    times = np.array([c[2] for c in calls])
    figures = {
        "wall_s": round(wall, 3), "results": len(results),
        "results_in_input_order": [r.path for r in results] == list(paths),
        "calls": len(calls), "expected_calls": n + 1,
        "first_call": list(calls[0][:2]) if calls else None,
        "last_call": list(calls[-1][:2]) if calls else None,
        "totals_seen": sorted(totals),
        "monotonic": bool((steps >= 0).all()), "max_step": int(steps.max()) if steps.size else 0,
        "steps_of_one": bool((steps == 1).all()),
        "bar_completed": task.completed if task else None,
        "bar_total": task.total if task else None,
        "bar_shows_n_of_n": f"{n}/{n}" in screen.getvalue(),
        "rss_mb": rss,
        "statuses": {s: sum(r.status == s for r in results) for s in ("ok", "skipped", "error")},
    }
    if len(times) > 1:
        gaps = np.diff(times[1:]) if len(times) > 2 else np.zeros(0)  # after the first file
        figures.update(first_file_s=round(float(times[1] - times[0]), 3),
                       longest_stall_s=round(float(gaps.max()), 3) if gaps.size else 0.0,
                       mean_gap_ms=round(1000 * float(gaps.mean()), 2) if gaps.size else 0.0)
        eta = {}
        for k, label in ((int(np.ceil(0.1 * n)), "10%"), (int(np.ceil(0.5 * n)), "50%")):
            if 0 < k < len(times):
                # linear ETA from the rate so far, against what was really left
                predicted = times[k] * (n - k) / k
                actual = times[-1] - times[k]
                eta[label] = {"predicted_s": round(float(predicted), 2),
                              "actual_s": round(float(actual), 2),
                              "error_pct": round(100 * float(predicted - actual)
                                                 / max(actual, 1e-9), 1)}
        figures["linear_eta"] = eta
        edges = [int(np.ceil(d * n / 10)) for d in range(11)]
        figures["files_per_s_by_tenth"] = [
            round((b - a) / max(float(times[b] - times[a]), 1e-9), 1)
            for a, b in zip(edges, edges[1:]) if b > a]
    figures["ok"] = (figures["calls"] == n + 1 and figures["first_call"] == [0, n]
                     and figures["last_call"] == [n, n] and figures["totals_seen"] == [n]
                     and figures["steps_of_one"] and figures["results"] == n
                     and figures["results_in_input_order"]
                     and (task is None or (task.completed == n and task.total == n))
                     and figures["bar_shows_n_of_n"])
    return figures


# --- main ---------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--files", type=int, default=10_000, help="number of files")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--folder", help="where the files go (default: work/many_files)")
    parser.add_argument("--out", help="JSON figures (default: work/many_files.json)")
    parser.add_argument("--model", help="checkpoint (default: fscan's bundled model)")
    parser.add_argument("--jobs", type=int, help="passed to fscan (default: fscan's default)")
    parser.add_argument("--interval-ms", type=float, default=50.0, help="RSS sampling period")
    parser.add_argument("--skip-library", action="store_true",
                        help="only the command line run (no in-process progress check)")
    args = parser.parse_args(argv)
    if args.files < 1:
        parser.error("--files must be at least 1")

    folder = os.path.realpath(args.folder or os.path.join(REPO, "work", "many_files"))
    out_path = os.path.abspath(args.out or os.path.join(REPO, "work", "many_files.json"))
    wanted = items(args.files, args.seed)
    manifest = build(folder, wanted, bench_scan.log)

    import forensics_scan
    from forensics_scan.discovery import find_audio_files

    found = find_audio_files([folder])
    paths = list(found.files)
    expected = [os.path.join(folder, item.path) for item in wanted]
    kinds = {os.path.join(folder, item.path): item.kind for item in wanted}
    model = os.path.abspath(args.model) if args.model else None

    figures = {"machine": bench_scan.machine(),
               "fscan": {"version": forensics_scan.__version__,
                         "source": os.path.dirname(forensics_scan.__file__)},
               "files": {"folder": folder, "n": args.files, "seed": args.seed,
                         "kinds": manifest["kinds"], "audio_seconds": manifest["audio_seconds"],
                         "bytes": sum(manifest["sizes"].values()),
                         "discovered": len(paths), "discovery_problems": len(found.problems),
                         "discovered_equals_written": sorted(paths) == sorted(expected)},
               "git": _git_state(), "model": model or "bundled", "jobs": args.jobs,
               "started_at": bench_scan.now(),
               "load_at_start": bench_scan.other_load()}
    work = tempfile.mkdtemp(prefix="fscan-many-")
    try:
        bench_scan.log(f"command line: fscan {folder} --csv out.csv --no-cache --quiet")
        cli = run_cli(folder, paths, model, args.jobs, args.interval_ms / 1000, work)
        cli["csv"] = judge_csv(cli["csv"], expected, kinds)
        audio_s = cli["csv"]["audio_seconds"] or manifest["audio_seconds"]
        cli["x_real_time"] = round(audio_s / cli["wall_s"], 1)
        cli["files_per_s"] = round(args.files / cli["wall_s"], 1)
        figures["cli"] = cli
        if not args.skip_library:
            bench_scan.log("library: scan_paths with a progress callback")
            if model is None:
                from forensics_scan.model import bundled_model_path

                model = bundled_model_path()
            figures["library"] = run_library(paths, model, args.jobs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["load_at_end"] = bench_scan.other_load()
    figures["finished_at"] = bench_scan.now()
    checks = {"csv_rows_equal_files": cli["csv"]["rows"] == args.files,
              "csv_every_file_accounted": cli["csv"]["ok"],
              "exit_code_0_or_1": cli["exit_code"] in (0, 1)}
    if "library" in figures:
        checks["progress_accurate"] = figures["library"]["ok"]
    figures["checks"] = checks
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as handle:
        json.dump(figures, handle, indent=1, sort_keys=True)
    print(table(figures))
    bench_scan.log(f"figures written to {out_path}")
    return 0 if all(checks.values()) else 1


def _git_state() -> dict:
    """The commit under test and whether fscan's source differs from it (read-only git)."""
    def git(*args):
        return subprocess.run(["git", "-C", REPO, *args], capture_output=True,
                              text=True).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "fscan_source_modified": bool(git("status", "--porcelain", "--",
                                              "forensics_scan", "models"))}


def table(figures: dict) -> str:
    files, cli = figures["files"], figures["cli"]
    kinds = files["kinds"]
    clean = sum(kinds[k] for k in CLEAN)
    rows = [("files", f"{files['n']:,} ({clean:,} clean: "
                      + ", ".join(f"{kinds[k]:,} {k}" for k in CLEAN)
                      + f"; {files['n'] - clean} broken: "
                      + ", ".join(f"{kinds[k]} {k}" for k in BROKEN) + ")"),
            ("audio", f"{cli['csv']['audio_seconds']:.0f} s scored "
                      f"({cli['csv']['audio_seconds'] / 3600:.2f} h), "
                      f"{files['bytes'] / 2 ** 20:.0f} MiB on disk"),
            ("command", cli["command"]),
            ("wall / CPU", f"{cli['wall_s']:.1f} s / {cli['cpu_s']:.1f} s "
                           f"(first file opened at {cli['first_file_open_s']} s); other "
                           f"processes used {max(0.0, cli['other_cpu_s']):.1f} CPU s meanwhile"),
            ("speed", f"{cli['x_real_time']:.0f}x real time, {cli['files_per_s']:.0f} files/s"),
            ("peak RSS", f"{cli['peak_rss_mb']} MB (GNU time), "
                         f"{cli['peak_rss_sampled_mb']} MB (VmHWM sampled)")]
    for key in ("10%", "50%", "100%"):
        point = cli["rss_by_files"].get(key)
        if point:
            rows.append((f"RSS at {key} of files",
                         f"{point['rss_mb']:.0f} MB (file {point['file']:,}, {point['t_s']} s)"))
    if "growth_10_to_100_mb" in cli:
        rows.append(("RSS growth 10 -> 100 %",
                     f"{cli['growth_10_to_100_mb']:+.1f} MB "
                     f"({cli['growth_mb_per_1000_files']:+.2f} MB per 1000 files; "
                     f"fit {cli.get('slope_mb_per_1000_files', float('nan')):+.2f})"))
    if "files_per_s_10_to_50" in cli:
        rows.append(("files/s 10-50 / 50-100 %", f"{cli['files_per_s_10_to_50']:.0f} / "
                                                 f"{cli['files_per_s_50_to_100']:.0f}"))
    rows.append(("RSS at 10/50/100 % of time", " / ".join(
        f"{cli['rss_by_time'][k]['rss_mb']:.0f}" for k in ("10%", "50%", "100%")
        if k in cli["rss_by_time"]) + " MB"))
    c = cli["csv"]
    rows.append(("CSV", f"{c['rows']:,} rows for {files['n']:,} files; statuses "
                        + ", ".join(f"{v:,} {k}" for k, v in sorted(c["statuses"].items()))
                        + f" ({c['verdicts']['fake']:,} fake, {c['verdicts']['real']:,} real)"
                        + f"; missing {c['n_missing']}, unexpected {c['n_unexpected']}, "
                          f"no reason {len(c['non_ok_without_reason'])}"))
    for kind, reasons in c["broken_reasons"].items():
        rows.append((f"  {kind}", " | ".join(reasons)))
    rows.append(("exit code", str(cli["exit_code"])))
    lib = figures.get("library")
    if lib:
        rows.append(("library wall", f"{lib['wall_s']:.1f} s (scan_paths, same files)"))
        rows.append(("progress calls", f"{lib['calls']:,} (expected {lib['expected_calls']:,}); "
                                       f"first {tuple(lib['first_call'])}, "
                                       f"last {tuple(lib['last_call'])}; totals seen "
                                       f"{lib['totals_seen']}"))
        rows.append(("progress steps", f"monotonic {lib['monotonic']}, all +1 "
                                       f"{lib['steps_of_one']}, max step {lib['max_step']}"))
        rows.append(("progress bar (rich)", f"{lib['bar_completed']}/{lib['bar_total']}, "
                                            f"shows N/N: {lib['bar_shows_n_of_n']}"))
        if "longest_stall_s" in lib:
            rows.append(("bar updates", f"first file after {lib['first_file_s']} s, then every "
                                        f"{lib['mean_gap_ms']} ms on average, longest stall "
                                        f"{lib['longest_stall_s']} s"))
            rows.append(("linear ETA error", ", ".join(
                f"at {k}: {v['predicted_s']} s predicted, {v['actual_s']} s real "
                f"({v['error_pct']:+.1f} %)" for k, v in lib["linear_eta"].items())))
        rows.append(("files/s by tenth", " ".join(f"{v:.0f}" for v in
                                                  lib.get("files_per_s_by_tenth", []))))
        rows.append(("library RSS", ", ".join(f"{k} {v:.0f} MB" for k, v in
                                              lib["rss_mb"].items())))
    rows.append(("fscan under test", f"{figures['git']['commit']}"
                                     + (" + uncommitted changes"
                                        if figures['git']['fscan_source_modified'] else "")))
    load = figures["load_at_start"], figures["load_at_end"]
    rows.append(("other load (start / end)",
                 f"loadavg {load[0]['loadavg_1min']:.2f} / {load[1]['loadavg_1min']:.2f}; "
                 f"fscan train running: {load[0]['fscan_train_running']} / "
                 f"{load[1]['fscan_train_running']}"))
    rows.append(("checks", ", ".join(f"{k}: {'PASS' if v else 'FAIL'}"
                                     for k, v in figures["checks"].items())))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


if __name__ == "__main__":
    sys.exit(main())

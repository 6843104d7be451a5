"""Latency of ``fscan stream``: from a window's last sample to its line on stdout (issue 6).

    python benchmarks/bench_stream.py                  # 120 s of audio at 4x real time
    python benchmarks/bench_stream.py --speed 1        # paced like a live call (slower)
    python benchmarks/bench_stream.py --speed 0        # as fast as the pipe takes it

Plays the bundled ``sample_audio/`` clips, concatenated and repeated to ``--seconds``,
as raw 16 kHz mono s16le into ``python -m forensics_scan stream --rate 16000`` through a
pipe, in 0.1 s chunks paced at ``--speed`` times real time (0: no pacing). fscan
measures each window's latency itself: from the read that delivered the window's last
sample to the line being written (the ``latency_ms`` of each line is the same up to
the write). The benchmark also times, on its own clock, from writing a window's last
chunk to reading its line: that adds the pipe in both directions.

Prints a table and writes every figure to ``--out`` (default ``work/bench_stream.json``).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16000
CHUNK_SECONDS = 0.1


def stream_audio(seconds: float) -> np.ndarray:
    """The sample clips, concatenated and repeated to ``seconds``, as int16."""
    sys.path.insert(0, str(ROOT))
    from forensics_scan.audio import load_audio

    clips = [load_audio(str(path)) for path in sorted((ROOT / "sample_audio").iterdir())
             if path.suffix.lower() in (".wav", ".flac", ".mp3", ".ogg")]
    audio = np.concatenate(clips)
    repeats = int(np.ceil(seconds * SAMPLE_RATE / audio.size))
    audio = np.tile(audio, repeats)[:int(seconds * SAMPLE_RATE)]
    return (np.clip(audio, -1, 1) * 32767).astype("<i2")


def run(audio: np.ndarray, speed: float, model: str = None) -> dict:
    command = [sys.executable, "-m", "forensics_scan", "stream", "--rate", str(SAMPLE_RATE),
               "--fail-on", "never"] + (["--model", model] if model else [])
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chunk = int(CHUNK_SECONDS * SAMPLE_RATE)
    written_at = {}  # sample count -> perf_counter when the chunk holding it was written

    def feed():
        started = None
        for first in range(0, audio.size, chunk):
            if started is None:
                started = time.perf_counter()
            if speed > 0:
                delay = started + first / SAMPLE_RATE / speed - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            process.stdin.write(audio[first:first + chunk].tobytes())
            process.stdin.flush()
            written_at[min(first + chunk, audio.size)] = time.perf_counter()
        process.stdin.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    lines, round_trip_ms = [], []
    for raw in process.stdout:
        now = time.perf_counter()
        window = json.loads(raw)
        lines.append(window)
        end = int(round(window["end_s"] * SAMPLE_RATE))
        closing = min((n for n in written_at if n >= end), default=None)
        if closing is not None and end < audio.size:  # the last window closes at EOF
            round_trip_ms.append((now - written_at[closing]) * 1000)
    feeder.join()
    stderr = process.stderr.read().decode()
    process.wait()
    fscan_ms = [window["latency_ms"] for window in lines]
    return {"speed": speed, "windows": len(lines), "stderr": stderr.strip(),
            "fscan_latency_ms": summary(fscan_ms), "pipe_round_trip_ms": summary(round_trip_ms)}


def summary(values) -> dict:
    if not values:
        return {}
    values = np.asarray(values)
    return {"median": round(float(np.median(values)), 2),
            "p95": round(float(np.percentile(values, 95)), 2),
            "max": round(float(values.max()), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="audio to stream")
    parser.add_argument("--speed", type=float, default=4.0,
                        help="times real time (1 = live; 0 = as fast as possible)")
    parser.add_argument("--model", help="checkpoint (default: the bundled model)")
    parser.add_argument("--out", default=str(ROOT / "work" / "bench_stream.json"))
    args = parser.parse_args()

    result = run(stream_audio(args.seconds), args.speed, args.model)
    result.update(seconds=args.seconds, machine=platform.processor() or platform.machine(),
                  cpus=os.cpu_count(), load_average=os.getloadavg())
    print(f"{result['windows']} windows of {args.seconds:g} s streamed at "
          f"{'full speed' if args.speed <= 0 else f'{args.speed:g}x real time'}; "
          f"load average {result['load_average'][0]:.2f} on {result['cpus']} CPUs")
    print(f"{'latency (ms)':32} {'median':>8} {'p95':>8} {'max':>8}")
    for label, key in (("fscan: window closed -> line", "fscan_latency_ms"),
                       ("pipe: last chunk in -> line out", "pipe_round_trip_ms")):
        figures = result[key]
        print(f"{label:32} {figures.get('median', 0):8.1f} {figures.get('p95', 0):8.1f} "
              f"{figures.get('max', 0):8.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Live mode: a stream scores like a file, window by window, as soon as each closes."""

import io
import json
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from forensics_scan.engine import open_scorer
from forensics_scan.scan import ScanOptions, scan_paths
from forensics_scan.audio import stream_blocks
from forensics_scan.stream import (ReadClock, StreamError, _integer_range, latency_summary,
                                   open_stream, pcm_blocks, run_stream)

ROOT = Path(__file__).resolve().parents[1]  # run this checkout's fscan, whatever the cwd


def pcm_bytes(samples):
    """float samples in [-1, 1] -> raw s16le bytes, as ``ffmpeg -f s16le`` writes them."""
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def stream(data, checkpoint, **options):
    windows = []
    with open_scorer(str(checkpoint)) as scorer:
        summary = run_stream(io.BytesIO(data), scorer.score, scorer.threshold,
                             windows.append, **options)
    return windows, summary


def scanned(path, checkpoint, hop_s=5.0):
    (result,) = scan_paths([str(path)], str(checkpoint), ScanOptions(jobs=1, hop_s=hop_s))
    return result


@pytest.mark.parametrize("seconds, hop_s", [(12.5, 5.0), (11.0, 2.5), (3.2, 5.0)])
def test_raw_stream_gives_the_windows_and_scores_of_the_same_file(
        tmp_path, tiny_checkpoint, speechlike, write_audio, seconds, hop_s):
    path = write_audio(tmp_path / "clip.wav", speechlike(seconds, seed=3))
    samples, _ = sf.read(path, dtype="int16")
    windows, summary = stream(samples.astype("<i2").tobytes(), tiny_checkpoint, hop_s=hop_s)
    result = scanned(path, tiny_checkpoint, hop_s)
    assert [(w["start_s"], w["end_s"]) for w in windows] == [
        (s.start_s, s.end_s) for s in result.segments]  # end-aligned last window, tiling
    assert [w["score"] for w in windows] == pytest.approx(
        [s.score for s in result.segments], abs=1e-5)
    assert [w["index"] for w in windows] == list(range(len(windows)))
    assert summary["windows"] == len(windows) and summary["latency"]["median_ms"] > 0


def test_stereo_44k_wav_stream_is_mixed_and_resampled_like_a_file(
        tmp_path, tiny_checkpoint, speechlike, write_audio):
    left, right = speechlike(7.0, 44100, seed=4), speechlike(7.0, 44100, seed=5)
    stereo = np.stack([left, right], axis=1)
    path = write_audio(tmp_path / "stereo.wav", stereo, 44100)
    windows, _ = stream((tmp_path / "stereo.wav").read_bytes(), tiny_checkpoint,
                        sample_rate=8000, channels=1)  # the WAV header must win
    result = scanned(path, tiny_checkpoint)
    assert [(w["start_s"], w["end_s"]) for w in windows] == [(0.0, 5.0), (2.0, 7.0)]
    assert [w["score"] for w in windows] == pytest.approx(
        [s.score for s in result.segments], abs=1e-3)


def test_raw_stereo_needs_channels(tiny_checkpoint, speechlike):
    mono = speechlike(6.0, seed=6)
    interleaved = pcm_bytes(np.stack([mono, mono], axis=1).reshape(-1))
    windows, _ = stream(interleaved, tiny_checkpoint, channels=2)
    assert [w["end_s"] for w in windows] == [5.0, 6.0]
    as_mono, _ = stream(interleaved, tiny_checkpoint, channels=1)
    assert [w["end_s"] for w in as_mono] == [5.0, 10.0, 12.0]  # twice as long: wrong


def test_empty_stream_and_float_wav(tiny_checkpoint, speechlike):
    assert stream(b"", tiny_checkpoint)[1]["windows"] == 0
    handle = io.BytesIO()
    sf.write(handle, speechlike(5.0), 16000, format="WAV", subtype="FLOAT")
    windows, _ = stream(handle.getvalue(), tiny_checkpoint)
    assert [(w["start_s"], w["end_s"]) for w in windows] == [(0.0, 5.0)]


def test_float_stream_beyond_full_scale_is_scaled_down_like_a_file(tmp_path, speechlike):
    # a pipeline that sends int16-range values as floats: clipping them to [-1, 1] would
    # turn the voice into a square wave. A file is scaled by its level (a power of two);
    # a stream by the integer range, here 16 bits, which is that level when peaks pass 2^14
    voice = speechlike(3.0, seed=3)
    loud = voice / np.abs(voice).max() * 30000.0
    path = tmp_path / "loud.wav"
    sf.write(path, loud, 16000, format="WAV", subtype="FLOAT")
    handle = open(path, "rb")
    fmt, first = open_stream(handle, 16000, 1)
    with handle:
        streamed = np.concatenate(list(pcm_blocks(handle, fmt, ReadClock(), first)))
    from_file = np.concatenate(list(stream_blocks(str(path))))

    np.testing.assert_allclose(streamed, loud / 32768.0, atol=1e-6)
    np.testing.assert_allclose(streamed, from_file, atol=1e-6)


@pytest.mark.parametrize("level, scale", [(1.0, 1.0), (4096.0, 2.0 ** 15), (2.0 ** 15, 2.0 ** 15),
                                          (2.0 ** 20, 2.0 ** 23), (2.0 ** 40, 2.0 ** 40)])
def test_a_float_stream_is_scaled_by_the_integer_range_that_covers_it(level, scale):
    assert _integer_range(level) == scale


@pytest.mark.parametrize("data", [b"RIFF\x00\x00\x00\x00AVI LIST",
                                  b"RIFF\x24\x00\x00\x00WAVEdata\x00\x00\x00\x00"])
def test_broken_wav_header_is_a_stream_error(tiny_checkpoint, data):
    with pytest.raises(StreamError):
        stream(data, tiny_checkpoint)


def test_stream_mixes_antiphase_channels_as_files_do(tiny_checkpoint, speechlike):
    voice = speechlike(10.0, seed=8)
    mono, stereo = io.BytesIO(), io.BytesIO()
    sf.write(mono, voice, 16000, format="WAV", subtype="PCM_16")
    sf.write(stereo, np.stack([voice, -voice], 1), 16000, format="WAV", subtype="PCM_16")

    expected, _ = stream(mono.getvalue(), tiny_checkpoint)
    windows, _ = stream(stereo.getvalue(), tiny_checkpoint)

    # -voice rounds to 16 bits a little differently from voice: scores agree to 1e-4
    assert [w["score"] for w in windows] == pytest.approx([w["score"] for w in expected],
                                                          abs=1e-4)


def test_wav_header_too_slow_for_speech_is_a_stream_error(tiny_checkpoint, speechlike):
    handle = io.BytesIO()
    sf.write(handle, speechlike(1.0, sr=2000), 2000, format="WAV", subtype="PCM_16")

    with pytest.raises(StreamError, match="2,000 Hz: too slow to carry speech"):
        stream(handle.getvalue(), tiny_checkpoint)


def test_latency_summary():
    assert latency_summary([]) == {"windows": 0, "median_ms": None, "p95_ms": None,
                                   "max_ms": None}
    summary = latency_summary([float(v) for v in range(1, 101)])
    assert summary["median_ms"] == 50.5 and summary["p95_ms"] == 95.05
    assert summary["max_ms"] == 100.0


def read_line(process, timeout_s):
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    assert ready, f"no window line within {timeout_s} s"
    return process.stdout.readline()


def test_pipe_gets_each_window_before_the_stream_ends(tiny_checkpoint, speechlike):
    """A generated stream through a real pipe: the first window's line arrives while
    the writer still holds the pipe open, then the rest at the end of the stream."""
    audio = pcm_bytes(speechlike(11.0, 8000, seed=7))
    first_window = 5 * 8000 * 2 + 3200  # a little more than 5 s at 8 kHz
    process = subprocess.Popen(
        [sys.executable, "-m", "forensics_scan", "stream", "--rate", "8000", "--model",
         str(tiny_checkpoint), "--threshold", "0", "--fail-on", "fake"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        process.stdin.write(audio[:first_window])
        process.stdin.flush()
        first = json.loads(read_line(process, timeout_s=60))
        assert (first["start_s"], first["end_s"], first["verdict"]) == (0.0, 5.0, "fake")
        assert first["latency_ms"] < 1000
        process.stdin.write(audio[first_window:])
        process.stdin.close()
        rest = [json.loads(line) for line in process.stdout.read().splitlines()]
        assert process.wait(timeout=60) == 1  # --threshold 0 flags every window
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert [(w["start_s"], w["end_s"]) for w in rest] == [(5.0, 10.0), (6.0, 11.0)]
    assert set(first) == {"index", "start_s", "end_s", "score", "verdict", "latency_ms"}
    summary = process.stderr.read().decode()
    assert "3 windows, 3 flagged" in summary and "p95" in summary


def test_cli_rejects_a_broken_wav_stream(tiny_checkpoint):
    result = subprocess.run(
        [sys.executable, "-m", "forensics_scan", "stream", "--model", str(tiny_checkpoint)],
        input=b"RIFF\x00\x00\x00\x00AVI LIST", capture_output=True, cwd=ROOT)
    assert result.returncode == 2
    assert b"cannot read the stream" in result.stderr


def test_a_silent_window_is_reported_as_no_speech(tiny_checkpoint, speechlike):
    samples = np.concatenate([speechlike(5.0, seed=1), np.zeros(80000, np.float32)])
    windows, summary = stream(pcm_bytes(samples), tiny_checkpoint)
    assert [w["verdict"] for w in windows][1] == "no_speech"
    assert windows[1]["score"] is None and windows[0]["score"] is not None
    json.dumps(windows)  # null, never NaN, in the JSON lines

"""The fast paths of the scanner agree with the plain ones (forensics_scan/scan.py,
audio.py, features.py): batches shared between threads, the score cache, the lazy
model, the channel mix-down and the log-Mel front end."""

import glob
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from forensics_scan import audio, features, scan
from forensics_scan.audio import SAMPLE_RATE, DecodeError
from forensics_scan.results import ERROR, OK
from forensics_scan.scan import ScanOptions, scan_paths


@pytest.fixture
def clips(tmp_path, speechlike, write_audio):
    folder = tmp_path / "clips"
    folder.mkdir()
    stereo = np.stack([speechlike(8.0, 44100, seed=5), speechlike(8.0, 44100, seed=6)], axis=1)
    return {"long": write_audio(folder / "long.wav", speechlike(61.0, seed=1)),
            "short": write_audio(folder / "short.wav", speechlike(3.0, seed=2)),
            "stereo": write_audio(folder / "stereo.flac", stereo, 44100),
            "mid": write_audio(folder / "mid.wav", speechlike(17.0, 22050, seed=3), 22050)}


def _scan(paths, model, **options):
    return scan_paths(list(paths), model, ScanOptions(**options))


def _scores(results):
    return [(r.path, r.status, [(s.start_s, s.end_s, s.score) for s in r.segments])
            for r in results]


def test_one_long_file_is_shared_by_the_threads_with_identical_scores(clips, tiny_checkpoint,
                                                                     monkeypatch):
    monkeypatch.setattr(scan, "BATCH_SEGMENTS", 2)  # the 61 s file makes 7 batches
    seen = set()
    plain = scan._score_audio

    def recording(*args):
        seen.add(threading.current_thread().name)
        return plain(*args)

    monkeypatch.setattr(scan, "_score_audio", recording)
    serial = _scan([clips["long"]], tiny_checkpoint, jobs=1)
    parallel = _scan([clips["long"]], tiny_checkpoint, jobs=2)

    assert parallel == serial and serial[0].n_segments == 13
    assert len(seen - {threading.current_thread().name}) == 2  # both workers scored batches


def test_reader_does_not_run_ahead_of_the_workers(clips, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(scan, "BATCH_SEGMENTS", 1)
    in_flight, most = [0], [0]
    lock = threading.Lock()
    plain = scan._Workers.submit

    def counting(self, function, *args):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])

        def task(*task_args):
            # counted down inside the task, i.e. before its future completes and frees
            # the slot: a done-callback would run after the release and race the reader
            try:
                return function(*task_args)
            finally:
                with lock:
                    in_flight[0] -= 1

        return plain(self, task, *args)

    monkeypatch.setattr(scan._Workers, "submit", counting)
    _scan([clips["long"]], tiny_checkpoint, jobs=2)

    assert most[0] <= 2 * 2 + 1  # the semaphore's slots, plus the one being handed over


def test_files_finish_in_input_order_with_several_threads(clips, tiny_checkpoint,
                                                          monkeypatch):
    monkeypatch.setattr(scan, "FILES_PER_TASK", 1)
    paths = [clips["long"], clips["short"], clips["stereo"], clips["mid"], clips["short"]]
    calls = []

    results = scan_paths(paths, tiny_checkpoint, ScanOptions(jobs=2),
                         progress=lambda done, total, path: calls.append((done, path)))

    assert [r.path for r in results] == paths
    assert calls == [(0, "")] + [(i + 1, path) for i, path in enumerate(paths)]
    assert results[1] == results[4]


def test_decode_error_in_the_middle_of_a_file_spares_the_others(clips, tiny_checkpoint,
                                                                monkeypatch):
    plain = audio.stream_blocks

    def failing(path, *args, **kwargs):
        for number, block in enumerate(plain(path, *args, **kwargs)):
            if path == clips["long"] and number == 1:
                raise DecodeError("decoding failed: truncated stream")
            yield block

    monkeypatch.setattr(scan, "stream_blocks", failing)
    results = _scan([clips["long"], clips["mid"]], tiny_checkpoint, jobs=2)

    assert [r.status for r in results] == [ERROR, OK]
    assert "truncated" in results[0].error


def test_cached_scores_skip_decoding_and_the_model(clips, tiny_checkpoint, tmp_path,
                                                   monkeypatch):
    cache_dir = str(tmp_path / "cache")
    paths = list(clips.values())
    uncached = _scan(paths, tiny_checkpoint, jobs=2)
    filled = _scan(paths, tiny_checkpoint, jobs=2, cache_dir=cache_dir)

    def no_decoding(path, *args, **kwargs):
        raise AssertionError(f"decoded {path} although it was cached")

    def no_model(*args, **kwargs):
        raise AssertionError("opened the model although every score was cached")

    monkeypatch.setattr(scan, "stream_blocks", no_decoding)
    monkeypatch.setattr(scan, "open_scorer", no_model)
    cached = _scan(paths, tiny_checkpoint, jobs=2, cache_dir=cache_dir)

    assert filled == uncached and cached == uncached


def test_cached_features_are_scored_by_another_model(clips, tiny_checkpoint, tmp_path,
                                                     tiny_arch, monkeypatch):
    import torch

    from forensics_scan.model import LCNN, save_checkpoint

    torch.manual_seed(1)
    other = str(tmp_path / "other.safetensors")
    save_checkpoint(other, LCNN(tiny_arch).eval(), threshold=0.5, provenance={})
    cache_dir = str(tmp_path / "cache")
    paths = [clips["long"], clips["short"]]
    _scan(paths, tiny_checkpoint, jobs=1, cache_dir=cache_dir)
    expected = _scan(paths, other, jobs=1)

    monkeypatch.setattr(scan, "stream_blocks", lambda *a, **k: pytest.fail("decoded"))
    from_features = _scan(paths, other, jobs=1, cache_dir=cache_dir)
    both = _scan(paths, tiny_checkpoint, jobs=1, cache_dir=cache_dir)  # first scores kept

    assert from_features == expected
    assert _scores(both) != _scores(expected)
    assert len(glob.glob(os.path.join(cache_dir, "*", "*.npz"))) == len(paths)


def test_long_files_cache_their_scores_only(clips, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "CACHE_MAX_SEGMENTS", 4)
    cache_dir = str(tmp_path / "cache")
    first = _scan([clips["long"], clips["mid"]], tiny_checkpoint, cache_dir=cache_dir, jobs=2)
    kept = {}
    for entry in glob.glob(os.path.join(cache_dir, "*", "*.npz")):
        with np.load(entry) as data:
            kept[len(data["times"])] = "features" in data.files

    monkeypatch.setattr(scan, "stream_blocks", lambda *a, **k: pytest.fail("decoded"))
    again = _scan([clips["long"], clips["mid"]], tiny_checkpoint, cache_dir=cache_dir, jobs=2)

    assert kept == {13: False, 4: True}  # 61 s: 13 segments; 17 s: 4 segments
    assert again == first


def test_a_fully_cached_scan_does_not_import_torch(clips, tiny_checkpoint, tmp_path):
    cache_dir = str(tmp_path / "cache")
    _scan([clips["short"], clips["stereo"]], tiny_checkpoint, cache_dir=cache_dir, jobs=1)
    code = ("import sys; from forensics_scan.scan import ScanOptions, scan_paths; "
            f"results = scan_paths([{clips['short']!r}, {clips['stereo']!r}], "
            f"{tiny_checkpoint!r}, ScanOptions(jobs=1, cache_dir={cache_dir!r})); "
            "print(sorted(m for m in ('torch', 'scipy.fft', 'librosa') if m in sys.modules), "
            "[r.status for r in results])")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()

    assert output == "[] ['ok', 'ok']"


def test_scan_leaves_thread_settings_as_it_found_them(clips, tiny_checkpoint):
    import torch
    from threadpoolctl import threadpool_info

    torch.set_num_threads(2)
    before = [pool["num_threads"] for pool in threadpool_info()]
    _scan([clips["short"]], tiny_checkpoint, jobs=2)

    assert torch.get_num_threads() == 2
    assert [pool["num_threads"] for pool in threadpool_info()] == before


@pytest.mark.parametrize("channels", [2, 3, 6])
def test_channel_mixdown_is_the_channel_mean(rng, channels):
    block = rng.standard_normal((4000, channels)).astype(np.float32)

    np.testing.assert_array_equal(audio.to_mono(block), block.mean(axis=1))
    assert audio.to_mono(block).flags.c_contiguous


def test_sanitise_replaces_non_finite_and_clips(rng):
    block = rng.standard_normal(1000).astype(np.float32) * 3
    block[[3, 5, 7]] = [np.nan, np.inf, -np.inf]

    clean = audio.sanitise(block)

    assert np.isfinite(clean).all() and np.abs(clean).max() <= 1.0
    assert clean[3] == clean[5] == clean[7] == 0.0


def test_mel_basis_equals_librosa():
    librosa = pytest.importorskip("librosa")
    reference = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=features.N_FFT,
                                    n_mels=features.N_MELS, fmin=features.F_MIN,
                                    fmax=features.F_MAX)

    np.testing.assert_allclose(features._mel_basis(), reference, rtol=1e-5, atol=1e-8)


def _plain_log_mel(segment: np.ndarray) -> np.ndarray:
    # the front end written out plainly: full N_FFT frames, numpy FFT in float64
    padded = np.pad(segment.astype(np.float64), features.N_FFT // 2, mode="reflect")
    window = np.zeros(features.N_FFT)
    left = (features.N_FFT - features.WIN_LENGTH) // 2
    window[left:left + features.WIN_LENGTH] = np.hanning(features.WIN_LENGTH + 1)[:-1]
    starts = range(0, padded.size - features.N_FFT + 1, features.HOP_LENGTH)
    frames = np.stack([padded[s:s + features.N_FFT] * window for s in starts])
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
    mel = features._mel_basis().astype(np.float64) @ power.T
    logmel = np.log(mel + features.LOG_FLOOR * mel.mean() + 1e-20)
    return logmel - logmel.mean()


def test_fast_log_mel_equals_the_plain_one(speechlike, rng):
    segments = np.stack([speechlike(5.0, seed=7), 0.001 * speechlike(5.0, seed=8),
                         (0.2 * rng.standard_normal(5 * SAMPLE_RATE)).astype(np.float32)])

    fast = features.log_mel(segments)

    for segment, got in zip(segments, fast):
        np.testing.assert_allclose(got, _plain_log_mel(segment), atol=1e-4)

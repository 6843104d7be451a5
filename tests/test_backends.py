"""Scanning on joblib backends: loky processes and a Dask cluster (forensics_scan/backends.py).

The dask tests start a ``distributed.LocalCluster`` on loopback with two worker
processes (one thread each), as a real cluster would run them: each worker imports
fscan and loads the model itself. Starting it takes a few seconds, so one cluster serves
the module, except the worker-failure test, which needs its own settings.
"""

import csv
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from forensics_scan import backends
from forensics_scan.audio import SAMPLE_RATE
from forensics_scan.backends import BackendError, chunk_paths
from forensics_scan.cli import main
from forensics_scan.results import ERROR, OK, SKIPPED
from forensics_scan.scan import ScanOptions, scan_paths

SAMPLE_AUDIO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "sample_audio")


@pytest.fixture
def inputs(tmp_path, speechlike, write_audio):
    """sample_audio/ plus a generated clip, a short one, silence and two broken files."""
    folder = tmp_path / "inputs"
    shutil.copytree(SAMPLE_AUDIO, folder / "sample_audio")
    write_audio(folder / "long.wav", speechlike(12.0, seed=1))
    write_audio(folder / "blip.wav", speechlike(0.05, seed=2))
    write_audio(folder / "silence.wav", np.zeros(3 * SAMPLE_RATE, np.float32))
    (folder / "empty.wav").write_bytes(b"")
    (folder / "broken.mp3").write_bytes(b"this is not audio")
    return folder


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster on loopback: 2 worker processes, 1 thread each."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0") as local:
        yield local


def scan_cli(folder, model, out, *extra):
    """Run ``fscan FOLDER`` writing the file and segment CSVs; returns both as text."""
    result = CliRunner().invoke(
        main, [str(folder), "--model", model, "--csv", str(out / "files.csv"), "--segments",
               str(out / "segments.csv"), "--quiet", "--fail-on", "never", *extra],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [(out / name).read_text(encoding="utf-8") for name in ("files.csv", "segments.csv")]


def test_dask_scan_writes_the_same_csv_as_a_local_scan(inputs, cluster, tiny_checkpoint,
                                                        tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "dask").mkdir()
    local = scan_cli(inputs, tiny_checkpoint, tmp_path / "local", "--no-cache")
    on_cluster = scan_cli(inputs, tiny_checkpoint, tmp_path / "dask", "--backend", "dask",
                          "--scheduler", cluster.scheduler_address)

    assert on_cluster == local
    rows = list(csv.DictReader(local[0].splitlines()))
    statuses = {os.path.basename(row["path"]): row["status"] for row in rows}
    assert len(rows) == 16  # 11 sample files and 5 generated ones
    assert statuses["long.wav"] == OK and statuses["blip.wav"] == SKIPPED
    assert statuses["silence.wav"] == SKIPPED
    assert statuses["empty.wav"] == ERROR and statuses["broken.mp3"] == ERROR


def test_workers_load_the_model_once_and_results_arrive_in_input_order(
        inputs, cluster, tiny_checkpoint):
    from distributed import Client

    paths = sorted(str(path) for path in inputs.rglob("*.*")
                   if path.suffix.lower() not in (".md", ".csv") and "COPYING" not in path.name)
    paths = paths[::-1] + paths[:3]  # not sorted, and some files twice
    calls = []
    options = ScanOptions(backend="dask", scheduler=cluster.scheduler_address)

    # many small chunks: results come back out of order and must be put back
    results = backends.scan_in_chunks(paths, tiny_checkpoint, options,
                                      lambda done, total, path: calls.append((done, total)),
                                      files_per_chunk=2)

    assert results == scan_paths(paths, tiny_checkpoint, ScanOptions(jobs=1))
    assert calls == [(done, len(paths)) for done in range(len(paths) + 1)]
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        loaded = client.run(lambda: len(__import__("forensics_scan.engine").engine._SCORERS))
    assert sorted(loaded.values()) == [1, 1]  # both workers worked, each loaded it once


def test_loky_backend_gives_the_same_results(inputs, tiny_checkpoint):
    paths = sorted(str(path) for path in inputs.glob("*.*"))
    options = ScanOptions(backend="loky", jobs=2)
    assert (backends.scan_in_chunks(paths, tiny_checkpoint, options, files_per_chunk=2)
            == scan_paths(paths, tiny_checkpoint, ScanOptions(jobs=1)))


def test_chunks_are_consecutive_and_bounded_by_files_and_bytes(tmp_path):
    sizes = [10, 10, 10, 10, 50, 10, 10, 200, 10]
    paths = []
    for number, size in enumerate(sizes):
        (tmp_path / f"{number}.wav").write_bytes(b"x" * size)
        paths.append(str(tmp_path / f"{number}.wav"))
    paths.append(str(tmp_path / "missing.wav"))

    chunks = list(chunk_paths(paths, files_per_chunk=3, chunk_bytes=60))

    assert [[index for index, _ in chunk] for chunk in chunks] == [
        [0, 1, 2], [3, 4], [5, 6], [7], [8, 9]]
    assert [path for chunk in chunks for _, path in chunk] == paths


def test_missing_scheduler_and_unreachable_scheduler_exit_2(inputs, tiny_checkpoint,
                                                           monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.delenv(backends.SCHEDULER_ENV, raising=False)
    monkeypatch.setattr(backends, "CONNECT_TIMEOUT_S", 0.5)
    runner = CliRunner()
    no_address = runner.invoke(main, [str(inputs), "--model", tiny_checkpoint, "--backend",
                                      "dask", "--quiet"])
    unreachable = runner.invoke(main, [str(inputs), "--model", tiny_checkpoint, "--backend",
                                       "dask", "--quiet"],
                                env={backends.SCHEDULER_ENV: "tcp://127.0.0.1:9"})
    assert no_address.exit_code == 2 and "--scheduler" in no_address.output
    assert unreachable.exit_code == 2
    assert "cannot reach the dask scheduler at tcp://127.0.0.1:9" in unreachable.output.lower()


def test_missing_dask_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(BackendError, match=r"pip install 'fscan\[dask\]'"):
        backends.connect("tcp://127.0.0.1:8786")


def test_onnx_on_dask_needs_a_shared_cache_folder(inputs, tiny_checkpoint):
    result = CliRunner().invoke(main, [str(inputs), "--model", tiny_checkpoint, "--backend",
                                       "dask", "--engine", "onnx", "--scheduler",
                                       "tcp://127.0.0.1:9", "--quiet"])
    assert result.exit_code == 2 and "--cache-dir" in result.output


# --- a worker that dies ---------------------------------------------------------------

def kill_on_read_plugin(marker: str):
    """A worker plugin: reading ``dies_once.wav`` kills the worker process the first time
    (anywhere on the cluster), reading ``poison.wav`` kills it every time. Registered
    plugins are set up again in the worker that the nanny starts in place of a dead one.
    The class is made here, inside a function, so that cloudpickle sends it by value:
    the workers cannot import the tests."""
    from distributed import WorkerPlugin

    class KillOnRead(WorkerPlugin):
        name = "fscan-test-kill-on-read"

        def setup(self, worker):
            from forensics_scan import scan

            original = scan._read_file

            def first_time() -> bool:
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                    return True
                except FileExistsError:
                    return False

            def read_or_die(path, *args):
                name = os.path.basename(path)
                if name == "poison.wav" or (name == "dies_once.wav" and first_time()):
                    os._exit(1)  # like a segfault in a decoder, or the OOM killer
                return original(path, *args)

            scan._read_file = read_or_die

    return KillOnRead()


def test_a_dead_worker_loses_no_file_and_a_file_that_keeps_killing_is_an_error(
        inputs, tiny_checkpoint, tmp_path):
    distributed = pytest.importorskip("distributed")
    import dask

    folder = tmp_path / "kill"
    folder.mkdir()
    for name in ("a.wav", "dies_once.wav", "poison.wav", "z.wav"):
        shutil.copy(inputs / "long.wav", folder / name)
    paths = sorted(str(path) for path in folder.iterdir())
    # allowed-failures 1: a task may lose one worker, the second death is KilledWorker;
    # saturation 1.0: a worker holds only the task it runs, so no innocent task is on a
    # worker when it dies; a short connect timeout: results lost with a dead worker are
    # given up on (and recomputed) sooner than the default 30 s
    settings = {"distributed.scheduler.allowed-failures": 1,
                "distributed.scheduler.worker-saturation": 1.0,
                "distributed.comm.timeouts.connect": "5s"}
    with dask.config.set(settings), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=":0") as local, distributed.Client(local) as client:
        client.register_plugin(kill_on_read_plugin(str(tmp_path / "died_once")))
        options = ScanOptions(backend="dask", scheduler=local.scheduler_address)
        results = backends.scan_in_chunks(paths, tiny_checkpoint, options, files_per_chunk=1)

    expected = scan_paths(paths, tiny_checkpoint, ScanOptions(jobs=1))
    by_name = {os.path.basename(result.path): result for result in results}
    assert (tmp_path / "died_once").exists()  # the worker did die once
    assert [r.path for r in results] == paths
    for name, want in zip(["a.wav", "dies_once.wav", "z.wav"], [0, 1, 3]):
        assert by_name[name] == expected[want]
    assert by_name["poison.wav"].status == ERROR
    assert "worker process died" in by_name["poison.wav"].error

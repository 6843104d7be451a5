"""Inference engines (forensics_scan/engine.py) and the scan command's --engine option."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from forensics_scan import cli, engine, model
from forensics_scan.checkpoint import ModelError, read_checkpoint_info
from forensics_scan.engine import EngineError, OnnxScorer, open_scorer
from forensics_scan.features import N_FRAMES, N_MELS
from forensics_scan.scan import ScanOptions, scan_paths


@pytest.fixture
def clips(tmp_path, speechlike, write_audio):
    folder = tmp_path / "clips"
    folder.mkdir()
    stereo = np.stack([speechlike(9.0, 44100, seed=3), speechlike(9.0, 44100, seed=4)], axis=1)
    return [write_audio(folder / "a.wav", speechlike(23.0, seed=1)),
            write_audio(folder / "b.flac", speechlike(4.0, seed=2)),
            write_audio(folder / "c.wav", stereo, 44100)]


def _segment_scores(results):
    return np.array([s.score for r in results for s in r.segments])


def _features(batch, seed=0):
    generator = np.random.default_rng(seed)
    return (3.0 * generator.standard_normal((batch, N_MELS, N_FRAMES))).astype(np.float32)


def test_onnx_engine_scores_match_torch(clips, tiny_checkpoint, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    options = dict(jobs=2, cache_dir=str(tmp_path / "cache"))

    by_torch = scan_paths(clips, tiny_checkpoint, ScanOptions(engine="torch", **options))
    by_onnx = scan_paths(clips, tiny_checkpoint, ScanOptions(engine="onnx", **options))

    torch_scores, onnx_scores = _segment_scores(by_torch), _segment_scores(by_onnx)
    assert len(torch_scores) == len(onnx_scores) > 6
    assert np.abs(torch_scores - onnx_scores).max() <= 1e-4
    assert [r.verdict for r in by_onnx] == [r.verdict for r in by_torch]


def test_torch_engine_keeps_the_checkpoint_scores(tiny_checkpoint):
    detector = model.load_checkpoint(tiny_checkpoint)  # plain layout, no_grad
    features = _features(5)
    with open_scorer(tiny_checkpoint, "torch") as scorer:
        got = scorer.score(features)

    assert got.dtype == np.float32 and got.shape == (5,)
    np.testing.assert_allclose(got, detector.score(features).numpy(), atol=1e-6)


def test_onnx_export_is_made_once_per_checkpoint_and_reused(tiny_checkpoint, tmp_path,
                                                            monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    cache_dir = str(tmp_path / "cache")
    sha256 = engine.file_sha256(tiny_checkpoint)
    with open_scorer(tiny_checkpoint, "onnx", cache_dir) as scorer:
        first = scorer.score(_features(3))
    exported = os.path.join(cache_dir, "onnx", f"{sha256}.onnx")
    assert os.path.exists(exported)

    def no_export(*args):
        raise AssertionError("exported again although the export was cached")

    monkeypatch.setattr(engine, "_export", no_export)
    monkeypatch.setattr(engine, "_SCORERS", {})  # a new process: nothing in memory
    with open_scorer(tiny_checkpoint, "onnx", cache_dir) as scorer:
        again = scorer.score(_features(3))

    np.testing.assert_array_equal(first, again)
    assert scorer.threshold == 0.5 and scorer.sha256 == sha256


def test_damaged_onnx_export_is_made_again(tiny_checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    cache_dir = str(tmp_path / "cache")
    exported = os.path.join(cache_dir, "onnx", f"{engine.file_sha256(tiny_checkpoint)}.onnx")
    os.makedirs(os.path.dirname(exported))
    with open(exported, "wb") as handle:
        handle.write(b"not an onnx model")
    monkeypatch.setattr(engine, "_SCORERS", {})

    with open_scorer(tiny_checkpoint, "onnx", cache_dir) as scorer:
        assert isinstance(scorer, OnnxScorer)
        scores = scorer.score(_features(2))

    assert scores.shape == (2,) and os.path.getsize(exported) > 1000


def test_onnx_without_cache_leaves_nothing_behind(tiny_checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))

    with open_scorer(tiny_checkpoint, "onnx") as scorer:
        scorer.score(_features(1))
        assert glob.glob(str(scratch / "*" / "*.onnx"))  # exported for this scan only

    assert os.listdir(scratch) == []


def test_missing_onnxruntime_is_a_clear_usage_error(tiny_checkpoint, tmp_path, speechlike,
                                                    write_audio, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes the import fail
    monkeypatch.setattr(engine, "_SCORERS", {})
    clip = write_audio(tmp_path / "clip.wav", speechlike(6.0))

    with pytest.raises(EngineError, match=r"pip install 'fscan\[onnx\]'"):
        scan_paths([clip], tiny_checkpoint, ScanOptions(jobs=1, engine="onnx"))
    result = CliRunner().invoke(cli.main, [clip, "--model", tiny_checkpoint, "--engine", "onnx",
                                           "--no-cache", "--quiet"])

    assert result.exit_code == 2
    assert "onnxruntime" in result.output and "pip install" in result.output


def test_cli_engine_option_runs_onnx_and_records_it(tiny_checkpoint, tmp_path, speechlike,
                                                    write_audio):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    clip = write_audio(tmp_path / "clip.wav", speechlike(12.0))
    reports = {}
    for name in engine.ENGINES:
        out = tmp_path / f"{name}.json"
        result = CliRunner().invoke(cli.main, [clip, "--model", tiny_checkpoint, "--engine", name,
                                               "--json", str(out), "--quiet", "--fail-on",
                                               "never", "--cache-dir", str(tmp_path / "cache")])
        assert result.exit_code == 0, result.output
        reports[name] = json.loads(out.read_text())

    assert reports["onnx"]["settings"]["engine"] == "onnx"
    torch_file, onnx_file = reports["torch"]["files"][0], reports["onnx"]["files"][0]
    assert abs(torch_file["score"] - onnx_file["score"]) <= 1e-4


def test_cli_engine_choices_are_the_engines():
    option = next(p for p in cli.scan.params if p.name == "engine")
    assert tuple(option.type.choices) == engine.ENGINES


def test_checkpoint_header_agrees_with_the_loader(tiny_checkpoint):
    info = read_checkpoint_info(tiny_checkpoint)
    detector = model.load_checkpoint(tiny_checkpoint)

    assert (info.sha256, info.threshold) == (detector.sha256, detector.threshold)
    assert info.metadata == detector.metadata
    assert info.metadata["arch"] == detector.model.arch  # what reports show


def test_checkpoint_header_refuses_what_the_loader_refuses(tiny_checkpoint, tmp_path,
                                                           monkeypatch):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="cannot read model"):
        read_checkpoint_info(str(tmp_path / "missing.safetensors"))
    with pytest.raises(ModelError, match="cannot read model"):
        read_checkpoint_info(str(garbage))

    monkeypatch.setattr("forensics_scan.features.N_MELS", 64)  # the code's front end moved
    with pytest.raises(ModelError, match="front-end"):
        read_checkpoint_info(tiny_checkpoint)


def test_unknown_engine_is_refused(tiny_checkpoint):
    with pytest.raises(ValueError):
        ScanOptions(engine="tensorrt")
    with pytest.raises(EngineError, match="unknown engine"):
        with open_scorer(tiny_checkpoint, "tensorrt"):
            pass


def test_onnx_engine_with_a_cached_export_does_not_import_torch(tiny_checkpoint, tmp_path,
                                                               speechlike, write_audio):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    cache_dir = str(tmp_path / "cache")
    with open_scorer(tiny_checkpoint, "onnx", cache_dir):
        pass  # exports
    clip = write_audio(tmp_path / "clip.wav", speechlike(7.0))
    code = ("import sys; from forensics_scan.scan import ScanOptions, scan_paths; "
            f"result, = scan_paths([{clip!r}], {tiny_checkpoint!r}, "
            f"ScanOptions(jobs=2, engine='onnx', cache_dir={cache_dir!r})); "
            "print('torch' in sys.modules, result.status, result.n_segments)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()

    assert output == ["False", "ok", "2"]

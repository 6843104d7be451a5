import hashlib
import json
import os
import sys

import numpy as np
import pytest
import torch

from forensics_scan.export import ExportError, export_onnx, export_torchscript, min_frames
from forensics_scan.features import N_FRAMES, N_MELS, frontend_config
from forensics_scan.model import build_model, load_checkpoint, save_checkpoint

THRESHOLD = 0.37
ARCH = {"stem": 4, "blocks": [4, 4], "pool": [True, True]}


# an ensemble's members differ in depth, so the shortest accepted input is the deeper one's
ENSEMBLE = {"members": [ARCH, dict(ARCH, head="one-class", blocks=[4, 4, 4],
                                   pool=[True, True, True])]}


@pytest.fixture(scope="module", params=[{"head": "linear"}, {"head": "one-class"},
                                        {"band_norm": True}, ENSEMBLE],
                ids=["linear", "one-class", "band-norm", "ensemble"])
def detector(tmp_path_factory, request):
    torch.manual_seed(0)
    model = build_model(request.param if "members" in request.param
                        else dict(ARCH, **request.param))
    with torch.no_grad():  # non-trivial batch-norm statistics, so eval mode matters
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(str(path), model, THRESHOLD, {"note": "random weights, for tests"})
    return load_checkpoint(str(path))


def features(batch, frames, seed=1):
    return np.random.default_rng(seed).normal(0, 3, (batch, N_MELS, frames)).astype(np.float32)


# shapes other than the ones export checks itself: the axes must really be dynamic
SHAPES = [(4, N_FRAMES), (1, 123), (2, 2 * N_FRAMES)]


def test_an_ensemble_needs_the_frames_of_its_deepest_member():
    assert min_frames(ARCH) == 2 ** 3
    assert min_frames(ENSEMBLE) == 2 ** 4


def test_torchscript_matches_the_checkpoint(detector, tmp_path):
    path = str(tmp_path / "model.pt")
    difference = export_torchscript(detector, path)
    assert 0 <= difference <= 1e-4
    extra = {"fscan.json": ""}
    loaded = torch.jit.load(path, _extra_files=extra)
    for batch, frames in SHAPES:
        inputs = features(batch, frames)
        with torch.no_grad():
            got = loaded(torch.from_numpy(inputs)).numpy()
        assert got.shape == (batch,)
        np.testing.assert_allclose(got, detector.score(inputs).numpy(), atol=1e-4, rtol=0)
    metadata = json.loads(extra["fscan.json"])
    assert float(metadata["fscan.threshold"]) == THRESHOLD
    assert metadata["fscan.source_sha256"] == detector.sha256


def test_onnx_matches_the_checkpoint_and_carries_its_metadata(detector, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    path = str(tmp_path / "model.onnx")
    difference = export_onnx(detector, path)
    assert 0 <= difference <= 1e-4

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (model_input,), (model_output,) = session.get_inputs(), session.get_outputs()
    assert model_input.shape[1] == N_MELS and isinstance(model_input.shape[0], str)
    assert isinstance(model_input.shape[2], str)  # dynamic time axis
    for batch, frames in SHAPES:
        inputs = features(batch, frames)
        (got,) = session.run([model_output.name], {model_input.name: inputs})
        assert got.shape == (batch,)
        np.testing.assert_allclose(got, detector.score(inputs).numpy(), atol=1e-4, rtol=0)

    props = {prop.key: prop.value for prop in onnx.load(path).metadata_props}
    assert float(props["fscan.threshold"]) == THRESHOLD
    assert json.loads(props["fscan.frontend"]) == frontend_config()
    with open(detector.path, "rb") as handle:
        assert props["fscan.source_sha256"] == hashlib.sha256(handle.read()).hexdigest()
    assert json.loads(props["fscan.arch"]) == detector.model.arch


def test_an_export_that_disagrees_is_refused_and_removed(detector, tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    shifted = detector.score
    monkeypatch.setattr(detector, "score", lambda batch: shifted(batch) + 1e-3)
    with pytest.raises(ExportError, match="differs from the checkpoint"):
        export_torchscript(detector, str(path))
    assert not os.path.exists(path)


def test_missing_onnxruntime_is_explained(detector, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes the import fail
    with pytest.raises(ExportError, match=r"pip install .*onnx"):
        export_onnx(detector, str(tmp_path / "model.onnx"))

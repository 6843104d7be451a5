"""Export a detector to ONNX or TorchScript for deployment without fscan.

Both exports take log-Mel features of shape ``(batch, N_MELS, frames)`` (``log_mel``'s
output) and return the probability that each segment is synthetic, shape ``(batch,)``:
the sigmoid is part of the exported graph. Batch size and number of frames are free;
the model needs at least ``min_frames(arch)`` frames. The audio front end is not
exported: a deployment must reproduce ``features.log_mel``, whose settings travel with
the export (ONNX ``metadata_props``, TorchScript extra file ``fscan.json``), together
with the decision threshold and the sha256 of the checkpoint it came from.

Every export is checked before it is returned: the exported model is run on fixed
random batches and must agree with ``Detector.score`` to within ``TOLERANCE``.
"""

import copy
import inspect
import json
import os
from typing import List

import numpy as np
import torch
from torch import nn

from .features import N_FRAMES, N_MELS
from .model import Detector

TOLERANCE = 1e-4  # largest accepted probability difference from Detector.score
INPUT_NAME, OUTPUT_NAME = "log_mel", "probability"
METADATA_FILE = "fscan.json"  # TorchScript extra file carrying deployment_metadata()


class ExportError(Exception):
    """An export that could not be written or does not reproduce the model."""


class _Probability(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(features))


def min_frames(arch: dict) -> int:
    """Fewest frames the model accepts: one frame must survive every time pooling (of
    every member, for an ensemble)."""
    if "members" in arch:
        return max(min_frames(member) for member in arch["members"])
    return 2 ** (1 + sum(bool(pool) for pool in arch["pool"]))


def deployment_metadata(detector: Detector) -> dict:
    """What a deployment must know besides the weights, as strings (ONNX props are).

    Keys: ``fscan.threshold``, ``fscan.frontend`` (JSON of ``features.frontend_config``
    at training time), ``fscan.source_sha256`` (the checkpoint file), ``fscan.arch``
    (JSON), ``fscan.input`` and ``fscan.output`` (what the tensors mean).
    """
    return {
        "fscan.threshold": repr(float(detector.threshold)),
        "fscan.frontend": json.dumps(detector.frontend, sort_keys=True),
        "fscan.source_sha256": detector.sha256,
        "fscan.arch": json.dumps(detector.model.arch, sort_keys=True),
        "fscan.input": f"{INPUT_NAME}: float32 (batch, {N_MELS}, frames), "
                       f"features.log_mel of 16 kHz audio, frames >= "
                       f"{min_frames(detector.model.arch)}",
        "fscan.output": f"{OUTPUT_NAME}: float32 (batch,), probability that the segment "
                        f"is synthetic; call it fake when >= fscan.threshold",
    }


def export_onnx(detector: Detector, path: str, opset: int = 17) -> float:
    """Write ``detector`` as an ONNX model with dynamic batch and time axes, and check it.

    Needs the optional packages ``onnx`` (to write) and ``onnxruntime`` (to check).

    Parameters
    ----------
    detector : Detector
        A loaded checkpoint (``model.load_checkpoint``).
    path : str
        Output ``.onnx`` file.
    opset : int
        ONNX operator set version.

    Returns
    -------
    float
        Largest absolute difference between ONNX Runtime's and ``detector.score``'s
        probabilities over the check batches.

    Raises
    ------
    ExportError
        If onnx or onnxruntime is missing, the model cannot be exported at ``opset``,
        or the exported model disagrees with the detector by more than ``TOLERANCE``
        (the file is then removed).
    """
    onnx = _optional("onnx")
    onnxruntime = _optional("onnxruntime")
    wrapper = _Probability(copy.deepcopy(detector.model)).eval()
    example = torch.zeros(2, N_MELS, N_FRAMES)
    # The TorchScript-based exporter (deprecated since torch 2.9 but exact here, see the
    # check below): the torch.export-based default needs the extra package onnxscript.
    # Before torch 2.5 it was the only exporter and ``dynamo`` did not exist.
    parameters = inspect.signature(torch.onnx.export).parameters
    legacy = {"dynamo": False} if "dynamo" in parameters else {}
    try:
        torch.onnx.export(wrapper, (example,), path, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch", 2: "frames"},
                                        OUTPUT_NAME: {0: "batch"}}, **legacy)
    except RuntimeError as error:  # torch.onnx.OnnxExporterError is one
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ExportError(f"cannot export to ONNX opset {opset}: {message}") from error
    exported = onnx.load(path)
    for key, value in deployment_metadata(detector).items():
        exported.metadata_props.add(key=key, value=value)
    onnx.save(exported, path)

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return _verify(detector, lambda batch: session.run(None, {INPUT_NAME: batch})[0], path)


def export_torchscript(detector: Detector, path: str) -> float:
    """Write ``detector`` as a TorchScript module (eval mode) and check it.

    The module is scripted, not traced, so no input shape is baked in. It can be loaded
    with ``torch.jit.load`` (or libtorch) without fscan; ``deployment_metadata`` is
    stored as the extra file ``fscan.json``.

    Returns
    -------
    float
        Largest absolute difference from ``detector.score`` over the check batches.

    Raises
    ------
    ExportError
        If the module disagrees with the detector by more than ``TOLERANCE`` (the file
        is then removed).
    """
    wrapper = _Probability(copy.deepcopy(detector.model)).eval()
    scripted = torch.jit.script(wrapper)
    extra = {METADATA_FILE: json.dumps(deployment_metadata(detector), sort_keys=True)}
    torch.jit.save(scripted, path, _extra_files=extra)
    loaded = torch.jit.load(path, map_location="cpu").eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return loaded(torch.from_numpy(batch)).numpy()

    return _verify(detector, run, path)


def check_batches(arch: dict) -> List[np.ndarray]:
    """Fixed pseudo-random log-Mel batches: the standard shape, and other batch sizes
    and frame counts (odd, and the shortest accepted) to exercise the dynamic axes."""
    generator = np.random.default_rng(20240917)
    shapes = [(3, N_MELS, N_FRAMES), (1, N_MELS, N_FRAMES // 2 + 1),
              (5, N_MELS, min_frames(arch))]
    # log-Mel features minus their mean spread over a few nats
    return [(3.0 * generator.standard_normal(shape)).astype(np.float32) for shape in shapes]


def _verify(detector: Detector, run, path: str) -> float:
    worst = 0.0
    for batch in check_batches(detector.model.arch):
        expected = detector.score(batch).numpy()
        got = np.asarray(run(batch))
        if got.shape != expected.shape:
            problem = f"returned shape {got.shape} for input {batch.shape}"
        else:
            difference = float(np.max(np.abs(got - expected)))
            worst = max(worst, difference)
            if difference <= TOLERANCE:
                continue
            problem = (f"differs from the checkpoint by up to {difference:.3g} on input "
                       f"{batch.shape} (tolerance {TOLERANCE:g})")  # NaN lands here too
        os.remove(path)
        raise ExportError(f"export {path} {problem}; removed it")
    return worst


def _optional(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ExportError(f"ONNX export needs the optional package {name!r}: "
                          f"pip install 'fscan[onnx]' (or onnx and onnxruntime)") from error

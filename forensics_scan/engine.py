"""Inference engines: turn batches of log-Mel features into probabilities.

Two engines score the same checkpoint:

- ``torch`` runs the checkpoint itself (``model.load_checkpoint``), in channels-last
  memory layout and ``torch.inference_mode``, one thread per calling thread.
- ``onnx`` runs the checkpoint exported by ``export.export_onnx`` with ONNX Runtime
  (optional: ``pip install 'fscan[onnx]'``). The export is made once per checkpoint
  sha256, kept in ``<cache_dir>/onnx/`` (or a temporary folder when there is no cache)
  and checked against the torch model when it is made; its probabilities agree with
  the torch engine's to within ``export.TOLERANCE`` (1e-4).

A ``Scorer`` is safe to call from several threads at once: the scanner shares one
between its worker threads.
"""

import os
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np

from .checkpoint import ModelError, file_sha256

ENGINES = ("torch", "onnx")
ONNX_FOLDER = "onnx"  # under the cache folder


class EngineError(ModelError):
    """A model that cannot run here: unreadable or incompatible checkpoint, unknown
    engine, missing optional package, or a failed export."""


class Scorer:
    """Scores log-Mel batches; ``threshold`` is the checkpoint's decision threshold."""

    engine = ""
    threshold = 0.5
    sha256 = ""  # of the checkpoint file

    def score(self, features: np.ndarray) -> np.ndarray:
        """Probabilities that each segment is synthetic.

        Parameters
        ----------
        features : np.ndarray, shape (batch, N_MELS, n_frames), float32

        Returns
        -------
        np.ndarray, shape (batch,), float32
        """
        raise NotImplementedError


class TorchScorer(Scorer):
    """The checkpoint run by PyTorch (``Detector.score``)."""

    engine = "torch"

    def __init__(self, detector):
        import torch

        self.detector = detector
        # MaxPool2d and the convolutions are several times faster in channels-last
        # layout on CPU; the input's channel axis has size 1, so it needs no copy
        detector.model.to(memory_format=torch.channels_last)
        self.threshold = detector.threshold
        self.sha256 = detector.sha256

    def score(self, features: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.detector.score(features).numpy()


class OnnxScorer(Scorer):
    """An ONNX export of the checkpoint run by ONNX Runtime on the calling thread."""

    engine = "onnx"

    def __init__(self, onnx_path: str, sha256: str):
        onnxruntime = _import_onnxruntime()  # and not torch: export.py imports it
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # parallelism comes from the scanner's threads
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(onnx_path, options,
                                                        providers=["CPUExecutionProvider"])
        except _session_errors(onnxruntime) as error:
            raise EngineError(f"cannot load {onnx_path}: {error}") from error
        props = self.session.get_modelmeta().custom_metadata_map
        if props.get("fscan.source_sha256") != sha256:
            raise EngineError(f"{onnx_path} was not exported from this checkpoint")
        self.threshold = float(props["fscan.threshold"])
        self.sha256 = sha256
        self.input_name = self.session.get_inputs()[0].name  # export.INPUT_NAME

    def score(self, features: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(features, dtype=np.float32)
        return self.session.run(None, {self.input_name: batch})[0]


_SCORERS = {}
_LOCK = threading.Lock()


@contextmanager
def open_scorer(model_path: str, engine: str = "torch",
                cache_dir: Optional[str] = None) -> Iterator[Scorer]:
    """A scorer for the checkpoint at ``model_path``, loaded once per process.

    For ``engine="onnx"`` the checkpoint is exported to ``<cache_dir>/onnx/<sha256>.onnx``
    unless that file exists; without ``cache_dir`` the export goes to a temporary
    folder that is removed when the context ends.

    Raises
    ------
    EngineError
        Unknown engine, unusable checkpoint, onnxruntime (or onnx, to export) missing,
        or a failed export.
    """
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}: choose from {', '.join(ENGINES)}")
    try:
        sha256 = file_sha256(model_path)
    except OSError as error:
        raise EngineError(f"cannot read model {model_path}: {error.strerror or error}") from error
    if engine == "torch":
        yield _cached(("torch", sha256), lambda: _load_torch(model_path))
        return
    _import_onnxruntime()  # fail before exporting anything
    if cache_dir is not None:
        onnx_path = os.path.join(cache_dir, ONNX_FOLDER, f"{sha256}.onnx")
        yield _cached(("onnx", onnx_path),
                      lambda: _load_onnx(model_path, onnx_path, sha256))
        return
    with tempfile.TemporaryDirectory(prefix="fscan-onnx-") as folder:
        # not cached in memory: the file goes away with the folder
        yield _load_onnx(model_path, os.path.join(folder, f"{sha256}.onnx"), sha256)


def _cached(key, load):
    with _LOCK:
        if key not in _SCORERS:
            _SCORERS[key] = load()
        return _SCORERS[key]


def _load_torch(model_path: str) -> TorchScorer:
    from .model import load_checkpoint

    try:
        return TorchScorer(load_checkpoint(model_path))
    except ModelError as error:
        raise EngineError(str(error)) from error


def _load_onnx(model_path: str, onnx_path: str, sha256: str) -> OnnxScorer:
    if os.path.exists(onnx_path):
        try:
            return OnnxScorer(onnx_path, sha256)
        except (EngineError, KeyError, ValueError):
            pass  # a damaged or foreign export is made again, never trusted
    _export(model_path, onnx_path)
    return OnnxScorer(onnx_path, sha256)


def _export(model_path: str, onnx_path: str) -> None:
    from .export import ExportError, export_onnx
    from .model import load_checkpoint

    os.makedirs(os.path.dirname(onnx_path), exist_ok=True)
    temporary = f"{onnx_path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        export_onnx(load_checkpoint(model_path), temporary)  # checked against torch
        os.replace(temporary, onnx_path)
    except (ExportError, ModelError) as error:
        raise EngineError(str(error)) from error
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _session_errors(onnxruntime) -> tuple:
    # ONNX Runtime's own exception classes derive from Exception only
    state = onnxruntime.capi.onnxruntime_pybind11_state
    names = ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "InvalidProtobuf",
             "InvalidGraph", "RuntimeException")
    return tuple(getattr(state, name) for name in names if hasattr(state, name)) + (
        RuntimeError, OSError)


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:
        raise EngineError("the onnx engine needs the optional package onnxruntime: "
                          "pip install 'fscan[onnx]'") from error
    return onnxruntime

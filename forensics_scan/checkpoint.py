"""What a checkpoint says about itself, read without torch.

A checkpoint is one safetensors file: the LCNN's tensors plus a JSON metadata string
(format, architecture, front-end settings, decision threshold, training provenance).
``read_checkpoint_info`` checks the header once for everybody: the scanner (which may
never need torch when every score is cached), the engines and ``model.load_checkpoint``.
"""

import hashlib
import json
import math
import os
from dataclasses import dataclass, field

FORMAT = "fscan-lcnn/1"
BUNDLED_NAME = "lcnn.safetensors"


class ModelError(Exception):
    """A checkpoint that cannot be used: missing, damaged, foreign or incompatible."""


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint's path, sha256 and validated metadata."""

    path: str
    sha256: str
    metadata: dict = field(repr=False)

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])


def read_checkpoint_info(path: str) -> CheckpointInfo:
    """Hash ``path`` and validate its metadata; the weights are not read.

    Raises
    ------
    ModelError
        If the file is missing or not a safetensors file, was not written by fscan, has
        a threshold outside [0, 1], or was trained with front-end settings different
        from this code.
    """
    from safetensors import SafetensorError, safe_open

    from .features import frontend_config

    try:
        sha256 = file_sha256(path)
        with safe_open(path, framework="numpy") as handle:
            raw = (handle.metadata() or {}).get("fscan")
        metadata = json.loads(raw) if raw is not None else None
        if not isinstance(metadata, dict):
            raise ValueError("no fscan metadata")
        threshold = float(metadata["threshold"])
    except (OSError, SafetensorError, ValueError, TypeError, KeyError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ModelError(f"cannot read model {path}: {reason}") from error
    if metadata.get("format") != FORMAT:
        raise ModelError(f"{path} is not an fscan LCNN checkpoint")
    if not (math.isfinite(threshold) and 0 <= threshold <= 1):
        raise ModelError(f"{path} has an invalid threshold {metadata['threshold']!r}")
    if metadata.get("frontend") != frontend_config():
        raise ModelError(f"{path} was trained with different front-end settings "
                         f"({metadata.get('frontend')}); retrain it with this version")
    return CheckpointInfo(path=str(path), sha256=sha256, metadata=metadata)


def rewrite_metadata(model_path: str, out_path: str, metadata: dict) -> None:
    """Copy the checkpoint at ``model_path`` to ``out_path`` with new ``metadata``.

    The tensors are copied unchanged. The file is written next to its destination and
    renamed into place, so a failure leaves nothing behind (``out_path`` may be
    ``model_path`` itself).
    """
    from safetensors.numpy import load_file, save_file

    tensors = load_file(model_path)
    temporary = out_path + ".tmp"
    save_file(tensors, temporary, metadata={"fscan": json.dumps(metadata, sort_keys=True)})
    os.replace(temporary, out_path)


def read_vocoder_metadata(path: str, kind: str, name: str) -> dict:
    """Metadata of a vocoder checkpoint fscan wrote (``vocoder.py``, ``gan_vocoder.py``),
    whose ``kind`` entry must be ``kind`` (``name`` is for messages); the weights are not
    read. Raises ``ValueError`` for any other file and ``OSError`` when it cannot be read.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as handle:
            metadata = handle.metadata() or {}
    except SafetensorError as error:
        raise ValueError(f"{path} is not a readable safetensors file: {error}") from error
    if metadata.get("kind") != kind:
        raise ValueError(f"{path} is not an fscan {name} vocoder checkpoint")
    return metadata


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundled_model_path() -> str:
    """Path of the checkpoint installed with the package."""
    from importlib.resources import files

    try:
        return str(files("forensics_scan.models").joinpath(BUNDLED_NAME))
    except ModuleNotFoundError:
        # running from a source checkout without installing: models/ sits beside the package
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        return os.path.join(here, "models", BUNDLED_NAME)

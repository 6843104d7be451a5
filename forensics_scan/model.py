"""Light CNN (LCNN) with Max-Feature-Map activations, and its checkpoint format.

The architecture follows the LCNN countermeasure of the ASVspoof baselines
(Lavrentyeva et al., 2017/2019): every convolution produces twice the channels it
keeps and a Max-Feature-Map (MFM) keeps the element-wise maximum of the two halves;
1x1 "network-in-network" convolutions, batch norm and 2x2 max pooling between blocks.
The head pools over time (mean and max), so any segment length works, and outputs one
logit: ``sigmoid(logit)`` is the probability that the segment is synthetic. The last layer
is linear, or (``arch["head"] = "one-class"``) the OC-softmax head of Zhang, Jiang and Duan
(IEEE SPL 2021), which scores the cosine between the embedding and one learned "genuine"
direction; see ``OneClassHead``.

A checkpoint is one safetensors file: tensors only, plus a JSON metadata string with
the architecture config, the front-end settings, the decision threshold and the
training provenance. Nothing in it is ever executed on load.
"""

import json
import os
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import torch
from torch import nn
from torch.nn.functional import linear, normalize

from .checkpoint import (BUNDLED_NAME, FORMAT, ModelError, bundled_model_path,  # noqa: F401
                         read_checkpoint_info)
from .features import N_MELS, frontend_config

DEFAULT_ARCH = {"stem": 8, "blocks": [16, 24, 32, 32], "pool": [True, True, True, False],
                "embedding": 32, "dropout": 0.3, "n_mels": N_MELS, "head": "linear"}
# OC-softmax's published settings: genuine embeddings are pulled within cos >= 0.9 of the
# genuine direction, synthetic ones pushed below cos 0.2; cosines are scaled by 20
ONE_CLASS = {"scale": 20.0, "genuine_margin": 0.9, "synthetic_margin": 0.2}
HEADS = ("linear", "one-class")


class MaxFeatureMap(nn.Module):
    """Split axis 1 (conv channels, or features of a linear layer) in two halves and keep
    their element-wise maximum."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = torch.chunk(x, 2, dim=1)
        return torch.maximum(first, second)


def _mfm_conv(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, 2 * c_out, kernel, padding=kernel // 2),
                         MaxFeatureMap())


class LCNNBlock(nn.Module):
    """1x1 MFM conv, batch norm, 3x3 MFM conv, optional 2x2 max pool, batch norm."""

    def __init__(self, c_in: int, c_out: int, pool: bool):
        super().__init__()
        self.layers = nn.Sequential(
            _mfm_conv(c_in, c_in, 1),
            nn.BatchNorm2d(c_in),
            _mfm_conv(c_in, c_out, 3),
            nn.MaxPool2d(2) if pool else nn.Identity(),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class OneClassHead(nn.Module):
    """OC-softmax's last layer: ``scale * (centre - cos(embedding, genuine direction))``.

    ``centre`` lies midway between the two margins, so the output is still a logit whose
    sign says "synthetic" and whose size is bounded by ``scale * (1 + centre)``: a large
    embedding cannot make the model more confident, only its direction counts. Training
    adds the margins (``logit_margin``); at scan time nothing differs from the linear head.
    """

    def __init__(self, embedding: int, scale: float, genuine_margin: float,
                 synthetic_margin: float):
        super().__init__()
        self.direction = nn.Parameter(torch.randn(1, embedding))
        self.scale = scale
        self.centre = (genuine_margin + synthetic_margin) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cosine = linear(normalize(x, dim=1), normalize(self.direction, dim=1))
        return self.scale * (self.centre - cosine)


def logit_margin(arch: dict) -> float:
    """How far training pushes logits past zero: 0 for the linear head (plain BCE).

    For the one-class head, OC-softmax's loss ``softplus(scale * (m_genuine - cos))`` for
    genuine and ``softplus(scale * (cos - m_synthetic))`` for synthetic segments equals BCE
    on the logit shifted by ``scale * (m_genuine - m_synthetic) / 2`` towards the wrong class.
    """
    if arch.get("head", "linear") == "linear":
        return 0.0
    settings = arch["one_class"]
    return settings["scale"] * (settings["genuine_margin"] - settings["synthetic_margin"]) / 2


class LCNN(nn.Module):
    """LCNN countermeasure.

    Input: log-Mel features, shape (batch, n_mels, n_frames). Output: logits, shape (batch,).

    ``arch["band_norm"]`` (off unless set) subtracts each Mel band's mean over the frames
    first, as cepstral mean normalisation does: the segment's long-term spectrum (channel
    colouring, voice timbre) is gone and only its deviations reach the convolutions.
    """

    def __init__(self, arch: Optional[dict] = None):
        super().__init__()
        self.arch = dict(DEFAULT_ARCH, **(arch or {}))
        stem, blocks, pools = self.arch["stem"], self.arch["blocks"], self.arch["pool"]
        if len(blocks) != len(pools):
            raise ValueError("arch: 'blocks' and 'pool' must have the same length")
        if self.arch["head"] not in HEADS:
            raise ValueError(f"arch: unknown head {self.arch['head']!r}; "
                             f"choose from {', '.join(HEADS)}")
        self.band_norm = bool(self.arch.get("band_norm", False))  # a plain bool for TorchScript
        layers = [_mfm_conv(1, stem, 5), nn.MaxPool2d(2)]
        c_in = stem
        for c_out, pool in zip(blocks, pools):
            layers.append(LCNNBlock(c_in, c_out, pool))
            c_in = c_out
        self.body = nn.Sequential(*layers)
        freq_bins = self.arch["n_mels"] // 2 ** (1 + sum(pools))
        pooled = 2 * c_in * freq_bins  # mean and max over time of every (channel, freq)
        embedding = self.arch["embedding"]
        if self.arch["head"] == "linear":
            last = nn.Linear(embedding, 1)
        else:
            self.arch["one_class"] = dict(ONE_CLASS, **self.arch.get("one_class", {}))
            last = OneClassHead(embedding, **self.arch["one_class"])
        self.head = nn.Sequential(
            nn.Dropout(self.arch["dropout"]),
            nn.Linear(pooled, 2 * embedding),
            MaxFeatureMap(),
            nn.BatchNorm1d(embedding),
            last,
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self._pooled(features)).squeeze(1)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """The embedding the last layer scores, shape (batch, arch["embedding"]).

        ``self.head[-1](model.embed(x)).squeeze(1)`` equals ``model(x)``; training uses it to
        put extra heads on the same embedding (``training.TrainConfig.system_weight``).
        """
        x = self._pooled(features)
        for layer in self.head[:-1]:
            x = layer(x)
        return x

    def _pooled(self, features: torch.Tensor) -> torch.Tensor:
        if self.band_norm:
            features = features - features.mean(dim=2, keepdim=True)
        x = self.body(features.unsqueeze(1))  # (batch, channels, freq, time)
        return torch.cat([x.mean(dim=3), x.amax(dim=3)], dim=1).flatten(1)


class LCNNEnsemble(nn.Module):
    """Several LCNNs that score the same features; the logit is the mean of theirs.

    ``arch`` is ``{"members": [member arch, ...]}``. Models trained on different data
    learn different cues (the model card's ablation: one trained with neural-vocoder twins
    catches those and loses the classical vocoders, the other the reverse); averaging
    their logits keeps both, at the cost of running every member. Input and output are
    the LCNN's, so the scanner, calibration and the exports need nothing else.
    """

    def __init__(self, arch: dict):
        super().__init__()
        members = arch.get("members")
        if not isinstance(members, list) or len(members) < 2:
            raise ValueError("arch: an ensemble needs a list of at least two 'members'")
        self.members = nn.ModuleList([LCNN(member) for member in members])
        self.arch = {"members": [member.arch for member in self.members]}

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = []
        for member in self.members:  # a loop, as TorchScript wants for a ModuleList
            logits.append(member(features))
        return torch.stack(logits).mean(dim=0)


def build_model(arch: dict) -> nn.Module:
    """The model ``arch`` describes: an ``LCNNEnsemble`` if it lists members, else an LCNN."""
    return LCNNEnsemble(arch) if "members" in arch else LCNN(arch)


@dataclass
class Detector:
    """A loaded model with everything its checkpoint says about itself."""

    model: nn.Module  # LCNN or LCNNEnsemble
    threshold: float
    metadata: dict
    sha256: str
    path: str = ""
    frontend: dict = field(default_factory=dict)

    @torch.no_grad()
    def score(self, features) -> "torch.Tensor":
        """Probabilities that each segment is synthetic, shape (batch,)."""
        batch = torch.as_tensor(features, dtype=torch.float32)
        return torch.sigmoid(self.model(batch))


def save_checkpoint(path: str, model: nn.Module, threshold: float, provenance: dict) -> None:
    """Write ``model`` as a safetensors checkpoint with its metadata.

    The file is written beside ``path`` and renamed into place, so a failure (a full disk,
    an interrupt) leaves whatever was at ``path`` as it was, and no partial file.
    """
    from safetensors.torch import save_file

    metadata = {
        "format": FORMAT,
        "arch": model.arch,
        "frontend": frontend_config(),
        "threshold": float(threshold),
        "provenance": provenance,
    }
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    temporary = f"{path}.tmp"
    try:
        save_file(state, temporary, metadata={"fscan": json.dumps(metadata, sort_keys=True)})
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load_checkpoint(path: str) -> Detector:
    """Load a checkpoint written by ``save_checkpoint``, in eval mode.

    Raises
    ------
    ModelError
        If ``checkpoint.read_checkpoint_info`` refuses the file, or its tensors do not
        fit the architecture it names or hold NaN/infinite values.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    info = read_checkpoint_info(path)
    try:
        state = load_file(path)
    except (OSError, SafetensorError, ValueError) as error:
        raise ModelError(f"cannot read model {path}: {error}") from error
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelError(f"{path} is damaged: {name} holds NaN or infinite values")
    try:
        model = build_model(info.metadata["arch"])
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ModelError(f"{path} does not match its architecture: {error}") from error
    model.eval()
    return Detector(model=model, threshold=info.threshold, metadata=info.metadata,
                    sha256=info.sha256, path=str(path), frontend=info.metadata["frontend"])


def save_ensemble(member_paths: Sequence[str], out_path: str, command: str = "") -> nn.Module:
    """Write one checkpoint whose logit is the mean of the checkpoints at ``member_paths``.

    Members that are ensembles themselves are unpacked. The threshold is a placeholder
    (0.5, a mean logit of 0) until ``fscan calibrate`` sets it: the members' thresholds
    say nothing about their mean. When every member was trained with the same validation
    split (``val_fraction`` and ``seed``), the ensemble records it, so
    ``fscan calibrate --split validation`` works on the ensemble as on its members.

    Raises
    ------
    ModelError
        If a member cannot be loaded, fewer than two members are given, or one
        checkpoint is given twice.
    """
    if len(member_paths) < 2:
        raise ModelError("an ensemble needs at least two checkpoints")
    detectors = [load_checkpoint(path) for path in member_paths]
    if len({detector.sha256 for detector in detectors}) < len(detectors):
        raise ModelError("the same checkpoint is given twice; an ensemble of one model "
                         "is that model")
    models = []
    for detector in detectors:
        is_ensemble = isinstance(detector.model, LCNNEnsemble)
        models.extend(detector.model.members if is_ensemble else [detector.model])
    ensemble = LCNNEnsemble({"members": [model.arch for model in models]})
    for target, source in zip(ensemble.members, models):
        target.load_state_dict(source.state_dict())
    provenances = [detector.metadata.get("provenance", {}) for detector in detectors]
    provenance = {
        "kind": "ensemble: mean of the members' logits",
        "members": [{"path": detector.path, "sha256": detector.sha256,
                     "threshold": detector.threshold, "provenance": provenance}
                    for detector, provenance in zip(detectors, provenances)],
        "trained_at": max(provenance.get("trained_at", "") for provenance in provenances),
        "command": command,
    }
    split = shared_split(detectors)
    if split is not None:
        provenance["config"] = split
    save_checkpoint(out_path, ensemble.eval(), 0.5, provenance)
    return ensemble


def shared_split(detectors: Sequence[Detector]) -> Optional[dict]:
    """The validation split (``val_fraction`` and ``seed``) all ``detectors`` were trained
    with, or None when they differ or one does not record it."""
    splits = [{key: detector.metadata.get("provenance", {}).get("config", {}).get(key)
               for key in ("val_fraction", "seed")} for detector in detectors]
    if None in splits[0].values() or any(split != splits[0] for split in splits):
        return None
    return splits[0]


def unpack_ensemble(path: str, out_dir: str) -> List[str]:
    """Write each member of the ensemble at ``path`` as a checkpoint of its own.

    The files are ``member<i>.safetensors`` in ``out_dir``, in the ensemble's order. A
    member gets back the threshold and provenance the ensemble recorded for it when
    ``fscan ensemble`` made it from single LCNNs (so ``fscan train --init`` can fine-tune
    it on its own validation split), plus where it was unpacked from; otherwise (an
    ensemble made from ensembles) a placeholder threshold of 0.5 and only the latter. The
    weights are bit-identical; the files are not the members' original files, whose
    sha256 ``unpacked_from["member_sha256"]`` keeps where the ensemble recorded it.

    Raises
    ------
    ModelError
        If ``path`` cannot be loaded or is a single LCNN.
    """
    detector = load_checkpoint(path)
    if not isinstance(detector.model, LCNNEnsemble):
        raise ModelError(f"{path} is a single LCNN, not an ensemble: nothing to unpack")
    recorded = detector.metadata.get("provenance", {}).get("members", [])
    if len(recorded) != len(detector.model.members):  # made from ensembles: unknown
        recorded = [{} for _ in detector.model.members]
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for index, (member, record) in enumerate(zip(detector.model.members, recorded)):
        provenance = dict(record.get("provenance", {}),
                          unpacked_from={"path": detector.path, "sha256": detector.sha256,
                                         "member": index,
                                         "member_sha256": record.get("sha256", "")})
        out_path = os.path.join(out_dir, f"member{index}.safetensors")
        save_checkpoint(out_path, member, record.get("threshold", 0.5), provenance)
        paths.append(out_path)
    return paths


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

"""A weight soup: one LCNN whose weights are the mean of several fine-tuned from one start.

Models fine-tuned from the same weights on different data stay in one basin of the loss,
and the mean of their weights often generalises beyond what each learnt alone (Wortsman et
al., "Model soups", ICML 2022), at the cost of one model, not of an ensemble. Rules v13 and
v14 fine-tuned K9's wider member three ways (Griffin-Lim TTS twins, mu-law twins, both);
this averages such members. Batch-norm statistics are averaged like the weights.

    python scripts/experiments/weight_soup.py OUT.safetensors A.safetensors B.safetensors ...

The soup gets a placeholder threshold of 0.5: set it with `fscan calibrate`, or ensemble
it first (`fscan ensemble`) and calibrate the ensemble.
"""

import argparse
from typing import Sequence

import torch

from forensics_scan.checkpoint import ModelError
from forensics_scan.model import (LCNN, Detector, build_model, load_checkpoint,
                                  save_checkpoint, shared_split)

PLACEHOLDER_THRESHOLD = 0.5


def soup(detectors: Sequence[Detector]) -> LCNN:
    """The LCNN whose every floating-point tensor is the mean of the ``detectors``'.

    Raises
    ------
    ModelError
        If fewer than two are given, one is an ensemble, or their architectures or front
        ends differ.
    """
    if len(detectors) < 2:
        raise ModelError("a soup needs at least two checkpoints")
    first = detectors[0]
    for detector in detectors:
        if not isinstance(detector.model, LCNN):
            raise ModelError(f"{detector.path} is an ensemble: unpack it first (fscan unpack)")
        if detector.model.arch != first.model.arch or detector.frontend != first.frontend:
            raise ModelError(f"{detector.path} has another architecture or front end than "
                             f"{first.path}")
    states = [detector.model.state_dict() for detector in detectors]
    mean = {name: (torch.stack([state[name] for state in states]).mean(dim=0)
                   if tensor.is_floating_point() else tensor)  # counters: the first's
            for name, tensor in states[0].items()}
    model = build_model(first.model.arch)
    model.load_state_dict(mean)
    return model.eval()


def soup_provenance(detectors: Sequence[Detector]) -> dict:
    """What the soup records: its members, and their validation split when they share one
    (so `fscan calibrate --split validation` can hold the same files out)."""
    provenance = {"soup_of": [{"path": d.path, "sha256": d.sha256} for d in detectors]}
    split = shared_split(detectors)
    if split is not None:
        provenance["config"] = split
    return provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("checkpoints", nargs="+")
    args = parser.parse_args()
    detectors = [load_checkpoint(path) for path in args.checkpoints]
    save_checkpoint(args.out, soup(detectors), PLACEHOLDER_THRESHOLD,
                    soup_provenance(detectors))
    print(f"wrote {args.out}: the mean of {len(detectors)} LCNNs' weights; threshold "
          f"{PLACEHOLDER_THRESHOLD} is a placeholder (fscan calibrate)")


if __name__ == "__main__":
    main()

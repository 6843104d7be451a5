"""Validation under channels: does it predict eval_public better than clean validation?

The validation files are clean recordings of the training domain. A model trained with
more channel augmentation was worse there and better on eval_public (model card,
"More channel augmentation"). This builds a second validation table, each of the same
files through one random channel of `augment.py` (seeded by its path, so every model
meets the same copies), scores trained models on it and on the clean table, and prints
both beside their eval_public file EER with the rank correlations. A diagnostic for
choosing the next selection rule; it chooses nothing itself.

    python scripts/experiments/channel_validation.py make work/val_channels
    python scripts/experiments/channel_validation.py score work/val_channels NAME...

`make` reads work/dataset/VALIDATION.csv (Debian TTS rows dropped: the 819 files); `score`
evaluates work/models/NAME_cal.safetensors on the copies (into work/valch_NAME/) and
reads its clean and eval_public figures from work/val_NAME/ and work/evalcal_NAME/
(`score_variant.sh`). Only models trained on the seed-0 split mean anything here.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import soundfile as sf

from forensics_scan import metrics
from forensics_scan.audio import SAMPLE_RATE, load_audio
from forensics_scan.augment import random_channel

WORK = os.environ.get("WORK", "work")
TTS_SYSTEMS = ("espeak_ng", "flite", "festival")


def channel_copy(audio: np.ndarray, key: str) -> np.ndarray:
    """``audio`` through one random channel, the same one for the same ``key``."""
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return random_channel(audio, np.random.default_rng(seed))


def make(out_dir: str) -> None:
    table = pd.read_csv(os.path.join(WORK, "dataset", "VALIDATION.csv"))
    table = table[~table["system"].str.startswith(TTS_SYSTEMS)].reset_index(drop=True)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for row in table.itertuples():
        source = os.path.join(WORK, "dataset", row.path)
        target = f"{row.Index:04d}.flac"
        sf.write(os.path.join(out_dir, target), channel_copy(load_audio(source), row.path),
                 SAMPLE_RATE, subtype="PCM_16")
        paths.append(target)
    table.assign(path=paths).to_csv(os.path.join(out_dir, "MANIFEST.csv"), index=False)
    print(f"{len(table)} channel copies in {out_dir}")


def _file_eer(folder: str) -> float:
    with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as handle:
        return json.load(handle)["files"]["eer"]


def _clean_819(folder: str) -> float:
    scores = pd.read_csv(os.path.join(folder, "file_scores.csv")).dropna(subset=["score"])
    scores = scores[~scores["system"].str.startswith(TTS_SYSTEMS)]
    return metrics.eer((scores["label"] == "fake").to_numpy(), scores["score"].to_numpy())[0]


def score(copies: str, names: list) -> None:
    rows = []
    for name in names:
        out = os.path.join(WORK, f"valch_{name}")
        if not os.path.exists(os.path.join(out, "metrics.json")):
            subprocess.run(["fscan", "evaluate", os.path.join(copies, "MANIFEST.csv"),
                            "--model", os.path.join(WORK, "models", f"{name}_cal.safetensors"),
                            "--out-dir", out, "--jobs", "2", "--quiet"],
                           check=True, stdout=subprocess.DEVNULL)
        rows.append((name, _clean_819(os.path.join(WORK, f"val_{name}")), _file_eer(out),
                     _file_eer(os.path.join(WORK, f"evalcal_{name}"))))
    table = pd.DataFrame(rows, columns=["model", "clean_819", "channels_819", "eval_public"])
    print((table.set_index("model") * 100).round(1).to_string())
    for column in ("clean_819", "channels_819"):
        rho = table[column].rank().corr(table["eval_public"].rank())
        print(f"Spearman rank correlation of {column} with eval_public: {rho:+.2f} "
              f"({len(table)} models)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("make").add_argument("out_dir")
    scoring = commands.add_parser("score")
    scoring.add_argument("copies")
    scoring.add_argument("names", nargs="+")
    args = parser.parse_args()
    if args.command == "make":
        make(args.out_dir)
    else:
        score(args.copies, args.names)


if __name__ == "__main__":
    sys.exit(main())

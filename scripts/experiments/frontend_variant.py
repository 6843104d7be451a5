"""Ablation "log-Mel floor": the bundled recipe with a lower floor under the log-Mel.

    python scripts/experiments/floor_variant.py NAME FLOOR [FSCAN TRAIN OPTIONS...]
    python scripts/experiments/floor_variant.py floor80 1e-8

``features.log_mel`` adds ``LOG_FLOOR`` times the segment's mean Mel energy before the log
(1e-5: everything 50 dB under the mean reads the same). A well-trained vocoder's traces
may sit lower than that: in pauses, between harmonics, high up the spectrum. This sets
``features.LOG_FLOOR`` in this process only and then does what option_variant.sh and
score_variant.sh do (the steps are repeated here because the floor exists only in this
process): trains on work/dataset/MANIFEST_notts.csv with the bundled model's settings,
calibrates at 5 % validation false alarms, scores the validation table and eval_public
(measured only, never used to choose). Joblib runs on threads so the floor reaches the
feature extraction. The checkpoints record the floor in their front-end
config, so fscan itself refuses them: they are experiments, not models.
"""
import os
import sys

import joblib

from forensics_scan import features
from forensics_scan.cli import main

WORK = os.environ.get("WORK", "work")
SHARED = os.environ.get("SHARED", "../shared/data")


def run(*arguments: str) -> None:
    print("fscan", " ".join(arguments), file=sys.stderr, flush=True)
    main(list(arguments), standalone_mode=False)


if __name__ == "__main__":
    name, floor, *options = sys.argv[1:]
    features.LOG_FLOOR = float(floor)
    model = f"{WORK}/models/{name}.safetensors"
    calibrated = f"{WORK}/models/{name}_cal.safetensors"
    with joblib.parallel_config(backend="threading"):
        run("train", f"{WORK}/dataset/MANIFEST_notts.csv", "--out", model, "--epochs", "20",
            "--patience", "5", "--augment-copies", "1", "--seed", os.environ.get("SEED", "0"),
            "--jobs", "2", "--cache-dir", f"{WORK}/cache", *options)
        run("calibrate", f"{WORK}/dataset/MANIFEST_notts.csv", "--model", model, "--out",
            calibrated, "--max-false-alarm", "0.05", "--split", "validation", "--quiet")
        run("evaluate", f"{WORK}/dataset/VALIDATION.csv", "--model", calibrated, "--out-dir",
            f"{WORK}/val_{name}", "--jobs", "2", "--quiet")
        run("evaluate", f"{SHARED}/eval_public/MANIFEST.csv", "--model", calibrated,
            "--out-dir", f"{WORK}/evalcal_{name}", "--jobs", "2", "--quiet")

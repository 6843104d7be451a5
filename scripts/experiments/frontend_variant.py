"""Ablations of the front end: the bundled recipe with other log-Mel settings.

    python scripts/experiments/frontend_variant.py NAME SETTING=VALUE... [FSCAN TRAIN OPTIONS...]
    python scripts/experiments/frontend_variant.py floor80 LOG_FLOOR=1e-8
    python scripts/experiments/frontend_variant.py window64 WIN_LENGTH=1024 N_FFT=1024
    python scripts/experiments/frontend_variant.py window64 WIN_LENGTH=1024 N_FFT=1024 --confirm

Each SETTING is one of ``features``' constants in SETTINGS (LOG_FLOOR, N_FFT, WIN_LENGTH,
F_MIN, F_MAX), set in this process only. ``floor80``: ``features.log_mel`` adds
``LOG_FLOOR`` times the segment's mean Mel energy before the log (1e-5: everything 50 dB
under the mean reads the same); a well-trained vocoder's traces may sit lower than that,
in pauses, between harmonics, high up the spectrum. ``window64``: a 64 ms window instead of
25 ms, whose 62.5 Hz main lobe parts the harmonics of low voices completely, where the
shipped window's 160 Hz lobe leaves them some 14 dB over the gaps (the excitation, where
the model's cues are, is then seen in more detail).

Then it does what option_variant.sh and score_variant.sh do (the steps are repeated here
because the settings exist only in this process): trains on
work/dataset/MANIFEST_notts.csv with the bundled model's settings, calibrates at 5 %
validation false alarms and scores the validation tables. Only ``--confirm``, once the
choice is made, scores the calibrated model on eval_public (measured only, never used to
choose), with the same settings. Joblib runs on threads so the settings reach the feature
extraction. The
checkpoints record the settings in their front-end config, so fscan itself refuses them:
they are experiments, not models.
"""
import os
import sys

import joblib

from forensics_scan import features
from forensics_scan.cli import main

WORK = os.environ.get("WORK", "work")
SHARED = os.environ.get("SHARED", "../shared/data")


# the constants that only features.py reads (N_MELS and the hop are also read by the model
# and the exports at import, so they cannot change in a running process)
SETTINGS = ("LOG_FLOOR", "N_FFT", "WIN_LENGTH", "F_MIN", "F_MAX")


def configure(settings: list) -> None:
    """Set ``features``' constants from ``NAME=VALUE`` strings, each of SETTINGS."""
    for setting in settings:
        key, value = setting.split("=", 1)
        if key not in SETTINGS:
            raise SystemExit(f"{key}: not one of the front-end settings {', '.join(SETTINGS)}")
        setattr(features, key, type(getattr(features, key))(value))
    # derived at import: where the window sits in its frame; and what was built from the
    # old settings
    features._WINDOW_OFFSET = (features.N_FFT - features.WIN_LENGTH) // 2
    for cached in (features._window, features._mel_basis, features._speech_bands):
        cached.cache_clear()


def run(*arguments: str) -> None:
    print("fscan", " ".join(arguments), file=sys.stderr, flush=True)
    main(list(arguments), standalone_mode=False)


if __name__ == "__main__":
    name, arguments = sys.argv[1], sys.argv[2:]
    settings = [argument for argument in arguments if "=" in argument
                and not argument.startswith("-")]
    confirm = "--confirm" in arguments
    options = [argument for argument in arguments
               if argument not in settings and argument != "--confirm"]
    configure(settings)
    model = f"{WORK}/models/{name}.safetensors"
    calibrated = f"{WORK}/models/{name}_cal.safetensors"
    with joblib.parallel_config(backend="threading"):
        if confirm:
            run("evaluate", f"{SHARED}/eval_public/MANIFEST.csv", "--model", calibrated,
                "--out-dir", f"{WORK}/evalcal_{name}", "--jobs", "2", "--quiet")
            sys.exit(0)
        run("train", f"{WORK}/dataset/MANIFEST_notts.csv", "--out", model, "--epochs", "20",
            "--patience", "5", "--augment-copies", "1", "--seed", os.environ.get("SEED", "0"),
            "--jobs", "2", "--cache-dir", f"{WORK}/cache", *options)
        run("calibrate", f"{WORK}/dataset/MANIFEST_notts.csv", "--model", model, "--out",
            calibrated, "--max-false-alarm", "0.05", "--split", "validation", "--quiet")
        run("evaluate", f"{WORK}/dataset/VALIDATION.csv", "--model", calibrated, "--out-dir",
            f"{WORK}/val_{name}", "--jobs", "2", "--quiet")
        if os.path.isfile(f"{WORK}/dataset/VALIDATION_wide.csv"):
            run("evaluate", f"{WORK}/dataset/VALIDATION_wide.csv", "--model", calibrated,
                "--out-dir", f"{WORK}/valw_{name}", "--jobs", "2", "--quiet")

"""Train and evaluate the full recipe with the linear-frequency front end (an ablation).

    python scripts/experiments/linear_full.py TRAIN_MANIFEST OUT_CKPT EVAL_MANIFEST OUT_DIR

Swaps ``frontend_variants.make_log_feats("linear", ...)`` (80 triangular bands equally
spaced over 0-8 kHz, same relative floor and segment-mean normalisation) for
``features.log_mel`` in this process only, then runs ``fscan train`` (one job, so the
swap reaches the feature extraction) with the bundled model's settings and
``fscan evaluate`` on EVAL_MANIFEST. The checkpoint it writes records the *Mel* front-end
config and must not be scanned by fscan itself: it is an experiment, not a model.
Selection stays on the training data's validation split (``fscan train`` picks the
epoch); the evaluation manifest is only measured.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import frontend_variants  # noqa: E402

from forensics_scan import features, scan, training  # noqa: E402
from forensics_scan.cli import main  # noqa: E402


def use_linear_front_end() -> None:
    linear = frontend_variants.make_log_feats("linear", features.LOG_FLOOR)
    training.log_mel = linear
    scan.log_mel = linear
    training.frontend_hash = scan.frontend_hash = lambda: "linear80-experiment"


if __name__ == "__main__":
    train_manifest, out_ckpt, eval_manifest, out_dir = sys.argv[1:5]
    use_linear_front_end()
    main(["train", train_manifest, "--out", out_ckpt, "--epochs", "20", "--patience", "5",
          "--augment-copies", "1", "--seed", "0", "--jobs", "1", "--cache-dir", "work/cache"],
         standalone_mode=False)
    main(["evaluate", eval_manifest, "--model", out_ckpt, "--out-dir", out_dir, "--jobs", "2"],
         standalone_mode=False)

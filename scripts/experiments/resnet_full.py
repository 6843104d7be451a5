"""Train and evaluate the full recipe with a small ResNet in place of the LCNN (an ablation).

    python scripts/experiments/resnet_full.py TRAIN_MANIFEST OUT_CKPT EVAL_MANIFEST OUT_DIR \
        [EPOCHS] [PATIENCE]

Issue 3 asks for a ResNet trained on the same data and reported beside the LCNN, as the
original design compared them. ``resnet.ResNet`` (basic residual blocks, batch norm,
ReLU; the LCNN's input, time pooling and one-logit head) replaces ``model.LCNN`` in this
process only; then ``fscan train`` runs with the bundled model's settings (same table,
seed, augmentation, early stopping on the validation split; 20 epochs and patience 5
unless EPOCHS and PATIENCE say otherwise) and ``fscan evaluate`` on
EVAL_MANIFEST, both in this process so the swap reaches them. The checkpoint records
``arch.kind = "resnet-experiment"`` and cannot be loaded by fscan itself: it is an
experiment, not a model.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import resnet  # noqa: E402

from forensics_scan import model  # noqa: E402
from forensics_scan.cli import main  # noqa: E402

CHANNELS = (16, 24, 32, 32)


class ResNetExperiment(resnet.ResNet):
    """``resnet.ResNet`` with the ``arch`` attribute that fscan's checkpoints record."""

    def __init__(self, arch=None):
        arch = dict(arch or {})
        channels = tuple(arch.get("channels", CHANNELS))
        super().__init__(n_bands=80, channels=channels)
        self.arch = {"kind": "resnet-experiment", "channels": list(channels)}


if __name__ == "__main__":
    train_manifest, out_ckpt, eval_manifest, out_dir = sys.argv[1:5]
    epochs = sys.argv[5] if len(sys.argv) > 5 else "20"
    patience = sys.argv[6] if len(sys.argv) > 6 else "5"
    model.LCNN = ResNetExperiment
    print(f"ResNet: {model.count_parameters(ResNetExperiment()):,} parameters", flush=True)
    main(["train", train_manifest, "--out", out_ckpt, "--epochs", epochs,
          "--patience", patience, "--augment-copies", "1", "--seed", "0", "--jobs", "2",
          "--cache-dir", "work/cache"],
         standalone_mode=False)
    main(["evaluate", eval_manifest, "--model", out_ckpt, "--out-dir", out_dir, "--jobs", "2"],
         standalone_mode=False)

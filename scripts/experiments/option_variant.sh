#!/usr/bin/env bash
# Ablation "bundled recipe + one training option" (models/MODEL_CARD.md): the bundled
# recipe's table and settings with extra `fscan train` options; then `score_variant.sh
# NAME` scores it on validation, and `score_variant.sh NAME confirm` on eval_public once
# the choice is made. Run scripts/train_bundled_model.sh first (it makes work/dataset/).
# About 40-50 min on 2 idle CPU cores.
#
#   bash scripts/experiments/option_variant.sh NAME EPOCHS [FSCAN TRAIN OPTIONS...]
#   bash scripts/experiments/option_variant.sh twin 14 --twin-weight 1
#   bash scripts/experiments/option_variant.sh rawboost 20 --channels rawboost
#   bash scripts/experiments/option_variant.sh bandnorm 20 --band-norm
#   bash scripts/experiments/option_variant.sh average 20 --average-from 8
#
# Twin contrast runs 14 epochs: with each twin's original added to its batch, that is
# about as many forward passes as the bundled model's 20. SEED=1 for a replicate.
set -euo pipefail
NAME=$1
EPOCHS=$2
shift 2
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}
SEED=${SEED:-0}

$FSCAN train "$WORK/dataset/MANIFEST_notts.csv" --out "$WORK/models/$NAME.safetensors" \
    --epochs "$EPOCHS" --patience 5 --augment-copies 1 --seed "$SEED" --jobs 2 \
    --cache-dir "$WORK/cache" "$@"

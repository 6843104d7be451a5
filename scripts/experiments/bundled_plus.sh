#!/usr/bin/env bash
# Ablation "bundled recipe + more synthetic clips": join the bundled recipe's training
# table with EXTRA_MANIFEST (a `fscan build-dataset` manifest or any table with the same
# columns; its genuine rows are already in the bundled table) and train with the bundled
# model's settings; then `score_variant.sh NAME` scores it on validation, and
# `score_variant.sh NAME confirm` on eval_public once the choice is made.
# Run scripts/train_bundled_model.sh first (it makes work/dataset/).
#
#   bash scripts/experiments/bundled_plus.sh NAME EXTRA_MANIFEST
#
# Writes $WORK/dataset/MANIFEST_NAME.csv and $WORK/models/NAME.safetensors.
# About 40-50 min on 2 idle CPU cores.
set -euo pipefail
NAME=$1
EXTRA=$2
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}
SEED=${SEED:-0}
EPOCHS=${EPOCHS:-20}  # fewer for a replicate short of time
# more `fscan train` options, e.g. "--init models/lcnn.safetensors --learning-rate 3e-4"
# (fine-tune the bundled model instead of training from scratch)
TRAIN_OPTIONS=${TRAIN_OPTIONS:-}

python3 scripts/combine_manifests.py "$WORK/dataset/MANIFEST_$NAME.csv" \
    "$WORK/dataset/MANIFEST_notts.csv" "$EXTRA"
$FSCAN train "$WORK/dataset/MANIFEST_$NAME.csv" --out "$WORK/models/$NAME.safetensors" \
    --epochs "$EPOCHS" --patience 5 --augment-copies 1 --seed "$SEED" --jobs 2 \
    --cache-dir "$WORK/cache" $TRAIN_OPTIONS

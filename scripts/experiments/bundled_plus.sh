#!/usr/bin/env bash
# Ablation "bundled recipe + more synthetic clips": join the bundled recipe's training
# table with EXTRA_MANIFEST (a `fscan build-dataset` manifest or any table with the same
# columns; its genuine rows are already in the bundled table), train with the bundled
# model's settings and evaluate on eval_public (measured only, never used to choose).
# Run scripts/train_bundled_model.sh first (it makes work/dataset/).
#
#   bash scripts/experiments/bundled_plus.sh NAME EXTRA_MANIFEST
#
# Writes $WORK/dataset/MANIFEST_NAME.csv, $WORK/models/NAME.safetensors, $WORK/eval_NAME/.
# About 40-50 min on 2 idle CPU cores.
set -euo pipefail
NAME=$1
EXTRA=$2
SHARED=${SHARED:-../shared/data}
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
$FSCAN evaluate "$SHARED/eval_public/MANIFEST.csv" --model "$WORK/models/$NAME.safetensors" \
    --out-dir "$WORK/eval_$NAME" --jobs 2 --quiet

#!/usr/bin/env bash
# Ablation "RawBoost channels" (models/MODEL_CARD.md): the bundled recipe's table and
# settings with `--channels rawboost`: each clip's augmented copy draws its effects from the
# standard set plus RawBoost's multi-notch convolutive (with non-linear terms), impulsive
# and coloured noise (forensics_scan/augment.py), genuine and synthetic alike. About 45 min
# on 2 idle CPU cores. Run scripts/train_bundled_model.sh first (it makes work/dataset/).
#
#   SEED=0 bash scripts/experiments/rawboost_variant.sh
set -euo pipefail
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}
SEED=${SEED:-0}
NAME=rawboost_s$SEED

$FSCAN train "$WORK/dataset/MANIFEST_notts.csv" --out "$WORK/models/$NAME.safetensors" \
    --epochs 20 --patience 5 --augment-copies 1 --channels rawboost --seed "$SEED" --jobs 2 \
    --cache-dir "$WORK/cache"
$FSCAN evaluate "$SHARED/eval_public/MANIFEST.csv" --model "$WORK/models/$NAME.safetensors" \
    --out-dir "$WORK/eval_$NAME" --jobs 2 --quiet

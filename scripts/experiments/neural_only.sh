#!/usr/bin/env bash
# Ablation "genuine + neural twins only" (models/MODEL_CARD.md): the bundled recipe's table
# without the classical-vocoder twins (WORLD, Griffin-Lim, LPC), trained to the end with
# the bundled settings; then `score_variant.sh neural_only` (and `... confirm` once
# chosen). Do the crude twins help or hurt on unseen neural vocoders? About 35 min on 2
# idle CPU cores. Run scripts/train_bundled_model.sh first.
#
#   bash scripts/experiments/neural_only.sh
set -euo pipefail
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}

python3 scripts/combine_manifests.py "$WORK/dataset/MANIFEST_neural_only.csv" \
    "$WORK/dataset/MANIFEST_notts.csv" --drop world,griffin_lim,lpc
$FSCAN train "$WORK/dataset/MANIFEST_neural_only.csv" --out "$WORK/models/neural_only.safetensors" \
    --epochs 20 --patience 5 --augment-copies 1 --seed 0 --jobs 2 --cache-dir "$WORK/cache"

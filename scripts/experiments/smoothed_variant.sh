#!/usr/bin/env bash
# Ablation "+ acoustic-model blur" (models/MODEL_CARD.md): WORLD twins fed over-smoothed
# envelope, aperiodicity and F0 (`build-dataset --generators world_smoothed`) added to the
# bundled recipe's table. About 3 min to make the twins (2 jobs) and 45 min to train.
#
#   SHARED=../shared/data bash scripts/experiments/smoothed_variant.sh
set -euo pipefail
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}

$FSCAN build-dataset "$SHARED/real" "$WORK/smoothed" --generators world_smoothed \
    --fraction 0.35 --tts-share 0 --seed 0 --jobs 2
bash scripts/experiments/bundled_plus.sh smoothed "$WORK/smoothed/MANIFEST.csv"

#!/usr/bin/env bash
# Ablation "+ Kokoro neural TTS" (models/MODEL_CARD.md): the bundled recipe's training
# table plus 735 Kokoro clips (40 min, 0.3 x the genuine audio by plan), same training
# settings. Run scripts/train_bundled_model.sh first (it makes work/dataset/).
#
#   SHARED=../shared/data bash scripts/experiments/kokoro_variant.sh
#
# About 25 min to make the clips (2 jobs) and 40 min to train on 2 idle CPU cores.
set -euo pipefail
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}

$FSCAN build-dataset "$SHARED/real" "$WORK/kokoro" --generators kokoro --fraction 0.3 \
    --tts-share 1 --seed 0 --jobs 2
bash scripts/experiments/bundled_plus.sh kokoro "$WORK/kokoro/MANIFEST.csv"

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
# the bundled table plus the Kokoro clips (their genuine rows are already in it)
python3 scripts/combine_manifests.py "$WORK/dataset/MANIFEST_kokoro.csv" \
    "$WORK/dataset/MANIFEST_notts.csv" "$WORK/kokoro/MANIFEST.csv"
$FSCAN train "$WORK/dataset/MANIFEST_kokoro.csv" --out "$WORK/models/kokoro.safetensors" \
    --epochs 20 --patience 5 --augment-copies 1 --seed 0 --jobs 2 --cache-dir "$WORK/cache"
$FSCAN evaluate "$SHARED/eval_public/MANIFEST.csv" --model "$WORK/models/kokoro.safetensors" \
    --out-dir "$WORK/eval_kokoro" --jobs 2 --quiet

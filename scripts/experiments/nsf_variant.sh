#!/usr/bin/env bash
# Ablation "+ NSF vocoder twins" (models/MODEL_CARD.md): train fscan's own neural
# source-filter vocoder on genuine speech, vocode genuine clips through it (twins: same
# speaker, words, channel, length, split group), add them to the bundled recipe's table
# and train with the same settings. Run scripts/train_bundled_model.sh first (it makes
# work/dataset/).
#
#   SHARED=../shared/data bash scripts/experiments/nsf_variant.sh
#
# About 55 min to train the vocoder, 5 min to make the twins and 45 min to train the
# detector on 2 idle CPU cores.
set -euo pipefail
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}

mkdir -p "$WORK/vocoder"
$FSCAN train-vocoder "$SHARED/real" --out "$WORK/vocoder/nsf.safetensors" --minutes 55 \
    --audio-minutes 30 --seed 0 --threads 2
FSCAN_NSF_VOCODER="$WORK/vocoder/nsf.safetensors" $FSCAN build-dataset "$SHARED/real" \
    "$WORK/nsf" --generators nsf --fraction 0.35 --tts-share 0 --seed 0 --jobs 2
# the bundled table plus the NSF twins (their genuine originals are already in it)
python3 scripts/combine_manifests.py "$WORK/dataset/MANIFEST_nsf.csv" \
    "$WORK/dataset/MANIFEST_notts.csv" "$WORK/nsf/MANIFEST.csv"
$FSCAN train "$WORK/dataset/MANIFEST_nsf.csv" --out "$WORK/models/nsf.safetensors" \
    --epochs 20 --patience 5 --augment-copies 1 --seed 0 --jobs 2 --cache-dir "$WORK/cache"
$FSCAN evaluate "$SHARED/eval_public/MANIFEST.csv" --model "$WORK/models/nsf.safetensors" \
    --out-dir "$WORK/eval_nsf" --jobs 2 --quiet

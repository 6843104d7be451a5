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
bash scripts/experiments/bundled_plus.sh nsf "$WORK/nsf/MANIFEST.csv"

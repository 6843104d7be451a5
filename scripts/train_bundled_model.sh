#!/usr/bin/env bash
# Rebuild the bundled checkpoint models/lcnn.safetensors, its model card and its
# evaluation, from the genuine corpus and the held-out evaluation set.
#
#   SHARED=../shared/data bash scripts/train_bundled_model.sh
#
# Needs the 'dataset' extra (pyworld) and Debian's espeak-ng, flite, festival voices
# (see forensics_scan/dataset.py). About 3.5 min to build the data set and ~45 min to
# train on 2 CPU cores. Generated data and caches go to work/ (git-ignored).
# models/MODEL_CARD.md is written from models/lcnn.card.md (training) and
# models/evaluation/summary.md (evaluation) plus the known limits.
set -euo pipefail
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}

$FSCAN build-dataset "$SHARED/real" "$WORK/dataset" --neural "$SHARED/synthetic_neural" \
    --seed 0 --jobs 1
$FSCAN train "$WORK/dataset/MANIFEST.csv" --out models/lcnn.safetensors --epochs 20 \
    --patience 5 --augment-copies 1 --seed 0 --jobs 2 --cache-dir "$WORK/cache"
# evaluation only: eval_public is never used to train, tune or select
mkdir -p models/evaluation
$FSCAN evaluate "$SHARED/eval_public/MANIFEST.csv" --model models/lcnn.safetensors \
    --out-dir models/evaluation --jobs 2 --quiet > models/evaluation/summary.md

#!/usr/bin/env bash
# Score a trained variant the way the model card's ablation columns are measured:
# calibrate its threshold at 5 % false alarms on its validation groups, then evaluate it
# on the validation table (work/dataset/VALIDATION.csv: 891 files, 819 without the Debian
# TTS rows) and on eval_public (measured only, never used to choose).
#
#   bash scripts/experiments/score_variant.sh NAME    # work/models/NAME.safetensors
#
# Writes work/models/NAME_cal.safetensors, work/val_NAME/ (+ .md) and work/evalcal_NAME/
# (+ .md). The 819-file figure: `python scripts/experiments/ensemble_proxy.py
# NAME=work/val_NAME:work/evalcal_NAME`.
set -euo pipefail
NAME=$1
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}

$FSCAN calibrate "$WORK/dataset/MANIFEST_notts.csv" --model "$WORK/models/$NAME.safetensors" \
    --out "$WORK/models/${NAME}_cal.safetensors" --max-false-alarm 0.05 --split validation \
    --quiet
$FSCAN evaluate "$WORK/dataset/VALIDATION.csv" --model "$WORK/models/${NAME}_cal.safetensors" \
    --out-dir "$WORK/val_$NAME" --jobs 2 --quiet > "$WORK/val_$NAME.md"
$FSCAN evaluate "$SHARED/eval_public/MANIFEST.csv" \
    --model "$WORK/models/${NAME}_cal.safetensors" --out-dir "$WORK/evalcal_$NAME" --jobs 2 \
    --quiet > "$WORK/evalcal_$NAME.md"

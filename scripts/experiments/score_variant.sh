#!/usr/bin/env bash
# Score a trained variant the way the model card's ablation columns are measured, in two
# steps so that eval_public is only looked at after the choice:
#
#   bash scripts/experiments/score_variant.sh NAME            # validation (choose on these)
#   bash scripts/experiments/score_variant.sh NAME confirm    # eval_public, after choosing
#
# NAME is work/models/NAME.safetensors. The first step calibrates its threshold at 5 %
# false alarms on its validation groups (work/models/NAME_cal.safetensors), then evaluates
# it on the validation table (work/dataset/VALIDATION.csv: 891 files, 819 without the
# Debian TTS rows; work/val_NAME/ + .md) and, when it exists, on the 1,193-file table with
# the published-HiFi-GAN twins (work/dataset/VALIDATION_wide.csv; work/valw_NAME/ + .md).
# The second evaluates the calibrated model on eval_public (work/evalcal_NAME/ + .md),
# measured only, never used to choose. The 819-file figure: `python
# scripts/experiments/ensemble_proxy.py NAME=work/val_NAME:work/evalcal_NAME`.
set -euo pipefail
NAME=$1
STEP=${2:-validation}
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}
CALIBRATED="$WORK/models/${NAME}_cal.safetensors"

case "$STEP" in
validation)
    $FSCAN calibrate "$WORK/dataset/MANIFEST_notts.csv" --model "$WORK/models/$NAME.safetensors" \
        --out "$CALIBRATED" --max-false-alarm 0.05 --split validation --quiet
    $FSCAN evaluate "$WORK/dataset/VALIDATION.csv" --model "$CALIBRATED" \
        --out-dir "$WORK/val_$NAME" --jobs 2 --quiet > "$WORK/val_$NAME.md"
    if [[ -f "$WORK/dataset/VALIDATION_wide.csv" ]]; then
        $FSCAN evaluate "$WORK/dataset/VALIDATION_wide.csv" --model "$CALIBRATED" \
            --out-dir "$WORK/valw_$NAME" --jobs 2 --quiet > "$WORK/valw_$NAME.md"
    fi ;;
confirm)
    if [[ ! -f "$CALIBRATED" ]]; then
        echo "no $CALIBRATED: run 'score_variant.sh $NAME' (validation) first" >&2
        exit 2
    fi
    $FSCAN evaluate "$SHARED/eval_public/MANIFEST.csv" --model "$CALIBRATED" \
        --out-dir "$WORK/evalcal_$NAME" --jobs 2 --quiet > "$WORK/evalcal_$NAME.md" ;;
*)
    echo "usage: score_variant.sh NAME [validation|confirm]" >&2
    exit 2 ;;
esac

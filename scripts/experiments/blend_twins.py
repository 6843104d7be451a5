"""Make "hard" synthetic twins: a vocoded twin pulled most of the way back to its original.

    python scripts/experiments/blend_twins.py IN_MANIFEST OUT_DIR [--fraction 0.35] [--seed 0]

The neural vocoders eval_public misses most (HiFi-GAN, WaveGlow, MelGAN, WaveNet) are
well trained: their copy-synthesis is close to the recording, while every twin the
project can make on a CPU is crude (log-spectral distance 8-11 dB). A detector trained on
crude twins may learn only crude cues. This ablation makes fakes with fainter artefacts
from the twins already in IN_MANIFEST: for a random share of its synthetic rows, the
STFT magnitude becomes ``|original| ** (1 - a) * |twin| ** a`` with ``a`` drawn from
0.25-0.6, the phase is the twin's, and the result is brought back to the original's RMS.
Nothing of the original is copied through unchanged: the phase, and part of the
magnitude, are the vocoder's.

``--lifter K`` makes a different kind of hard twin instead: the twin's STFT magnitude
divided by its own smooth spectral envelope and multiplied by the original's (each the
first K cepstral coefficients of a frame's log magnitude; K=30 at 512 points keeps
detail coarser than about 500 Hz, below any voice's harmonic spacing), the phase the
twin's. A crude vocoder's gross errors (wrong formants and tilt, log-Mel L1 0.77 for the
CPU HiFi-GAN) go, its excitation traces stay (smeared or missing harmonics, the noise
between them, phase): the kind of error left in a well-trained vocoder, whose mel
envelope its loss pins down. Its rows are named ``<system>_envelope``.

Writes OUT_DIR/fake/<system>_blend/<corpus>/<original's file name> and OUT_DIR/MANIFEST.csv
(path, label, system, group, original; paths relative to OUT_DIR) for
``scripts/combine_manifests.py``. Twins keep their original's split group.
"""
import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from joblib import Parallel, delayed

from forensics_scan.audio import SAMPLE_RATE
from forensics_scan.synthesis import rms, scale_to_rms

N_FFT, HOP = 512, 128
WEIGHT_RANGE = (0.25, 0.6)


def _respectrum(original: np.ndarray, twin: np.ndarray, change) -> np.ndarray:
    """The twin's STFT changed by ``change(spec_original, spec_twin)`` and turned back
    into audio of the shorter clip's length, at the original's RMS."""
    import librosa

    n = min(original.size, twin.size)
    spec_o = librosa.stft(original[:n], n_fft=N_FFT, hop_length=HOP)
    spec_t = librosa.stft(twin[:n], n_fft=N_FFT, hop_length=HOP)
    output = librosa.istft(change(spec_o, spec_t), hop_length=HOP, n_fft=N_FFT, length=n)
    return scale_to_rms(output.astype(np.float32), rms(original))


def blend(original: np.ndarray, twin: np.ndarray, weight: float) -> np.ndarray:
    """The twin's phase with a magnitude ``weight`` of the way from the original's to
    the twin's (geometric interpolation), at the original's RMS."""
    def mix(spec_o, spec_t):
        magnitude = np.abs(spec_o) ** (1.0 - weight) * np.abs(spec_t) ** weight
        return magnitude * np.exp(1j * np.angle(spec_t))
    return _respectrum(original, twin, mix)


def smooth_envelope(log_magnitude: np.ndarray, lifter: int) -> np.ndarray:
    """Each frame's (column's) log magnitude smoothed by keeping its first ``lifter``
    cepstral coefficients."""
    cepstrum = np.fft.irfft(log_magnitude, axis=0)
    cepstrum[lifter:cepstrum.shape[0] - lifter + 1] = 0.0
    return np.fft.rfft(cepstrum, axis=0).real


def match_envelope(original: np.ndarray, twin: np.ndarray, lifter: int) -> np.ndarray:
    """The twin with the original's smooth spectral envelope (see the module's text), at
    the original's RMS."""
    def swap_envelope(spec_o, spec_t):
        log_o, log_t = (np.log(np.abs(spec) + 1e-7) for spec in (spec_o, spec_t))
        return spec_t * np.exp(smooth_envelope(log_o, lifter) - smooth_envelope(log_t, lifter))
    return _respectrum(original, twin, swap_envelope)


def _make(row, manifest_dir: Path, out_dir: Path, weight: float, lifter: int = 0) -> dict:
    twin_path = manifest_dir / row.path
    original, rate_o = sf.read(row.original, dtype="float32")
    twin, rate_t = sf.read(twin_path, dtype="float32")
    if rate_o != SAMPLE_RATE or rate_t != SAMPLE_RATE or original.ndim != 1 or twin.ndim != 1:
        return {"error": f"{row.path}: not 16 kHz mono"}
    source = Path(row.original)  # .../<corpus>/<clip>: one twin per system and clip
    system = f"{row.system}_envelope" if lifter else f"{row.system}_blend"
    relative = Path("fake") / system / source.parent.name / source.name
    target = out_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    audio = match_envelope(original, twin, lifter) if lifter else blend(original, twin, weight)
    sf.write(target, audio, SAMPLE_RATE, subtype="PCM_16")
    return {"path": str(relative), "label": "fake", "system": system,
            "group": row.group, "original": row.original}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest")
    parser.add_argument("out_dir")
    parser.add_argument("--fraction", type=float, default=0.35)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lifter", type=int, default=0,
                        help="match the original's envelope (this many cepstral "
                             "coefficients) instead of blending")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    manifest_dir = Path(args.manifest).resolve().parent
    out_dir = Path(args.out_dir).resolve()
    table = pd.read_csv(args.manifest)
    fakes = table[(table.label == "fake") & table.original.notna()]
    chosen = fakes.sample(frac=args.fraction, random_state=args.seed)
    weights = np.random.default_rng(args.seed).uniform(*WEIGHT_RANGE, len(chosen))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = Parallel(n_jobs=args.jobs, verbose=5)(
        delayed(_make)(row, manifest_dir, out_dir, float(weight), args.lifter)
        for row, weight in zip(chosen.itertuples(index=False), weights, strict=True))
    failed = [row["error"] for row in rows if "error" in row]
    made = pd.DataFrame([row for row in rows if "error" not in row])
    made.to_csv(out_dir / "MANIFEST.csv", index=False)
    print(f"wrote {len(made)} twins to {out_dir / 'MANIFEST.csv'}; "
          f"{len(failed)} skipped" + "".join(f"\n  {reason}" for reason in failed))


if __name__ == "__main__":
    main()

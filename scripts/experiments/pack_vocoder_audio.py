"""Pack genuine training-split clips for ``python -m forensics_scan.gan_vocoder`` on a
machine without fscan's audio stack (a lent GPU): one .npz of int16 audio, crop starts
and the Mel filterbank (``gan_vocoder.pack_clips``).

    python scripts/experiments/pack_vocoder_audio.py MANIFEST VALIDATION OUT.npz --minutes 25

MANIFEST is a training table (``fscan build-dataset``); rows listed in VALIDATION (the
training run's validation split, ``fscan train`` writes it) are left out, so the vocoder
never hears the genuine clips the detector is selected on. Clips are taken in a seeded
random order until ``--minutes`` of audio are packed; ``--skip-minutes`` then drops the
head of the packed audio (crops starting before it), to send a later part of the same clips.
"""

import argparse
import os

import numpy as np
import pandas as pd

from forensics_scan.audio import DecodeError, load_audio
from forensics_scan.gan_vocoder import SAMPLE_RATE, pack_clips


def drop_head(packed: dict, samples: int) -> dict:
    """``packed`` without its first ``samples`` of audio and the crops that start there."""
    starts = packed["starts"]
    return {**packed, "audio": packed["audio"][samples:],
            "starts": starts[starts >= samples] - samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest")
    parser.add_argument("validation")
    parser.add_argument("out")
    parser.add_argument("--minutes", type=float, default=25.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-minutes", type=float, default=0.0)
    args = parser.parse_args()

    table = pd.read_csv(args.manifest)
    held_out = set(pd.read_csv(args.validation)["path"].map(os.path.basename))
    names = table["path"].map(os.path.basename)
    genuine = table[(table["label"] == "real") & ~names.isin(held_out)]
    order = np.random.default_rng(args.seed).permutation(len(genuine))
    base = os.path.dirname(os.path.abspath(args.manifest))
    clips, seconds = [], 0.0
    for index in order:
        if seconds >= args.minutes * 60:
            break
        path = genuine["path"].iloc[index]
        try:
            audio = load_audio(path if os.path.isabs(path) else os.path.join(base, path))
        except DecodeError as error:
            print(f"skipped {path}: {error}")
            continue
        clips.append(audio)
        seconds += audio.size / SAMPLE_RATE
    packed = drop_head(pack_clips(clips), int(args.skip_minutes * 60 * SAMPLE_RATE))
    np.savez(args.out, **packed)
    print(f"{len(clips)} clips, {packed['audio'].size / SAMPLE_RATE / 60:.1f} min packed, "
          f"{packed['starts'].size} crop starts -> {args.out}")


if __name__ == "__main__":
    main()

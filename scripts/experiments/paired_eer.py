"""How far apart two models' file EERs are on the same clips, with a paired 95 % interval.

Both models scored the same labelled files (`fscan evaluate ... --out-dir DIR` writes
DIR/file_scores.csv). The clips are resampled jointly (genuine and fake separately, as
`metrics.bootstrap_interval` does), so the interval is that of the *difference*, which is
narrower than either model's own interval because both meet the same hard clips.

    python scripts/experiments/paired_eer.py work/evalcal_sam work/evalcal_hifigan_cpu
    python scripts/experiments/paired_eer.py A B --drop-system HiFi-GAN

``--drop-system`` leaves one system's fakes out of both tables (all genuine clips stay):
for a model trained on twins from that very system, whose row no longer measures an
unseen generator.
"""

import argparse
import os

import numpy as np
import pandas as pd

from forensics_scan import metrics


def paired_difference(first: pd.DataFrame, second: pd.DataFrame, n_resamples: int = 2000
                      ) -> dict:
    """File EER of each table, their difference (first - second) and its 95 % interval.

    Tables have ``path``, ``label`` and ``score``; files either model could not score
    are left out of both.
    """
    joined = first.merge(second, on=["path", "label"], suffixes=("_1", "_2"), validate="1:1")
    if len(joined) != len(first) or len(joined) != len(second):
        raise ValueError("the two tables do not hold the same files")
    joined = joined.dropna(subset=["score_1", "score_2"])
    is_fake = (joined["label"] == "fake").to_numpy()
    scores = joined[["score_1", "score_2"]].to_numpy(dtype=float)

    def difference(labels, rows):  # rows: the resampled row numbers, passed as "scores"
        rows = rows.astype(int)
        return (metrics.eer(labels, scores[rows, 0])[0]
                - metrics.eer(labels, scores[rows, 1])[0])

    low, high = metrics.bootstrap_interval(is_fake, np.arange(len(joined), dtype=float),
                                           difference, n_resamples=n_resamples)
    first_eer = metrics.eer(is_fake, scores[:, 0])[0]
    second_eer = metrics.eer(is_fake, scores[:, 1])[0]
    return {"files": len(joined), "first": first_eer, "second": second_eer,
            "difference": first_eer - second_eer, "low": low, "high": high}


def without_system(table: pd.DataFrame, system: str) -> pd.DataFrame:
    """``table`` less the fake rows of ``system`` (its ``system`` column); genuine rows stay."""
    if system not in set(table.loc[table["label"] == "fake", "system"]):
        raise ValueError(f"no fake files of system {system!r} to leave out")
    return table[(table["label"] != "fake") | (table["system"] != system)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", help="evaluate --out-dir of the first model")
    parser.add_argument("second", help="evaluate --out-dir of the second model")
    parser.add_argument("--drop-system", action="append", default=[], metavar="SYSTEM",
                        help="leave this system's fakes out of both (repeatable)")
    args = parser.parse_args()
    first, second = (pd.read_csv(os.path.join(folder, "file_scores.csv"))
                     for folder in (args.first, args.second))
    for system in args.drop_system:
        first, second = without_system(first, system), without_system(second, system)
    result = paired_difference(first, second)
    print(f"{result['files']} files: file EER {100 * result['first']:.1f} % against "
          f"{100 * result['second']:.1f} %; difference {100 * result['difference']:+.1f} "
          f"points, 95 % interval {100 * result['low']:+.1f} to {100 * result['high']:+.1f}")


if __name__ == "__main__":
    main()

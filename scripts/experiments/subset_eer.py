"""File EER on several labelled tables from one scoring of a table that holds them all.

The validation tables grow by one twin family at a time (VALIDATION_wide within
VALIDATION_melgan within VALIDATION_mbmelgan within VALIDATION_gltts), and a file's score
does not depend on which table it was scored in, so one `fscan evaluate` of the largest
gives every smaller table's file EER: the same figures as evaluating each, for a
fraction of the time.

    python scripts/experiments/subset_eer.py work/v13_K9 work/dataset/VALIDATION_gltts.csv \
        work/dataset/VALIDATION_mbmelgan.csv work/dataset/VALIDATION_melgan.csv \
        work/dataset/VALIDATION_wide.csv
"""

import argparse
import os

import pandas as pd

from forensics_scan import metrics
from forensics_scan.labels import read_labelled


def subset_eer(scores: pd.DataFrame, table: pd.DataFrame) -> dict:
    """File EER of ``table``'s files (``path``) with the scores of ``scores``.

    ``scores`` is an evaluation's file_scores.csv (``path``, ``label``, ``score``); files
    it could not score are left out, as `fscan evaluate` leaves them out.

    Raises
    ------
    ValueError
        If a file of ``table`` is not in ``scores``: it was scored on other data.
    """
    missing = sorted(set(table["path"]) - set(scores["path"]))
    if missing:
        raise ValueError(f"{len(missing)} files were not scored, e.g. {missing[0]}")
    chosen = scores[scores["path"].isin(set(table["path"]))].dropna(subset=["score"])
    is_fake = (chosen["label"] == "fake").to_numpy()
    return {"files": len(chosen), "fake": int(is_fake.sum()),
            "eer": metrics.eer(is_fake, chosen["score"].to_numpy(dtype=float))[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scored", help="evaluate --out-dir of the largest table")
    parser.add_argument("tables", nargs="+", help="labelled tables (CSV) inside it")
    args = parser.parse_args()
    scores = pd.read_csv(os.path.join(args.scored, "file_scores.csv"))
    for path in args.tables:
        result = subset_eer(scores, read_labelled(path))
        print(f"{path}: {result['files']} files ({result['fake']} fake), "
              f"file EER {100 * result['eer']:.2f} %")


if __name__ == "__main__":
    main()

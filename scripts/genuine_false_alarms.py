"""Genuine false alarms per corpus, from an ``fscan evaluate --out-dir`` folder.

    python scripts/genuine_false_alarms.py work/val_NAME [--out CSV]

Reads the folder's file_scores.csv (the genuine files are the rows labelled real) and the
threshold the evaluation used (metrics.json), names each genuine file's corpus by the
folder under ``real/`` in its path, and prints the share of each corpus's scored genuine
files at or above the threshold as a Markdown table (the model card's "Calibration and
genuine false alarms" table); ``--out`` also writes it as CSV (corpus, files, false_alarm).
"""
import argparse
import json
import os

import pandas as pd


def corpus_of(path: str) -> str:
    """The folder right under ``real/`` in ``path``, or "other" when there is none."""
    parts = os.path.normpath(path).split(os.sep)
    return parts[parts.index("real") + 1] if "real" in parts[:-2] else "other"


def false_alarms(folder: str) -> pd.DataFrame:
    """One row per corpus (sorted), then "all genuine": files, false_alarm (a share)."""
    with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as handle:
        threshold = json.load(handle)["threshold"]
    scores = pd.read_csv(os.path.join(folder, "file_scores.csv"))
    genuine = scores[(scores.label == "real") & (scores.status == "ok") & scores.score.notna()]
    flagged = (genuine.score >= threshold).rename("flagged")
    by_corpus = flagged.groupby(genuine.path.map(corpus_of).rename("corpus"))
    table = pd.DataFrame({"files": by_corpus.size(), "false_alarm": by_corpus.mean()})
    table.loc["all genuine"] = [len(genuine), flagged.mean()]
    return table.reset_index().astype({"files": int})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="an fscan evaluate --out-dir folder")
    parser.add_argument("--out", help="also write the table here as CSV")
    args = parser.parse_args()
    table = false_alarms(args.folder)
    print("| corpus | files | false-alarm rate |\n|---|---:|---:|")
    for row in table.itertuples():
        print(f"| {row.corpus} | {row.files} | {row.false_alarm:.1%} |")
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()

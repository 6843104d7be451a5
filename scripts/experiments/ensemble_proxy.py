"""Would averaging trained variants help? Greedy ensemble selection on validation scores.

    python scripts/experiments/ensemble_proxy.py NAME=VAL_DIR:EVAL_DIR [NAME=...] [--max 5]

Each VAL_DIR and EVAL_DIR is an ``fscan evaluate --out-dir`` folder of one trained variant:
VAL_DIR scored on the validation split of the training data (work/dataset/VALIDATION.csv),
EVAL_DIR on eval_public. Members are added one at a time, always the one that lowers the
file EER on the clean validation split (Debian TTS rows left out, as in the model card's
"validation 819" column) the most, while it keeps falling, up to ``--max`` members. The
ensemble's file score is the mean of its members' file logits: a proxy for averaging
segment logits inside one model. eval_public is read only to report the chosen ensemble,
never to choose it.
"""
import argparse

import numpy as np
import pandas as pd

from forensics_scan.metrics import auc, eer

TTS_SYSTEMS = ("espeak", "flite", "festival")


def file_logits(folder: str, drop_tts: bool) -> pd.DataFrame:
    """path-indexed table of label (1 = fake) and logit of the file score."""
    table = pd.read_csv(f"{folder}/file_scores.csv")
    table = table[(table.status == "ok") & table.score.notna()]
    if drop_tts:
        table = table[~table.system.str.startswith(TTS_SYSTEMS)]
    score = table.score.clip(1e-6, 1 - 1e-6)
    return pd.DataFrame({"fake": (table.label == "fake").astype(int).to_numpy(),
                         "logit": np.log(score / (1 - score)).to_numpy()},
                        index=table.path.to_numpy())


def aligned(folders: dict, drop_tts: bool):
    """Labels and {name: logits} over the files every variant scored."""
    tables = {name: file_logits(folder, drop_tts) for name, folder in folders.items()}
    common = sorted(set.intersection(*(set(table.index) for table in tables.values())))
    first = next(iter(tables.values()))
    return (first.loc[common, "fake"].to_numpy(),
            {name: table.loc[common, "logit"].to_numpy() for name, table in tables.items()})


def file_eer(labels, members, logits) -> float:
    return eer(labels, np.mean([logits[name] for name in members], axis=0))[0]


def greedy(labels, logits, most: int) -> list:
    chosen, best = [], 1.0
    while len(chosen) < min(most, len(logits)):
        trials = {name: file_eer(labels, chosen + [name], logits)
                  for name in logits if name not in chosen}
        name = min(trials, key=trials.get)
        if trials[name] >= best:
            break
        chosen.append(name)
        best = trials[name]
        print(f"add {name:16s} validation file EER {best:.2%}")
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="NAME=VAL_DIR:EVAL_DIR")
    parser.add_argument("--max", type=int, default=5, help="most members")
    args = parser.parse_args()
    val_dirs, eval_dirs = {}, {}
    for variant in args.variants:
        name, folders = variant.split("=", 1)
        val_dirs[name], eval_dirs[name] = folders.split(":", 1)

    val_labels, val_logits = aligned(val_dirs, drop_tts=True)
    eval_labels, eval_logits = aligned(eval_dirs, drop_tts=False)
    print(f"validation: {len(val_labels)} files; eval_public: {len(eval_labels)} files")
    for name in val_logits:
        print(f"{name:16s} validation {file_eer(val_labels, [name], val_logits):.2%}  "
              f"eval_public {file_eer(eval_labels, [name], eval_logits):.2%}")
    chosen = greedy(val_labels, val_logits, args.max)
    for title, members in (("chosen on validation", chosen), ("all variants", list(val_logits))):
        mean = np.mean([eval_logits[name] for name in members], axis=0)
        print(f"{title} ({', '.join(members)}): validation "
              f"{file_eer(val_labels, members, val_logits):.2%}, eval_public file EER "
              f"{eer(eval_labels, mean)[0]:.2%} (AUC {auc(eval_labels, mean):.3f})")


if __name__ == "__main__":
    main()

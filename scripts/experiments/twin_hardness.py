"""How hard is a set of twins for a detector that never saw their vocoder?

    python scripts/experiments/twin_hardness.py TWIN_MANIFEST OUT_DIR [--model M]

TWIN_MANIFEST is a `fscan build-dataset` (or blend_twins.py) manifest: its synthetic rows
with an ``original`` column are the twins, paths relative to the manifest's folder. The
twins and their genuine originals go into OUT_DIR/pairs.csv, `fscan evaluate` scores them
with the model (the bundled one by default) into OUT_DIR/, and the file EER is printed
overall and per corpus (the folder a clip sits in). The model card's "How hard are the
project's own twins" table comes from this. A vocoder worth training a detector on makes
twins that are hard for it (the CPU HiFi-GAN's: 3 % EER) *and* close to their originals.
Training data only: never point it at eval_public.
"""
import argparse
import json
import os

import pandas as pd

from forensics_scan import metrics
from forensics_scan.cli import main as fscan


def pairs_table(manifest_path: str) -> pd.DataFrame:
    """The manifest's twins (absolute paths) followed by their originals, labelled
    genuine, one row per twin."""
    table = pd.read_csv(manifest_path)
    twins = table[(table.label == "fake") & table.original.notna()]
    if twins.empty:
        raise SystemExit(f"{manifest_path}: no synthetic rows with an original")
    folder = os.path.dirname(os.path.abspath(manifest_path))
    twins = twins.assign(path=[os.path.join(folder, path) for path in twins.path])
    originals = pd.DataFrame({"path": twins.original.values, "label": "genuine",
                              "system": "bonafide", "group": twins.group.values,
                              "original": ""})
    return pd.concat([twins, originals], ignore_index=True)


def eer_by_corpus(scores: pd.DataFrame) -> pd.DataFrame:
    """File EER and counts per corpus (a clip's folder), for corpora with both classes."""
    scored = scores.dropna(subset=["score"])
    scored = scored.assign(corpus=[os.path.basename(os.path.dirname(p)) for p in scored.path])
    rows = []
    for corpus, group in scored.groupby("corpus"):
        is_fake = (group.label == "fake").to_numpy()
        if is_fake.all() or not is_fake.any():
            continue
        rows.append({"corpus": corpus, "twins": int(is_fake.sum()),
                     "file_eer": metrics.eer(is_fake, group.score.to_numpy())[0]})
    return pd.DataFrame(rows, columns=["corpus", "twins", "file_eer"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest")
    parser.add_argument("out_dir")
    parser.add_argument("--model", help="checkpoint (default: the bundled model)")
    parser.add_argument("--jobs", default="2")
    args = parser.parse_args()

    os.makedirs(args.out_dir, exist_ok=True)
    pairs = os.path.join(args.out_dir, "pairs.csv")
    pairs_table(args.manifest).to_csv(pairs, index=False)
    command = ["evaluate", pairs, "--out-dir", args.out_dir, "--jobs", args.jobs, "--quiet"]
    fscan(command + (["--model", args.model] if args.model else []), standalone_mode=False)
    with open(os.path.join(args.out_dir, "metrics.json"), encoding="utf-8") as handle:
        files = json.load(handle)["files"]  # evaluate's own figures, not recomputed
    scores = pd.read_csv(os.path.join(args.out_dir, "file_scores.csv"))
    print(f"twins: file EER {100 * files['eer']:.1f} %, AUC {files['auc']:.3f} "
          f"({files['n_fake']} twins, {len(scores) - files['n_scored']} files not scored)")
    for row in eer_by_corpus(scores).itertuples():
        print(f"  {row.corpus}: {100 * row.file_eer:.0f} % ({row.twins} twins)")


if __name__ == "__main__":
    main()

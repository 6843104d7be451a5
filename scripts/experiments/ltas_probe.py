"""Long-term-spectrum probe: how much of the label does a segment's mean log-Mel carry?

Each segment becomes 80 numbers, its Mel bands' means over time: the recording's channel
colouring, the voice's timbre and the corpus's character, with no temporal detail at all
(what ``fscan train --band-norm`` hides from the LCNN). A logistic regression fits them on
the training side of a training table (same split, segments and channel copies as
``fscan train`` with the bundled settings, read from the same feature cache), then scores:

- the validation split, as recorded, without Debian TTS rows (the 819-file view);
- optionally an evaluation manifest (e.g. eval_public), scored only: nothing is fitted or
  chosen on it.

    python scripts/experiments/ltas_probe.py work/dataset/MANIFEST_notts.csv \
        --cache-dir work/cache --eval ../shared/data/eval_public/MANIFEST.csv

File scores are the mean of their segments' scores.
"""
import argparse
import os

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from forensics_scan.labels import read_labelled
from forensics_scan.metrics import auc, eer
from forensics_scan.training import TrainConfig, extract_segments, split_by_group

TTS_PREFIXES = ("espeak", "flite", "festival")


def band_means(segments) -> np.ndarray:
    return segments.features.mean(axis=2, dtype=np.float32)  # no float32 copy of the cache


def file_figures(scores, file_index, labels) -> str:
    files = pd.DataFrame({"row": file_index, "score": scores, "label": labels})
    files = files.groupby("row").mean()
    y, s = files["label"].to_numpy().astype(int), files["score"].to_numpy()
    return f"{len(y)} files, EER {eer(y, s)[0]:.1%}, AUC {auc(y, s):.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("train_manifest")
    parser.add_argument("--cache-dir", help="fscan train's feature cache (saves extraction)")
    parser.add_argument("--eval", dest="eval_manifest", help="manifest scored only")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    config = TrainConfig()  # the bundled settings: split, segments per file, seed
    table = read_labelled(args.train_manifest)
    labels = (table["label"] == "fake").astype(int).to_numpy()
    data = extract_segments(table["path"].tolist(), labels, jobs=args.jobs,
                            max_segments_per_file=config.max_segments_per_file,
                            augment_copies=1, seed=config.seed, cache_dir=args.cache_dir,
                            log=lambda line: None)
    on_val = split_by_group(table["group"].tolist(), config.val_fraction,
                            config.seed)[data.file_index]
    features = band_means(data)
    scaler = StandardScaler().fit(features[~on_val])
    probe = LogisticRegression(max_iter=2000).fit(scaler.transform(features[~on_val]),
                                                  data.labels[~on_val])

    no_tts = ~table["system"].astype(str).str.startswith(TTS_PREFIXES).to_numpy()
    keep = on_val & (data.variant == 0) & no_tts[data.file_index]
    scores = probe.decision_function(scaler.transform(features[keep]))
    print("validation, as recorded, no Debian TTS:",
          file_figures(scores, data.file_index[keep], data.labels[keep]))

    if args.eval_manifest:
        table = read_labelled(args.eval_manifest)
        labels = (table["label"] == "fake").astype(int).to_numpy()
        data = extract_segments(table["path"].tolist(), labels, jobs=args.jobs,
                                log=lambda line: None)
        scores = probe.decision_function(scaler.transform(band_means(data)))
        print(f"{os.path.basename(os.path.dirname(os.path.abspath(args.eval_manifest)))}:",
              file_figures(scores, data.file_index, data.labels))


if __name__ == "__main__":
    main()

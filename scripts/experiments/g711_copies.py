"""Genuine validation speech through the telephone codec G.711: is it still genuine?

G.711 stores 8 kHz speech as 8-bit mu-law (North America, Japan) or A-law (elsewhere): the
same coarse, level-following quantisation that ``mu_law_sampling`` twins imitate in
WaveNet's output (rule v14), only without the random draw. A model that learnt those twins
may call every phone recording fake. This writes a table in which the genuine files of a
validation table are G.711 copies (each file both ways) and the synthetic files are the
table's own, for ``fscan evaluate``: its false-alarm rate at the model's threshold is the
share of phone-coded genuine speech flagged.

    python scripts/experiments/g711_copies.py work/dataset/VALIDATION_mbmelgan.csv work/g711
    fscan evaluate work/g711/MANIFEST.csv --model MODEL --out-dir OUT

The copies are 8 kHz WAV files with the codec as their subtype (soundfile's ULAW and
ALAW), decoded and resampled by fscan like any other file.
"""

import argparse
import os

import pandas as pd
import soundfile as sf
import soxr

from forensics_scan.audio import SAMPLE_RATE, load_audio
from forensics_scan.labels import REAL

G711_RATE = 8000
SUBTYPES = ("ULAW", "ALAW")


def write_copies(table_path: str, out_dir: str) -> pd.DataFrame:
    """Write the G.711 copies of ``table_path``'s genuine files into ``out_dir`` and
    return the new table (copies, then the synthetic rows with absolute paths), which is
    also written as ``out_dir/MANIFEST.csv``."""
    table = pd.read_csv(table_path)
    folder = os.path.dirname(os.path.abspath(table_path))
    table["path"] = [os.path.join(folder, path) for path in table["path"]]
    genuine = table[table["label"] == REAL]
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for index, row in enumerate(genuine.to_dict("records")):
        narrow = soxr.resample(load_audio(row["path"]), SAMPLE_RATE, G711_RATE, quality="HQ")
        for subtype in SUBTYPES:
            name = f"{index:04d}_{subtype.lower()}.wav"
            sf.write(os.path.join(out_dir, name), narrow, G711_RATE, subtype=subtype)
            rows.append({**row, "path": name, "system": f"{row['system']}_{subtype.lower()}"})
    out = pd.concat([pd.DataFrame(rows, columns=table.columns), table[table["label"] != REAL]],
                    ignore_index=True)
    out.to_csv(os.path.join(out_dir, "MANIFEST.csv"), index=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", help="a validation table (path, label, system, group)")
    parser.add_argument("out_dir")
    args = parser.parse_args()
    out = write_copies(args.table, args.out_dir)
    copies = int((out["label"] == REAL).sum())
    print(f"{copies} G.711 copies of {copies // len(SUBTYPES)} genuine files and "
          f"{len(out) - copies} synthetic files in {args.out_dir}/MANIFEST.csv")


if __name__ == "__main__":
    main()

"""Join training manifests into one, optionally leaving systems out.

    python scripts/combine_manifests.py OUT.csv IN.csv [IN.csv ...] [--drop espeak,flite]
        [--split validation [--seed 0] [--val-fraction 0.15]]

Rows keep their columns and order (first manifest first). A relative path is rewritten
relative to OUT's folder, so a clip is found wherever the table is written; a clip listed
twice (the genuine rows every `fscan build-dataset` manifest repeats) is kept once. Rows
whose ``system`` starts with one of the ``--drop`` prefixes are left out. ``--split``
keeps one side of the split `fscan train --seed N --val-fraction F` makes (whole groups,
by a seeded hash of the group name): the validation files a trained model never saw, to
score it with `fscan evaluate`.
"""
import argparse
import csv
import functools
import os


def combine(out_path, in_paths, drop=(), split=None, seed=0, val_fraction=0.15):
    out_dir = os.path.dirname(os.path.abspath(out_path))
    seen, table, columns = set(), [], None
    for in_path in in_paths:
        in_dir = os.path.dirname(os.path.abspath(in_path))
        with open(in_path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = columns or reader.fieldnames
            for row in reader:
                where = os.path.normpath(os.path.join(in_dir, row["path"]))
                if row["system"].startswith(tuple(drop)) or where in seen:
                    continue
                if split and _side(row["group"], seed, val_fraction) != split:
                    continue
                seen.add(where)
                if not os.path.isabs(row["path"]):
                    row["path"] = os.path.relpath(where, out_dir)
                table.append(row)
    with open(out_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)
    return len(table)


@functools.lru_cache(maxsize=None)  # a group has many rows; its side is decided once
def _side(group, seed, val_fraction):
    from forensics_scan.training import split_by_group

    return "validation" if split_by_group([group], val_fraction, seed)[0] else "train"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--drop", default="", help="comma-separated system-name prefixes")
    parser.add_argument("--split", choices=["train", "validation"],
                        help="keep one side of fscan train's split (default: all rows)")
    parser.add_argument("--seed", type=int, default=0, help="fscan train's --seed")
    parser.add_argument("--val-fraction", type=float, default=0.15,
                        help="fscan train's --val-fraction")
    arguments = parser.parse_args()
    prefixes = [prefix for prefix in arguments.drop.split(",") if prefix]
    rows = combine(arguments.out, arguments.inputs, prefixes, arguments.split, arguments.seed,
                   arguments.val_fraction)
    print(f"{arguments.out}: {rows} rows")

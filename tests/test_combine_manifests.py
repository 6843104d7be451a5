import csv
import os

from project_scripts import load_script

combine_manifests = load_script("scripts/combine_manifests.py")

COLUMNS = ["path", "label", "system", "group", "original"]


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)


def read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_joins_rewrites_relative_paths_keeps_a_clip_once_and_drops_systems(tmp_path):
    genuine = str(tmp_path / "real" / "a.flac")  # absolute, as build-dataset writes genuine rows
    write(tmp_path / "first" / "MANIFEST.csv", [
        [genuine, "real", "bonafide", "spk", ""],
        ["fake/world_dio/a.flac", "fake", "world_dio", "spk", genuine],
        ["fake/espeak_ng/tts_00000.flac", "fake", "espeak_ng", "tts:espeak-ng:en", ""]])
    write(tmp_path / "second" / "MANIFEST.csv", [
        [genuine, "real", "bonafide", "spk", ""],
        ["fake/kokoro/tts_00000.flac", "fake", "kokoro", "tts:kokoro:jm_kumo", ""]])
    out = tmp_path / "first" / "joined.csv"
    count = combine_manifests.combine(str(out), [str(tmp_path / "first" / "MANIFEST.csv"),
                                                 str(tmp_path / "second" / "MANIFEST.csv")],
                                      drop=["espeak", "flite"])
    rows = read(out)
    assert count == len(rows) == 3
    assert [row["path"] for row in rows] == [
        genuine, "fake/world_dio/a.flac",
        os.path.join("..", "second", "fake", "kokoro", "tts_00000.flac")]
    assert list(rows[0]) == COLUMNS and rows[1]["original"] == genuine


def test_split_keeps_one_side_of_the_training_split_whole_groups_at_a_time(tmp_path):
    from forensics_scan.training import split_by_group

    groups = [f"spk{i}" for i in range(40)]
    write(tmp_path / "MANIFEST.csv", [[f"{group}_{k}.flac", "real", "bonafide", group, ""]
                                      for group in groups for k in range(2)])
    expected = {group for group, held_out in zip(groups, split_by_group(groups, 0.25, 7))
                if held_out}
    assert 0 < len(expected) < len(groups)
    sides = {}
    for split in ("validation", "train"):
        out = tmp_path / f"{split}.csv"
        combine_manifests.combine(str(out), [str(tmp_path / "MANIFEST.csv")], split=split,
                                  seed=7, val_fraction=0.25)
        sides[split] = [row["group"] for row in read(out)]
    assert set(sides["validation"]) == expected and len(sides["validation"]) == 2 * len(expected)
    assert set(sides["train"]) == set(groups) - expected

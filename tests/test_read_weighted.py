"""scripts/experiments/read_weighted.py: which rows an up-weighting ablation repeats."""

import pandas as pd

from forensics_scan.training import TrainConfig, split_by_group
from project_scripts import load_script

read_weighted = load_script("scripts/experiments/read_weighted.py")


def table():
    rows = []
    for speaker in range(40):
        corpus = "ljspeech" if speaker % 2 else "fsdd"
        genuine = f"/data/real/{corpus}/{speaker}.flac"
        group = f"{corpus}:{speaker}"
        rows += [(genuine, "genuine", "bonafide", group, ""),
                 (f"fake/hifigan_like/{speaker}.flac", "fake", "hifigan_like", group, genuine),
                 (f"fake/world_dio/{speaker}.flac", "fake", "world_dio", group, genuine)]
    return pd.DataFrame(rows, columns=["path", "label", "system", "group", "original"])


def validation_groups(frame):
    config = TrainConfig()
    side = split_by_group(frame["group"].tolist(), config.val_fraction, config.seed)
    return set(frame.group[side])


def test_repeats_only_training_side_rows_of_the_chosen_systems():
    frame = table()
    held_out = validation_groups(frame)
    assert 0 < len(held_out) < 40  # both sides are exercised
    chosen = read_weighted.rows_to_repeat(frame, ["hifigan_like"])
    assert set(chosen.system) == {"hifigan_like"}
    assert not set(chosen.group) & held_out
    assert len(chosen) == 40 - len(held_out)


def test_without_systems_repeats_read_speech_of_both_classes():
    frame = table()
    chosen = read_weighted.rows_to_repeat(frame)
    assert set(chosen.group.str.split(":").str[0]) == {"ljspeech"}
    assert set(chosen.system) == {"bonafide", "hifigan_like", "world_dio"}
    assert not set(chosen.group) & validation_groups(frame)

"""scripts/genuine_false_alarms.py: the model card's per-corpus false-alarm table."""

import json

import pandas as pd

from project_scripts import load_script

genuine_false_alarms = load_script("scripts/genuine_false_alarms.py")


def test_false_alarms_are_counted_per_corpus_of_scored_genuine_files(tmp_path):
    rows = [  # path, label, score, status
        ("/data/real/fsdd/a.flac", "real", 0.9, "ok"),
        ("/data/real/fsdd/b.flac", "real", 0.5, "ok"),  # at the threshold: flagged
        ("/data/real/fsdd/c.flac", "real", 0.1, "ok"),
        ("/data/real/fsdd/d.flac", "real", 0.1, "ok"),
        ("/data/real/fleurs/speaker/e.flac", "real", 0.2, "ok"),
        ("/data/real/fleurs/f.flac", "real", None, "error"),  # unreadable: not counted
        ("/data/fake/world/real/g.flac", "fake", 0.9, "ok"),  # synthetic: not a false alarm
    ]
    pd.DataFrame(rows, columns=["path", "label", "score", "status"]).assign(
        system="x", error="").to_csv(tmp_path / "file_scores.csv", index=False)
    (tmp_path / "metrics.json").write_text(json.dumps({"threshold": 0.5}))

    table = genuine_false_alarms.false_alarms(str(tmp_path)).set_index("corpus")

    assert table.loc["fsdd"].tolist() == [4, 0.5]
    assert table.loc["fleurs"].tolist() == [1, 0.0]
    assert table.loc["all genuine"].tolist() == [5, 0.4]
    assert list(table.index) == ["fleurs", "fsdd", "all genuine"]


def test_a_path_without_a_real_folder_is_other():
    assert genuine_false_alarms.corpus_of("/clips/a.flac") == "other"
    assert genuine_false_alarms.corpus_of("/x/real/librispeech/1/2.flac") == "librispeech"

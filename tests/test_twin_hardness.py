"""scripts/experiments/twin_hardness.py: the twin/original table and per-corpus EER."""

import pandas as pd
import pytest

from project_scripts import load_script

twin_hardness = load_script("scripts/experiments/twin_hardness.py")


def test_pairs_table_puts_each_twin_beside_its_original(tmp_path):
    manifest = tmp_path / "twins" / "MANIFEST.csv"
    manifest.parent.mkdir()
    pd.DataFrame({
        "path": ["fake/v/a/x.flac", "fake/v/b/y.flac", "real/z.flac"],
        "label": ["fake", "fake", "genuine"], "system": ["v", "v", "bonafide"],
        "group": ["a:1", "b:2", "c:3"],
        "original": ["/data/real/a/x.flac", "/data/real/b/y.flac", None]}).to_csv(
            manifest, index=False)
    pairs = twin_hardness.pairs_table(str(manifest))
    assert list(pairs.label) == ["fake", "fake", "genuine", "genuine"]
    assert pairs.path[0] == str(tmp_path / "twins" / "fake/v/a/x.flac")
    assert list(pairs.path[2:]) == ["/data/real/a/x.flac", "/data/real/b/y.flac"]
    assert list(pairs.group[2:]) == ["a:1", "b:2"]  # an original keeps its twin's group


def test_pairs_table_without_twins_is_a_clear_error(tmp_path):
    manifest = tmp_path / "MANIFEST.csv"
    pd.DataFrame({"path": ["real/z.flac"], "label": ["genuine"], "system": ["bonafide"],
                  "group": ["c:3"], "original": [None]}).to_csv(manifest, index=False)
    with pytest.raises(SystemExit, match="no synthetic rows"):
        twin_hardness.pairs_table(str(manifest))


def test_eer_by_corpus_separates_corpora_and_skips_one_class_ones():
    scores = pd.DataFrame({
        "path": ["/t/easy/1.flac", "/t/easy/2.flac", "/r/easy/1.flac", "/r/easy/2.flac",
                 "/t/hard/1.flac", "/r/hard/1.flac", "/t/alone/1.flac", "/t/easy/3.flac"],
        "label": ["fake", "fake", "genuine", "genuine", "fake", "genuine", "fake", "fake"],
        "score": [0.9, 0.8, 0.1, 0.2, 0.1, 0.9, 0.5, None]})  # None: not scored
    table = twin_hardness.eer_by_corpus(scores).set_index("corpus")
    assert list(table.index) == ["easy", "hard"]  # "alone" has no genuine clip
    assert table.file_eer["easy"] == 0.0 and table.file_eer["hard"] == 1.0
    assert table.twins["easy"] == 2

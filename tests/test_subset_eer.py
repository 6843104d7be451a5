"""scripts/experiments/subset_eer.py: smaller tables' file EER from one scoring."""

import numpy as np
import pandas as pd
import pytest

from forensics_scan import metrics
from project_scripts import load_script

subset_eer = load_script("scripts/experiments/subset_eer.py")


def scored(n=40, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.array(["real", "fake"] * n)
    scores = rng.normal(labels == "fake", 1.0)
    return pd.DataFrame({"path": [f"/data/clip{i}.flac" for i in range(2 * n)],
                         "label": labels, "score": scores})


def test_a_subset_gets_the_eer_of_its_own_files_only():
    scores = scored()
    # the subset: every genuine file, and only the fakes the model finds easiest
    fakes = scores[scores["label"] == "fake"].nlargest(10, "score")
    table = pd.concat([scores[scores["label"] == "real"], fakes])[["path"]]

    result = subset_eer.subset_eer(scores, table)

    chosen = scores[scores["path"].isin(table["path"])]
    expected = metrics.eer(chosen["label"] == "fake", chosen["score"])[0]
    assert result == {"files": 50, "fake": 10, "eer": expected}
    assert result["eer"] < metrics.eer(scores["label"] == "fake", scores["score"])[0]


def test_unscored_files_are_left_out_and_foreign_files_refused():
    scores = scored()
    scores.loc[0, "score"] = np.nan  # a file the scan could not score

    assert subset_eer.subset_eer(scores, scores[["path"]])["files"] == 79
    foreign = pd.DataFrame({"path": ["/elsewhere/clip.flac"]})
    with pytest.raises(ValueError, match="1 files were not scored"):
        subset_eer.subset_eer(scores, pd.concat([scores[["path"]], foreign]))

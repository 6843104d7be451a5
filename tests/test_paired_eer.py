"""scripts/experiments/paired_eer.py: the paired interval of two models' EER difference."""

import numpy as np
import pandas as pd
import pytest

from project_scripts import load_script

paired_eer = load_script("scripts/experiments/paired_eer.py")


def scores_table(scores, n=60):
    labels = ["real"] * n + ["fake"] * n
    return pd.DataFrame({"path": [f"clip{i}.flac" for i in range(2 * n)], "label": labels,
                         "score": scores})


def test_a_model_against_itself_differs_by_nothing():
    rng = np.random.default_rng(1)
    table = scores_table(rng.normal(np.repeat([0.0, 1.0], 60), 1.0))

    result = paired_eer.paired_difference(table, table, n_resamples=200)

    assert result["difference"] == result["low"] == result["high"] == 0.0


def test_a_clearly_better_model_is_told_apart_and_a_near_twin_is_not():
    rng = np.random.default_rng(2)
    truth = np.repeat([0.0, 1.0], 60)
    weak = truth + rng.normal(0, 1.5, truth.size)
    strong = truth + rng.normal(0, 0.2, truth.size)
    near_twin = weak + rng.normal(0, 0.05, truth.size)

    better = paired_eer.paired_difference(scores_table(weak), scores_table(strong),
                                          n_resamples=300)
    tie = paired_eer.paired_difference(scores_table(weak), scores_table(near_twin),
                                       n_resamples=300)

    assert better["difference"] > 0.2 and better["low"] > 0  # interval excludes 0
    assert tie["low"] <= 0 <= tie["high"]
    assert better["low"] <= better["difference"] <= better["high"]


def test_a_system_left_out_takes_only_its_fakes():
    table = scores_table(np.linspace(0, 1, 120)).assign(
        system=["bonafide"] * 60 + ["HiFi-GAN"] * 20 + ["MelGAN"] * 40)

    kept = paired_eer.without_system(table, "HiFi-GAN")

    assert (kept["label"] == "real").sum() == 60 and set(kept["system"]) == {"bonafide", "MelGAN"}
    with pytest.raises(ValueError, match="no fake files"):
        paired_eer.without_system(table, "WaveGlow")


def test_tables_of_different_files_are_refused():
    table = scores_table(np.linspace(0, 1, 120))
    with pytest.raises(ValueError, match="same files"):
        paired_eer.paired_difference(table, table.iloc[:-1], n_resamples=10)

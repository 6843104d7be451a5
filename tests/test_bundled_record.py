"""The bundled checkpoint and the documents that quote it must describe the same model.

Swapping ``models/lcnn.safetensors`` means re-running ``fscan evaluate ... --record
eval_public`` and rewriting the model card and README figures; these tests fail when one
of those steps was skipped.
"""

import json
from pathlib import Path

import pytest

from forensics_scan.checkpoint import read_checkpoint_info

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"


@pytest.fixture(scope="module")
def bundled():
    return read_checkpoint_info(str(MODELS / "lcnn.safetensors"))


@pytest.fixture(scope="module")
def metrics():
    return json.loads((MODELS / "evaluation" / "metrics.json").read_text())


def test_recorded_eval_public_figures_match_the_committed_evaluation(bundled, metrics):
    record = bundled.metadata["held_out"]

    assert record["data"] == "eval_public"
    assert record["threshold"] == pytest.approx(bundled.threshold)
    assert metrics["threshold"] == pytest.approx(bundled.threshold)
    assert record["file_eer"] == pytest.approx(metrics["files"]["eer"])
    assert record["segment_eer"] == pytest.approx(metrics["segments"]["eer"])
    assert record["false_alarm_rate"] == pytest.approx(metrics["files"]["false_alarm_rate"])


def test_threshold_is_calibrated_on_validation_not_on_eval_public(bundled):
    calibration = bundled.metadata["calibration"]

    assert calibration["split"] == "validation"
    assert calibration["threshold"] == pytest.approx(bundled.threshold)
    assert "eval_public" not in " ".join(calibration["data"])


def test_model_card_and_readme_quote_the_bundled_figures(bundled, metrics):
    card = (MODELS / "MODEL_CARD.md").read_text()
    readme = (ROOT / "README.md").read_text()
    threshold = f"{bundled.threshold:.4f}"
    file_eer = f"{100 * metrics['files']['eer']:.1f} %"
    segment_eer = f"{100 * metrics['segments']['eer']:.1f} %"

    assert f"Decision threshold: {threshold}**" in card
    assert f"The threshold ({threshold})" in readme
    assert f"| file | **{file_eer}** |" in readme
    assert f"| segment | **{segment_eer}** |" in readme
    assert f"File EER {file_eer} on unseen generators" in card

import csv
import json
import math

import pandas as pd
import pytest

from forensics_scan.evaluation import evaluate, format_markdown, write_evaluation

GENUINE_SCORES = [0.1, 0.2, 0.3, 0.4]


def scan_tables():
    """A scan of 4 genuine files, 2 fakes from "Easy" (always caught), 4 from
    "Hard|Vocoder" (scored exactly like genuine speech), and 1 from "Broken" that could
    not be read. Every file has two segments scoring its file score and 0.05 less."""
    files = [(f"real/{i}.wav", "bonafide", "bonafide", score)
             for i, score in enumerate(GENUINE_SCORES)]
    files += [(f"fake/easy/{i}.wav", "spoof", "Easy", score)
              for i, score in enumerate([0.8, 0.9])]
    files += [(f"fake/hard/{i}.wav", "fake", "Hard|Vocoder", score)
              for i, score in enumerate(GENUINE_SCORES)]
    files.append(("fake/broken/0.wav", "fake", "Broken", None))
    files = pd.DataFrame(files, columns=["path", "label", "system", "score"])
    files["error"] = [""] * 10 + ["cannot decode"]
    segments = pd.DataFrame(
        [(row.path, row.label, row.system, row.score - offset)
         for row in files.itertuples() if not math.isnan(row.score)
         for offset in (0.0, 0.05)],
        columns=["path", "label", "system", "score"])
    return files, segments


@pytest.fixture
def result():
    return evaluate(*scan_tables(), threshold=0.5)


def test_overall_file_metrics(result):
    files = result["files"]
    assert (files["n_scored"], files["n_genuine"], files["n_fake"], files["n_errors"]) == (
        10, 4, 6, 1)
    # at 0.5 no genuine file is flagged, both Easy fakes are, no Hard fake is
    assert files["false_alarm_rate"] == 0.0
    assert files["miss_rate"] == pytest.approx(4 / 6)
    assert files["accuracy"] == pytest.approx(6 / 10)
    assert files["balanced_accuracy"] == pytest.approx(1 - (0 + 4 / 6) / 2)
    # AUC: Easy beats every genuine file (8 pairs), Hard ties as often as it wins (8 of 16)
    assert files["auc"] == pytest.approx((8 + 8) / 24)
    assert 0 < files["eer"] < 0.5


def test_per_system_eers(result):
    systems = {row["system"]: row for row in result["per_system"]}
    assert sorted(systems) == ["Broken", "Easy", "Hard|Vocoder"]
    easy, hard, broken = systems["Easy"], systems["Hard|Vocoder"], systems["Broken"]
    assert (easy["n_files"], easy["n_segments"]) == (2, 4)
    assert easy["file_eer"] == 0.0 and easy["segment_eer"] == 0.0
    assert easy["file_miss_rate"] == 0.0
    assert hard["file_eer"] == pytest.approx(0.5)
    assert hard["segment_eer"] == pytest.approx(0.5)
    assert hard["file_miss_rate"] == 1.0
    assert (broken["n_files"], broken["file_eer"], broken["segment_eer"]) == (0, None, None)


def test_segment_level(result):
    segments = result["segments"]
    assert (segments["n_genuine"], segments["n_fake"], segments["n_errors"]) == (8, 12, 0)


def test_errors_are_listed_and_left_out(result):
    assert result["errors"] == [{"path": "fake/broken/0.wav", "label": "fake",
                                 "system": "Broken", "error": "cannot decode"}]


def test_one_class_is_an_error():
    files, segments = scan_tables()
    genuine = files[files["label"] == "bonafide"]
    with pytest.raises(ValueError, match="scored files"):
        evaluate(genuine, segments[segments["label"] == "bonafide"], threshold=0.5)


def test_unknown_label_is_an_error():
    files, segments = scan_tables()
    files.loc[0, "label"] = "unsure"
    with pytest.raises(ValueError, match="unsure"):
        evaluate(files, segments, threshold=0.5)


def test_write_evaluation(result, tmp_path):
    write_evaluation(result, str(tmp_path / "out"))
    text = (tmp_path / "out" / "metrics.json").read_text()
    key_orders = []
    metrics = json.loads(text, object_pairs_hook=lambda pairs: key_orders.append(
        [key for key, _ in pairs]) or dict(pairs))
    assert all(keys == sorted(keys) for keys in key_orders)
    assert "curves" not in metrics
    assert metrics["files"]["eer"] == pytest.approx(result["files"]["eer"])
    assert metrics["errors"][0]["path"] == "fake/broken/0.wav"

    with open(tmp_path / "out" / "per_system.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["system"] for row in rows] == ["Broken", "Easy", "Hard|Vocoder"]
    assert float(rows[2]["file_eer"]) == pytest.approx(0.5)
    assert rows[0]["file_eer"] == "" and rows[0]["n_files"] == "0"

    image = (tmp_path / "out" / "roc_det.png").read_bytes()
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 10_000


def markdown_rows(text):
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            rows.append(cells)
    return rows


def test_markdown_tables(result):
    rows = markdown_rows(format_markdown(result))
    by_first = {cells[0]: cells for cells in rows}
    assert by_first["files"][1:3] == ["4", "6"]
    assert by_first["Easy"][3] == "0.00 % (0-0)"  # perfect in every resample
    assert by_first["Hard\\|Vocoder"][3].startswith("50.00 % (")
    assert by_first["Hard\\|Vocoder"][4] == "50.00 %"
    assert by_first["Broken"][3] == "n/a"
    assert "1 file(s) could not be scored" in format_markdown(result)


def test_per_system_csv_neutralises_formulas(tmp_path):
    files, segments = scan_tables()
    for table in (files, segments):
        table.loc[table["system"] == "Easy", "system"] = "=HYPERLINK(\"x\")"
    write_evaluation(evaluate(files, segments, threshold=0.5), str(tmp_path))
    with open(tmp_path / "per_system.csv", newline="") as handle:
        systems = [row["system"] for row in csv.DictReader(handle)]
    assert "'=HYPERLINK(\"x\")" in systems

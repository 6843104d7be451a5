"""One run of the real CLI over sample_audio/ with the bundled checkpoint."""

import csv
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from forensics_scan.audio import segment_starts
from forensics_scan.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "sample_audio"


def _labels():
    with open(SAMPLES / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e")
    result = CliRunner().invoke(main, [str(SAMPLES), "--csv", str(out / "files.csv"),
                                       "--segments", str(out / "segments.csv"),
                                       "--json", str(out / "report.json"),
                                       "--report", str(out / "report.html"),
                                       "--no-cache", "--quiet"], catch_exceptions=False)
    return result, out


def test_every_sample_file_is_scored_in_every_report(scan):
    result, out = scan
    audio_files = sorted({row["path"] for row in _labels()})
    with open(out / "files.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(os.path.basename(row["path"]) for row in rows) == audio_files
    assert all(row["status"] == "ok" for row in rows)
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["scored"] == len(audio_files)
    parser = _Collector()
    parser.feed((out / "report.html").read_text())
    page_text = "".join(parser.text)
    assert all(name in page_text for name in audio_files)
    assert parser.tags.count("svg") >= len(audio_files)
    flagged = any(row["verdict"] == "fake" for row in rows)
    assert result.exit_code == (1 if flagged else 0)


def test_segments_cover_each_file_without_padding(scan):
    _, out = scan
    report = json.loads((out / "report.json").read_text())
    for entry in report["files"]:
        samples = round(entry["duration_s"] * 16000)
        assert len(entry["segments"]) == len(segment_starts(samples))
        assert entry["segments"][-1]["end_s"] == pytest.approx(entry["duration_s"], abs=1e-3)
        assert entry["score"] == max(s["score"] for s in entry["segments"])


def test_synthetic_insert_scores_above_the_genuine_parts_of_the_same_file(scan):
    """The bundled model must localise the WORLD insert of the long sample file."""
    _, out = scan
    insert = next(row for row in _labels() if row["path"].startswith("long_")
                  and row["label"] == "fake")
    start, end = float(insert["start_s"]), float(insert["end_s"])
    report = json.loads((out / "report.json").read_text())
    (entry,) = [f for f in report["files"]
                if f["path"].endswith("long_genuine_with_synthetic_insert.flac")]
    segments = entry["segments"]
    inside = [s["score"] for s in segments
              if s["start_s"] >= start - 2.5 and s["end_s"] <= end + 2.5]
    outside = [s["score"] for s in segments if s["end_s"] <= start or s["start_s"] >= end]
    assert inside and outside
    assert max(inside) > max(outside)

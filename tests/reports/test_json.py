import io
import json
import math
import pathlib

import numpy as np

from forensics_scan.reports import write_report
from forensics_scan.reports.json_report import write_json


def strict_load(text):
    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def render(report):
    handle = io.StringIO()
    write_json(report, handle)
    return handle.getvalue()


def test_json_carries_audit_fields(make_report, tmp_path):
    report = make_report()
    target = tmp_path / "report.json"
    write_report("json", report, target)
    data = strict_load(target.read_text(encoding="utf-8"))
    assert data["schema"] == "fscan-report/2"
    assert data["generated_at"] == report.generated_at
    assert data["model"]["sha256"] == report.model["sha256"]
    assert data["fscan_version"] == report.fscan_version
    assert data["summary"] == report.summary()
    assert [f["path"] for f in data["files"]] == [f.path for f in report.files]
    assert len(data["files"][1]["segments"]) == report.files[1].n_segments


def test_json_keys_are_sorted_so_reports_diff_cleanly(make_report):
    text = render(make_report())
    data = strict_load(text)
    assert text == json.dumps(data, sort_keys=True, indent=2) + "\n"


def test_non_finite_numbers_become_null(make_report, make_file):
    result = make_file("nan.wav", [0.1, 0.2], mean_segment_score=math.nan, duration_s=math.inf)
    report = make_report(files=[result], elapsed_s=float("nan"))
    data = strict_load(render(report))
    assert data["elapsed_s"] is None
    assert data["files"][0]["mean_segment_score"] is None
    assert data["files"][0]["duration_s"] is None
    assert data["files"][0]["score"] == 0.2


def test_numpy_scalars_and_paths_in_settings_are_written(make_report):
    settings = {"hop_s": np.float32(2.5), "jobs": np.int64(4), "cache": pathlib.Path("/tmp/c")}
    data = strict_load(render(make_report(settings=settings)))
    assert data["settings"] == {"hop_s": 2.5, "jobs": 4, "cache": "/tmp/c"}


def test_json_to_stdout(make_report, capsys):
    report = make_report()
    write_report("json", report, "-")
    data = strict_load(capsys.readouterr().out)
    assert data["summary"]["files"] == len(report.files)


# The documented schema (docs/json-schema.md). If this test fails, a key was added,
# renamed or removed: update the document, and bump SCHEMA_VERSION unless it was an
# addition.
TOP_KEYS = {"schema", "schema_version", "fscan_version", "generated_at", "command",
            "elapsed_s", "threshold", "settings", "model", "summary", "reliability", "files"}
SUMMARY_KEYS = {"files", "scored", "skipped", "errors", "flagged", "audio_seconds"}
FILE_KEYS = {"path", "status", "error", "verdict", "score", "max_segment_score",
             "mean_segment_score", "n_segments", "fake_segments", "duration_s", "truncated",
             "sample_rate", "channels", "format", "decoder", "size_bytes", "sha256",
             "segments"}
SEGMENT_KEYS = {"index", "start_s", "end_s", "score", "verdict"}
SCAN_SETTINGS_KEYS = {"hop_s", "segment_seconds", "sample_rate", "max_duration_s", "cache",
                      "engine"}
SCAN_MODEL_KEYS = {"path", "sha256", "arch", "threshold", "trained", "training_command",
                   "calibration", "held_out"}


def test_schema_keys_are_pinned_and_documented(make_report):
    data = strict_load(render(make_report()))
    assert data["schema_version"] == 2 and data["schema"] == "fscan-report/2"
    assert set(data) == TOP_KEYS
    assert set(data["summary"]) == SUMMARY_KEYS
    for result in data["files"]:
        assert set(result) == FILE_KEYS
        for segment in result["segments"]:
            assert set(segment) == SEGMENT_KEYS
    document = (pathlib.Path(__file__).parents[2] / "docs" / "json-schema.md").read_text()
    for key in TOP_KEYS | SUMMARY_KEYS | FILE_KEYS | SEGMENT_KEYS | SCAN_SETTINGS_KEYS \
            | SCAN_MODEL_KEYS:
        assert f"`{key}`" in document, key


def test_settings_and_model_keys_of_a_real_scan_are_pinned(tmp_path, tiny_checkpoint,
                                                            speechlike, write_audio):
    from forensics_scan.checkpoint import read_checkpoint_info
    from forensics_scan.scan import ScanOptions, build_report, scan_paths

    path = write_audio(tmp_path / "a.wav", speechlike(1.0))
    options = ScanOptions(jobs=1)
    report = build_report(scan_paths([path], tiny_checkpoint, options),
                          read_checkpoint_info(tiny_checkpoint), options)
    data = strict_load(render(report))
    assert set(data["settings"]) == SCAN_SETTINGS_KEYS
    assert set(data["model"]) == SCAN_MODEL_KEYS

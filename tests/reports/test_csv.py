import csv
import io
import math

import pandas as pd

from forensics_scan.reports import write_report
from forensics_scan.reports.csv_report import (
    FILE_COLUMNS,
    SEGMENT_COLUMNS,
    neutralise,
    write_csv,
    write_segments_csv,
)
from forensics_scan.results import ERROR, OK

FIRST_COLUMNS = "path,status,verdict,score,duration_s,n_segments,max_segment_score,error".split(",")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def rows_of(writer, report):
    handle = io.StringIO(newline="")
    writer(report, handle)
    return list(csv.DictReader(io.StringIO(handle.getvalue(), newline="")))


def test_file_columns_come_in_the_documented_order(make_report, tmp_path):
    target = tmp_path / "report.csv"
    write_report("csv", make_report(), target)
    with open(target, encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert header[: len(FIRST_COLUMNS)] == FIRST_COLUMNS
    assert header == list(FILE_COLUMNS)
    assert len(set(header)) == len(header)


def test_one_row_per_file_with_paths_round_tripping(make_report):
    report = make_report()
    rows = rows_of(write_csv, report)
    assert [row["path"] for row in rows] == [neutralise(f.path) for f in report.files]


def test_formula_cells_are_neutralised_and_others_untouched(make_report, names):
    rows = {row["path"]: row for row in rows_of(write_csv, make_report())}
    assert "'" + names.short in rows
    assert "'" + names.insert in rows
    assert names.genuine in rows  # starts with "<": nothing to neutralise
    assert names.non_latin in rows
    error_row = rows[names.broken]  # comma, quotes and newline survive quoting
    assert error_row["error"] == "'" + names.broken_error
    for row in rows.values():
        for value in row.values():
            assert not value.startswith(FORMULA_STARTS), value


def test_every_formula_prefix_is_neutralised():
    for prefix in FORMULA_STARTS:
        assert neutralise(prefix + "cmd|' /C calc'!A0") == "'" + prefix + "cmd|' /C calc'!A0"
    assert neutralise("plain.wav") == "plain.wav"
    assert neutralise("") == ""


def test_numeric_cells_stay_numeric_and_missing_values_are_empty(make_report):
    report = make_report()
    rows = rows_of(write_csv, report)
    for result, row in zip(report.files, rows):
        if result.status == OK:
            assert float(row["score"]) == round(result.score, 6)
            assert len(row["score"].split(".")[1]) == 6
            assert len(row["duration_s"].split(".")[1]) == 3
            assert int(row["n_segments"]) == result.n_segments
        else:
            assert row["score"] == row["max_segment_score"] == row["mean_segment_score"] == ""
    broken = next(row for row, f in zip(rows, report.files) if f.status == ERROR)
    assert broken["sample_rate"] == broken["channels"] == broken["sha256"] == ""
    assert broken["size_bytes"] == "17"


def test_nan_score_becomes_an_empty_cell(make_report, make_file):
    result = make_file("nan.wav", [0.1, 0.2], mean_segment_score=math.nan)
    (row,) = rows_of(write_csv, make_report(files=[result]))
    assert row["mean_segment_score"] == ""
    assert row["score"] == "0.200000"


def test_pandas_reads_back_rows_paths_and_numbers(make_report, tmp_path):
    report = make_report()
    target = tmp_path / "report.csv"
    write_report("csv", report, target)
    frame = pd.read_csv(target, encoding="utf-8", keep_default_na=False, na_values=[""])
    assert len(frame) == len(report.files)
    assert list(frame["path"]) == [neutralise(f.path) for f in report.files]
    assert frame["score"].dtype.kind == "f"
    assert frame["n_segments"].dtype.kind == "i"
    assert frame["score"].isna().sum() == len(report.failed)
    assert frame["truncated"].dtype == bool


def test_segments_csv_has_one_row_per_window(make_report, names, tmp_path):
    report = make_report()
    target = tmp_path / "segments.csv"
    write_report("segments", report, target)
    frame = pd.read_csv(target, encoding="utf-8")
    assert list(frame.columns) == list(SEGMENT_COLUMNS)
    assert len(frame) == sum(len(f.segments) for f in report.files)
    insert = frame[frame["path"] == "'" + names.insert]
    assert list(insert.index[insert["verdict"] == "fake"] - insert.index[0]) == list(
        names.insert_fake
    )
    assert insert["start_s"].iloc[10] == 50.0


def test_segment_times_have_three_decimals(make_report):
    rows = rows_of(write_segments_csv, make_report())
    assert rows[1]["start_s"] == "5.000" and rows[1]["end_s"] == "10.000"
    assert all(len(row["score"].split(".")[1]) == 6 for row in rows)

import os

import pytest

from forensics_scan import reports
from forensics_scan.reports import write_report


class Boom(RuntimeError):
    pass


def half_then_fail(report, handle):
    handle.write("path,status\npartial")
    raise Boom("writer failed half way")


def test_failed_writer_leaves_old_report_and_no_temp_file(make_report, tmp_path, monkeypatch):
    target = tmp_path / "report.csv"
    target.write_text("old report\n", encoding="utf-8")
    monkeypatch.setitem(reports.WRITERS, "csv", half_then_fail)
    with pytest.raises(Boom):
        write_report("csv", make_report(), target)
    assert target.read_text(encoding="utf-8") == "old report\n"
    assert os.listdir(tmp_path) == ["report.csv"]


def test_failed_writer_creates_no_target(make_report, tmp_path, monkeypatch):
    monkeypatch.setitem(reports.WRITERS, "html", half_then_fail)
    with pytest.raises(Boom):
        write_report("html", make_report(), tmp_path / "report.html")
    assert os.listdir(tmp_path) == []


def test_success_replaces_old_report(make_report, tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old", encoding="utf-8")
    write_report("json", make_report(), str(target))
    assert target.read_text(encoding="utf-8").startswith("{")
    assert os.listdir(tmp_path) == ["report.json"]


def test_unknown_kind_is_refused(make_report, tmp_path):
    with pytest.raises(ValueError, match="unknown report kind"):
        write_report("xlsx", make_report(), tmp_path / "report.xlsx")
    assert os.listdir(tmp_path) == []


def test_writers_table_names_every_kind():
    assert set(reports.WRITERS) == {"csv", "segments", "json", "html", "junit"}

"""The reliability sentence every report carries (results.ScanReport.reliability)."""

import io
import json

from rich.console import Console

from forensics_scan.reports import write_report
from forensics_scan.reports.terminal import print_summary

HELD_OUT = {"data": "eval_public", "command": "fscan evaluate ... --record eval_public",
            "measured_at": "2026-11-28T02:00:00+00:00", "threshold": 0.5, "n_genuine": 130,
            "n_fake": 228, "n_systems": 23, "file_eer": 0.3846, "file_auc": 0.708,
            "segment_eer": 0.375, "false_alarm_rate": 0.0308, "miss_rate": 0.75}
CALIBRATION = {"split": "validation", "n_genuine": 513, "n_fake": 306, "threshold": 0.5,
               "false_alarm_rate": 0.0487, "miss_rate": 0.147}


def _report(make_report, **model):
    base = make_report()
    return make_report(model=dict(base.model, **model))


def test_held_out_figures_are_quoted_with_what_a_pass_does_not_mean(make_report):
    text = _report(make_report, held_out=HELD_OUT, calibration=CALIBRATION).reliability()

    assert "130 genuine and 228 synthetic files from 23 generators" in text
    assert "(eval_public)" in text
    assert "flagged 3.1 % of the genuine files and missed 75.0 % of the synthetic" in text
    assert "file EER 38.5 %" in text
    assert "not shown to be genuine" in text
    assert "validation" not in text  # the held-out record wins over the calibration one


def test_without_a_held_out_record_the_validation_figures_come_with_a_warning(make_report):
    text = _report(make_report, held_out=None, calibration=CALIBRATION).reliability()

    assert text.startswith("This model records no test on generators it never saw.")
    assert "flagged 4.9 % of the genuine files and missed 14.7 %" in text
    assert "expect more misses" in text


def test_a_model_without_figures_says_so(make_report):
    assert "no measured error rates" in make_report().reliability()


def test_another_threshold_voids_the_quoted_rates(make_report):
    report = _report(make_report, held_out=HELD_OUT)
    moved = make_report(model=report.model, threshold=0.9)

    assert "do not apply" not in report.reliability()
    assert "This scan used threshold 0.9 instead" in moved.reliability()


def test_json_html_and_terminal_all_carry_it(make_report, tmp_path):
    report = _report(make_report, held_out=HELD_OUT)
    sentence = report.reliability()
    write_report("json", report, str(tmp_path / "r.json"))
    write_report("html", report, str(tmp_path / "r.html"))
    console = Console(file=io.StringIO(), width=100000, color_system=None)
    print_summary(report, console)

    assert json.loads((tmp_path / "r.json").read_text())["reliability"] == sentence
    assert f'<p class="reliability">{sentence}</p>' in (tmp_path / "r.html").read_text()
    assert sentence in console.file.getvalue()


def test_genuine_only_calibration_quotes_no_miss_rate(make_report):
    calibration = dict(CALIBRATION, n_fake=0, miss_rate=None)
    text = _report(make_report, calibration=calibration).reliability()

    assert "flagged 4.9 % of the genuine files at threshold 0.5" in text
    assert "missed" not in text.split(";")[0]


def test_an_incomplete_record_in_a_checkpoint_is_not_quoted(tiny_checkpoint):
    from dataclasses import replace

    from forensics_scan.checkpoint import read_checkpoint_info
    from forensics_scan.scan import ScanOptions, build_report

    info = read_checkpoint_info(tiny_checkpoint)
    edited = replace(info, metadata=dict(info.metadata, held_out={"data": "eval_public"},
                                         calibration=CALIBRATION))
    report = build_report([], edited, ScanOptions())

    assert report.model["held_out"] is None and report.model["calibration"] == CALIBRATION
    assert report.reliability().startswith("This model records no test")

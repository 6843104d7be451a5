"""Hostile and broken inputs (issue 5): every file accounted for, nothing crashes, and
the reports are safe to open.

The corpus comes from ``hostile_corpus.build_corpus``. The main scan runs inside the
corpus folder with its top-level entries as arguments (what ``fscan -- *`` does), so
file names such as ``=1+1.wav`` start their report cells. All runs use the tiny random
checkpoint (its scores are plumbing, not verdicts about the audio) and hide ffmpeg, so
that what is readable does not depend on the machine: libsndfile alone decides.
"""

import csv
import io
import json
import math
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Dict, List

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from click.testing import CliRunner

from forensics_scan.cli import main
from forensics_scan.discovery import find_audio_files
from forensics_scan.reports.csv_report import FILE_COLUMNS, SEGMENT_COLUMNS
from forensics_scan.reports.terminal import MAX_ROWS, printable
from forensics_scan.scan import ScanOptions, scan_paths
from hostile_corpus import (ERROR, NOT_UTF8, OK, build_corpus, restore_permissions,
                            top_level_arguments, voice)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # issue 5, OWASP "CSV injection"
TIME_FIELDS = ("generated_at", "elapsed_s")
NO_FFMPEG = {"PATH": "/nonexistent-fscan-test-path", "FSCAN_FFMPEG": None}
REPORTS = {"csv": "files.csv", "segments": "segments.csv", "json": "report.json",
           "html": "report.html"}


# --- running fscan and reading what it wrote -------------------------------------------

def run_fscan(args, cwd=None):
    """The real CLI in-process; an exception escaping it fails the test (no traceback)."""
    with pytest.MonkeyPatch.context() as patch:
        if cwd is not None:
            patch.chdir(cwd)
        result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False,
                                    env={"COLUMNS": "200", **NO_FFMPEG})
    assert "Traceback" not in result.output
    return result


def scan_arguments(model, out, *extra):
    """Options for a full scan into ``out``, ready for the paths after "--"."""
    reports = [("--csv", "csv"), ("--segments", "segments"), ("--json", "json"),
               ("--report", "html")]
    options = [value for flag, kind in reports for value in (flag, out / REPORTS[kind])]
    return ["scan", "--model", model, "--jobs", "1", "--no-cache", *options, *extra]


def strict_json(text: str) -> dict:
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


@dataclass
class Outputs:
    """One scan: the CLI result and every report it wrote (into ``folder``), as text."""

    result: object
    texts: Dict[str, str]
    folder: str

    @property
    def report(self) -> dict:
        return strict_json(self.texts["json"])

    def rows(self, kind: str = "csv") -> List[dict]:
        return list(csv.DictReader(io.StringIO(self.texts[kind], newline="")))


def read_outputs(result, out) -> Outputs:
    texts = {}
    for kind, name in REPORTS.items():
        with open(out / name, encoding="utf-8", newline="") as handle:
            texts[kind] = handle.read()
    return Outputs(result, texts, str(out))


def scan_corpus(root, model, out, *extra) -> Outputs:
    """Scan the corpus from inside it, as ``fscan [extra] -- *``, writing every report."""
    args = scan_arguments(model, out, *extra, "--", *top_level_arguments(str(root)))
    return read_outputs(run_fscan(args, cwd=root), out)


class Page(HTMLParser):
    """Tables by section id, every start tag with its attributes, and the scripts."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.tables, self.scripts = [], {}, []
        self.section = None
        self.row = self.cell = self.script = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "section":
            self.section = dict(attrs).get("id")
        elif tag == "tr":
            # a file's expandable detail row (timeline, spectrogram) is not a table row
            self.row = None if "detail" in (dict(attrs).get("class") or "") else []
        elif tag == "td" and self.row is not None:
            self.cell = []
        elif tag == "script":
            self.script = []

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.row.append("".join(self.cell))
            self.cell = None
        elif tag == "tr" and self.row:  # header rows have th cells only
            self.tables.setdefault(self.section, []).append(self.row)
            self.row = None
        elif tag == "script":
            self.scripts.append("".join(self.script))
            self.script = None

    def handle_data(self, data):
        for part in (self.cell, self.script):
            if part is not None:
                part.append(data)


def shown(path: str) -> str:
    """How CSV and HTML show a name: bytes that are not UTF-8 as backslash escapes."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")


def neutralised(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def human_readable(reason: str) -> bool:
    # a sentence, not an exception class name or a repr
    return len(reason) >= 10 and " " in reason and not re.fullmatch(r"\w+(Error|Exception)",
                                                                      reason)


def terminal_rows(output: str):
    """(path, status, reason lines) for each row of the summary table."""
    row = re.compile(r"^ +(?P<path>\S.*?) {2,}(?P<status>ok|skipped|error) {2,}\S")
    rows = []
    for line in output.splitlines():
        match = row.match(line)
        if match:
            rows.append([match["path"], match["status"], []])
        elif rows and line.strip() and line.startswith("    "):
            rows[-1][2].append(line.strip())  # the reason under a skipped or failed path
    return rows


# --- fixtures ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    cases = build_corpus(str(root))
    yield root, cases
    restore_permissions(str(root))


@pytest.fixture(scope="module")
def scan(corpus, tiny_checkpoint, tmp_path_factory):
    """The corpus scanned once with every report, ``--jobs 1 --fail-on error``."""
    root, _ = corpus
    return scan_corpus(root, tiny_checkpoint, tmp_path_factory.mktemp("reports"),
                       "--fail-on", "error")


@pytest.fixture(scope="module")
def cases(corpus):
    return corpus[1]


# --- every file, every report -----------------------------------------------------------

def test_the_corpus_covers_the_issue(cases):
    whats = " ".join(case.what for case in cases)
    for needle in ("zero-byte", "cut mid-sample", "4 GB", "text named .wav", "text named .mp3",
                   "random bytes named .wav", "random bytes named .mp3", "single sample",
                   "zero frames", "digital silence", "DC offset", "clipping", "NaN and",
                   "8000 Hz", "11025 Hz", "96000 Hz", "6 channels", "8-bit unsigned", "24-bit",
                   "64-bit float", "u-law", "FLAC named .wav", "upper-case", "mixed-case",
                   "spaces", "quotes", "comma", "newline", "non-Latin", "HTML markup",
                   "formula (=)", "formula (@)", "formula (+)", "formula (-)", "hidden file",
                   "subcommand", "broken symbolic link", "symbolic link loop"):
        assert needle in whats
    assert len(cases) <= MAX_ROWS, "the terminal table would cut the corpus short"
    assert (os.geteuid() == 0) != any(case.what == "no read permission" for case in cases)


def test_scan_completes_with_the_fail_on_error_exit_code(scan):
    assert scan.result.exit_code == 1  # unreadable files exist, and --fail-on error
    summary = scan.report["summary"]
    assert summary["errors"] > 0 and summary["skipped"] > 0 and summary["scored"] > 0


def test_every_file_is_in_the_json_once_with_its_expected_status_and_a_reason(scan, cases):
    files = scan.report["files"]
    assert Counter(entry["path"] for entry in files) == Counter(case.path for case in cases)
    by_path = {entry["path"]: entry for entry in files}
    wrong = [(case.path, case.expected, by_path[case.path]["status"], by_path[case.path]["error"])
             for case in cases if (
                 by_path[case.path]["status"] != case.expected
                 or case.reason not in by_path[case.path]["error"])]
    assert wrong == []
    reasons = {case.path: case.reason for case in cases}
    for entry in files:
        if entry["status"] == OK:  # a scored file's "error" notes audio it could not decode
            assert entry["verdict"] in ("real", "fake")
            assert bool(entry["error"]) == bool(reasons[entry["path"]]), entry
        else:
            assert human_readable(entry["error"]), entry
            assert entry["score"] is None and entry["verdict"] == ""


def test_a_file_name_that_is_not_utf8_is_still_scored(scan, cases):
    latin1 = [case for case in cases if case.what == NOT_UTF8]
    if not latin1:
        pytest.skip("this file system refuses names that are not UTF-8")
    by_path = {entry["path"]: entry for entry in scan.report["files"]}
    assert [(case.path, by_path[case.path]["status"]) for case in latin1] == [(latin1[0].path, OK)]


def test_scores_are_finite_even_for_nan_and_inf_samples(scan):
    for entry in scan.report["files"]:
        if entry["status"] == OK:
            scores = [entry["score"], entry["max_segment_score"], entry["mean_segment_score"]]
            scores += [segment["score"] for segment in entry["segments"]]
            assert all(isinstance(s, float) and 0 <= s <= 1 for s in scores), entry["path"]
    nan_inf = next(row for row in scan.rows() if row["path"] == "nan_inf.wav")
    assert nan_inf["status"] == OK and is_number(nan_inf["score"])


def test_every_file_is_in_the_csv_once_and_round_trips_through_pandas(scan, cases):
    rows = scan.rows()
    assert tuple(rows[0]) == FILE_COLUMNS
    assert Counter(row["path"] for row in rows) == Counter(
        neutralised(shown(case.path)) for case in cases)
    expected = {neutralised(shown(case.path)): case for case in cases}
    for row in rows:
        case = expected[row["path"]]
        assert row["status"] == case.expected, row
        assert (row["error"] != "") == (row["status"] != OK or bool(case.reason)), row
    for kind in ("csv", "segments"):
        table = pd.read_csv(io.StringIO(scan.texts[kind]), dtype=str, keep_default_na=False)
        parsed = scan.rows(kind)
        assert len(table) == len(parsed) > 0
        assert table["path"].tolist() == [row["path"] for row in parsed]
    assert tuple(scan.rows("segments")[0]) == SEGMENT_COLUMNS


def test_no_csv_cell_is_a_formula(scan):
    for kind in ("csv", "segments"):
        for row in csv.reader(io.StringIO(scan.texts[kind], newline="")):
            for cell in row:
                assert not cell.startswith(FORMULA_STARTS) or is_number(cell), (kind, cell)


def test_every_file_is_in_the_html_once_as_text(scan, cases):
    page = Page(scan.texts["html"])
    files = page.tables["files"]
    assert Counter(row[0] for row in files) == Counter(shown(case.path) for case in cases)
    status = {row[0]: row[1] for row in files}
    assert all(status[shown(case.path)] == case.expected for case in cases)
    failures = {row[0]: row for row in page.tables["failures"]}
    expected_failures = [shown(entry["path"]) for entry in scan.report["files"]
                         if entry["status"] != OK]
    assert sorted(failures) == sorted(expected_failures)
    assert all(human_readable(row[2]) for row in failures.values())


def test_html_holds_no_markup_script_or_url_from_input(scan):
    page = Page(scan.texts["html"])
    page_tags = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3",
                 "p", "section", "dl", "dt", "dd", "code", "span", "details", "summary",
                 "table", "thead", "tbody", "tr", "th", "td", "a", "div", "svg", "rect", "line",
                 "text", "script", "button", "figure", "figcaption", "img", "strong", "br"}
    assert {tag for tag, _ in page.tags} <= page_tags
    assert [tag for tag, _ in page.tags].count("script") == 1 and len(page.scripts) == 1
    assert "alert(1)" not in page.scripts[0]
    for tag, attributes in page.tags:
        for name, value in attributes.items():
            assert not name.startswith("on"), (tag, name)
            assert "://" not in (value or "") and not (value or "").startswith("//"), value
            if name in ("href", "src", "action"):
                spectrogram = tag == "img" and value.startswith("data:image/png;base64,")
                assert value.startswith("#") or spectrogram, (tag, name, value)
    policy = next(attrs["content"] for tag, attrs in page.tags
                  if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in policy


def test_every_file_is_in_the_terminal_table_once_with_a_reason(scan, cases):
    output = scan.result.stdout
    assert "\x1b" not in output and "\r" not in output  # hostile names cannot drive the tty
    rows = terminal_rows(output)
    assert Counter(path for path, _, _ in rows) == Counter(printable(c.path) for c in cases)
    expected = {printable(case.path): case for case in cases}
    for path, status, reason in rows:
        assert status == expected[path].expected, path
        assert bool(reason) == (status != OK or bool(expected[path].reason)), (path, reason)
        if reason:
            assert human_readable(" ".join(reason))


def test_json_to_stdout_is_strict_and_matches_the_file(corpus, tiny_checkpoint, scan,
                                                       tmp_path):
    root, _ = corpus
    result = run_fscan(["scan", "--model", tiny_checkpoint, "--jobs", "1", "--no-cache",
                        "--json", "-", "--fail-on", "never", "--", *top_level_arguments(root)],
                       cwd=root)
    assert result.exit_code == 0
    assert strict_json(result.stdout)["files"] == scan.report["files"]


def test_unscannable_paths_follow_include_exclude_and_are_listed_once(corpus):
    root, _ = corpus
    unscannable = {"broken_link.wav", "named_pipe.wav", "self_loop.wav"}
    everything = find_audio_files([str(root)]).problems
    assert unscannable <= {os.path.basename(path) for path, _ in everything}
    kept = find_audio_files([str(root)], exclude=["*_link.wav", "*_pipe.wav", "self_*"])
    assert not unscannable & {os.path.basename(path) for path, _ in kept.problems}
    named = [str(root / "broken_link.wav")] * 2 + [str(root)]
    assert [path for path, _ in find_audio_files(named).problems].count(named[0]) == 1
    assert find_audio_files(named[:1], exclude=["broken_*"]).problems == ()


# --- determinism and the cache -----------------------------------------------------------

def _without_times(kind: str, text: str):
    if kind == "json":
        report = strict_json(text)
        return {key: value for key, value in report.items() if key not in TIME_FIELDS}
    if kind == "html":
        return re.sub(r"<dt>(Generated \(UTC\)|Scan time)</dt><dd>[^<]*</dd>", "", text)
    return text


def test_a_second_run_writes_identical_reports_apart_from_timestamps(corpus, tiny_checkpoint,
                                                                    scan, tmp_path):
    second = scan_corpus(corpus[0], tiny_checkpoint, tmp_path, "--fail-on", "error")
    assert second.result.exit_code == scan.result.exit_code
    for kind in REPORTS:
        first_text = scan.texts[kind]
        if kind in ("json", "html"):  # the command line names the report folder
            first_text = first_text.replace(scan.folder, str(tmp_path))
        assert _without_times(kind, second.texts[kind]) == _without_times(kind, first_text)


def test_two_jobs_give_the_same_scores_as_one(corpus, tiny_checkpoint, scan, tmp_path):
    parallel = scan_corpus(corpus[0], tiny_checkpoint, tmp_path, "--fail-on", "error",
                           "--jobs", "2")
    assert parallel.report["files"] == scan.report["files"]
    assert parallel.texts["csv"] == scan.texts["csv"]
    assert parallel.texts["segments"] == scan.texts["segments"]


def test_the_feature_cache_gives_the_same_results_cold_and_warm(corpus, tiny_checkpoint, scan,
                                                                tmp_path):
    cache = ["--cache-dir", tmp_path / "cache"]
    args = [arg for arg in scan_arguments(tiny_checkpoint, tmp_path) if arg != "--no-cache"]
    for run in ("cold", "warm"):
        result = run_fscan([*args, *cache, "--fail-on", "error", "--",
                            *top_level_arguments(corpus[0])], cwd=corpus[0])
        assert read_outputs(result, tmp_path).report["files"] == scan.report["files"], run


# --- exit codes -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """'mixed': one good file and one zero-byte file; 'clean': the good file alone."""
    root = tmp_path_factory.mktemp("small")
    for folder in ("mixed", "clean"):
        (root / folder).mkdir()
        sf.write(root / folder / "good.wav", voice(seed=1), 16000)
    (root / "mixed" / "empty.wav").write_bytes(b"")
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("no audio here")
    return root


@pytest.mark.parametrize("folder, fail_on, threshold, code", [
    ("mixed", "fake", 1.0, 0), ("mixed", "fake", 0.0, 1), ("mixed", "error", 1.0, 1),
    ("mixed", "any", 1.0, 1), ("mixed", "never", 0.0, 0), ("clean", "error", 0.0, 0),
    ("clean", "any", 1.0, 0), ("clean", "any", 0.0, 1),
])
def test_exit_code_follows_fail_on(small, tiny_checkpoint, folder, fail_on, threshold, code):
    # the tiny model scores about 0.55: threshold 0 flags every file, 1 none
    result = run_fscan(["scan", small / folder, "--model", tiny_checkpoint, "--jobs", "1",
                        "--no-cache", "--quiet", "--threshold", threshold, "--fail-on", fail_on])
    assert result.exit_code == code


@pytest.mark.parametrize("paths, message", [
    (["notes"], "no audio files found"), (["missing"], "no such file or directory")])
def test_no_audio_or_a_missing_path_exits_2(small, tiny_checkpoint, paths, message):
    result = run_fscan(["scan", *[small / path for path in paths], "--model", tiny_checkpoint,
                        "--no-cache", "--quiet"])
    assert result.exit_code == 2 and message in result.stderr


def test_a_folder_named_like_a_subcommand_is_scanned_when_written_as_a_path(corpus,
                                                                             tiny_checkpoint):
    root, _ = corpus
    for args in (["./train"], ["scan", "train"]):
        result = run_fscan([*args, "--model", tiny_checkpoint, "--jobs", "1", "--no-cache",
                            "--json", "-", "--quiet", "--fail-on", "never"], cwd=root)
        assert result.exit_code == 0
        files = strict_json(result.stdout)["files"]
        assert [(os.path.basename(f["path"]), f["status"]) for f in files] == [
            ("in_train.wav", OK)]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission")
def test_an_unreadable_file_named_as_an_argument_is_an_error_row(small, tiny_checkpoint,
                                                                 tmp_path):
    locked = tmp_path / "locked.wav"
    locked.write_bytes((small / "clean" / "good.wav").read_bytes())
    locked.chmod(0)
    try:
        result = run_fscan(["scan", locked, small / "clean", "--model", tiny_checkpoint,
                            "--jobs", "1", "--no-cache", "--json", "-", "--quiet",
                            "--fail-on", "never"])
    finally:
        locked.chmod(0o644)
    assert result.exit_code == 0
    files = strict_json(result.stdout)["files"]
    assert sorted((os.path.basename(f["path"]), f["status"]) for f in files) == [
        ("good.wav", OK), ("locked.wav", ERROR)]


# --- unusable checkpoints ---------------------------------------------------------------

def _damaged_checkpoints(good: bytes, folder) -> dict:
    """name -> path of checkpoints that must be refused with exit code 2."""
    import torch
    from safetensors import safe_open
    from safetensors.numpy import save_file

    class Payload:  # unpickling this creates a file: loading must never do it
        def __reduce__(self):
            return (open, (str(folder / "PWNED"), "w"))

    with safe_open(str(folder / "good.safetensors"), "np") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    fscan = json.loads(metadata["fscan"])
    files = {
        "truncated": good[: len(good) // 2],
        "header_damaged": b"\xff" * 16 + good[16:],
        "zero_bytes": b"",
        "text": b"this is not a model\n",
        "pickle": pickle.dumps({"state_dict": Payload()}),
    }
    paths = {}
    for name, content in files.items():
        paths[name] = folder / f"{name}.safetensors"
        paths[name].write_bytes(content)
    paths["torch_save"] = folder / "model.pt"
    torch.save({"weights": torch.zeros(3), "payload": Payload()}, paths["torch_save"])
    paths["foreign_safetensors"] = folder / "foreign.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(paths["foreign_safetensors"]))
    paths["wrong_tensors"] = folder / "wrong_tensors.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(paths["wrong_tensors"]), metadata=metadata)
    other = dict(fscan, arch=dict(fscan["arch"], stem=8))
    paths["wrong_architecture"] = folder / "wrong_arch.safetensors"
    save_file(tensors, str(paths["wrong_architecture"]), metadata={"fscan": json.dumps(other)})
    other = dict(fscan, frontend=dict(fscan["frontend"], n_mels=64))
    paths["wrong_front_end"] = folder / "wrong_frontend.safetensors"
    save_file(tensors, str(paths["wrong_front_end"]), metadata={"fscan": json.dumps(other)})
    paths["missing"] = folder / "missing.safetensors"
    return paths


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoint, tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    with open(tiny_checkpoint, "rb") as handle:
        good = handle.read()
    (folder / "good.safetensors").write_bytes(good)
    return folder, good, _damaged_checkpoints(good, folder)


CHECKPOINT_CASES = ["truncated", "header_damaged", "zero_bytes", "text", "pickle", "torch_save",
                    "foreign_safetensors", "wrong_tensors", "wrong_architecture",
                    "wrong_front_end", "missing"]


def _scan_with_model(small, model, tmp_path):
    return run_fscan(["scan", small / "clean", "--model", model, "--jobs", "1", "--no-cache",
                      "--csv", tmp_path / "files.csv"])


@pytest.mark.parametrize("name", CHECKPOINT_CASES)
def test_an_unusable_checkpoint_exits_2_with_a_clear_message(small, checkpoints, tmp_path,
                                                              name):
    folder, _, paths = checkpoints
    result = _scan_with_model(small, paths[name], tmp_path)
    assert result.exit_code == 2
    assert result.stderr.startswith("fscan: error: ") and str(paths[name]) in result.stderr
    assert not os.path.exists(folder / "PWNED")  # no code from the file ran
    assert not os.path.exists(tmp_path / "files.csv")


def test_a_checkpoint_with_damaged_weights_exits_2(small, checkpoints, tmp_path):
    folder, good, _ = checkpoints
    damaged = folder / "nan_weights.safetensors"
    damaged.write_bytes(good[:-400] + b"\xff" * 400)  # 0xffffffff is a float32 NaN
    result = _scan_with_model(small, damaged, tmp_path)
    assert result.exit_code == 2 and "fscan: error: " in result.stderr


def test_a_checkpoint_with_a_nan_threshold_exits_2(small, checkpoints, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    folder, _, _ = checkpoints
    with safe_open(str(folder / "good.safetensors"), "np") as handle:
        fscan = dict(json.loads(handle.metadata()["fscan"]), threshold="nan")
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    damaged = folder / "nan_threshold.safetensors"
    save_file(tensors, str(damaged), metadata={"fscan": json.dumps(fscan)})
    result = _scan_with_model(small, damaged, tmp_path)
    assert result.exit_code == 2 and "threshold" in result.stderr


# --- resource guard and files that change under the scan ---------------------------------

def test_max_duration_caps_a_long_file_and_records_it(tiny_checkpoint, tmp_path):
    sf.write(tmp_path / "long.wav", voice(12.0, seed=8), 16000)
    sf.write(tmp_path / "short.wav", voice(2.0, seed=9), 16000)
    out = tmp_path / "out"
    out.mkdir()
    result = run_fscan(scan_arguments(tiny_checkpoint, out, "--max-duration", "6", "--quiet",
                                      "--fail-on", "never", "--", tmp_path / "long.wav",
                                      tmp_path / "short.wav"))
    outputs = read_outputs(result, out)
    assert result.exit_code == 0
    rows = {os.path.basename(row["path"]): row for row in outputs.rows()}
    assert (rows["long.wav"]["truncated"], rows["long.wav"]["duration_s"]) == ("true", "6.000")
    assert rows["short.wav"]["truncated"] == "false"
    files = {os.path.basename(f["path"]): f for f in outputs.report["files"]}
    assert files["long.wav"]["truncated"] is True and files["short.wav"]["truncated"] is False
    assert [s["end_s"] for s in files["long.wav"]["segments"]] == [5.0, 6.0]
    assert outputs.report["settings"]["max_duration_s"] == 6.0
    assert "truncated by --max-duration" in outputs.texts["html"]


def test_files_that_vanish_or_change_during_the_scan_become_error_rows(tiny_checkpoint,
                                                                       tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", NO_FFMPEG["PATH"])
    monkeypatch.delenv("FSCAN_FFMPEG", raising=False)
    paths = []
    for index in range(12):  # more than the reader may run ahead of the scoring
        paths.append(str(tmp_path / f"{index:02d}.wav"))
        sf.write(paths[-1], voice(0.5, seed=index), 16000)

    def progress(done, total, path):
        if done == 1:  # the first file is finished; the last two are not read yet
            os.remove(paths[-2])
            with open(paths[-1], "wb") as handle:
                handle.write(b"overwritten with text while the scan ran")

    results = scan_paths(paths, tiny_checkpoint, ScanOptions(jobs=1), progress)
    assert [r.path for r in results] == paths
    assert [r.status for r in results] == [OK] * 10 + [ERROR, ERROR]
    assert all(human_readable(r.error) for r in results[-2:])
    assert "No such file" in results[-2].error


def test_an_undecodable_mp3_is_not_reported_as_missing(scan):
    reasons = {f["path"]: f["error"] for f in scan.report["files"]}
    assert "does not exist" not in reasons["text.mp3"] + reasons["random.mp3"]


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux /proc")
def test_sigterm_during_a_scan_leaves_no_report_and_says_so(tiny_checkpoint, tmp_path):
    long_file = tmp_path / "long.wav"
    noise = np.random.default_rng(0).standard_normal(16000 * 60 * 20).astype(np.float32) * 0.1
    sf.write(long_file, noise, 16000, subtype="PCM_16")  # 20 minutes: seconds of work
    out = tmp_path / "out.csv"
    child = subprocess.Popen([sys.executable, "-m", "forensics_scan", str(long_file),
                              "--model", tiny_checkpoint, "--csv", str(out), "--no-cache",
                              "--quiet", "--jobs", "1"], stderr=subprocess.PIPE, text=True)
    # the handler is installed before scanning starts, and torch is only loaded by the
    # scan itself: once libtorch is mapped, the scan is under way
    deadline = time.time() + 60
    while time.time() < deadline and child.poll() is None:
        with open(f"/proc/{child.pid}/maps") as maps:
            if "libtorch" in maps.read():
                break
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, stderr
    assert "interrupted; no report was written" in stderr
    assert "Traceback" not in stderr
    assert not out.exists() and not list(tmp_path.glob(".out.csv.*"))

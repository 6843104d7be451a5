"""CSV reports for spreadsheets: one row per file, or one row per segment.

Cells are written for people who open the file in Excel or LibreOffice: numbers are
plain decimals, a missing value is an empty cell, and any text cell that a spreadsheet
would evaluate as a formula (file names are attacker-controlled) is prefixed with "'".
"""

import csv
import math
from typing import Iterable, Optional, TextIO

from forensics_scan.results import FileResult, ScanReport

# The first eight are what an investigator reads; the rest are for provenance.
SUMMARY_COLUMNS = (
    "path", "status", "verdict", "score", "duration_s", "n_segments", "max_segment_score", "error"
)
DETAIL_COLUMNS = (
    "mean_segment_score", "fake_segments", "sample_rate", "channels", "format", "decoder",
    "size_bytes", "sha256", "truncated",
)
FILE_COLUMNS = SUMMARY_COLUMNS + DETAIL_COLUMNS
SEGMENT_COLUMNS = ("path", "segment", "start_s", "end_s", "score", "verdict")

SCORE_DECIMALS = 6
TIME_DECIMALS = 3

# A cell starting with one of these is a formula (or DDE payload) to Excel, LibreOffice
# and Google Sheets; OWASP "CSV Injection" lists the same set.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Return ``text`` so that no spreadsheet evaluates it: a leading "'" before formula starts.

    Only for text cells; numeric cells must stay numeric.
    """
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def _number(value: Optional[float], decimals: int) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return f"{value:.{decimals}f}"


def _integer(value: Optional[int]) -> str:
    return "" if value is None else str(int(value))


def _file_row(result: FileResult) -> tuple:
    return (
        neutralise(result.path),
        neutralise(result.status),
        neutralise(result.verdict),
        _number(result.score, SCORE_DECIMALS),
        _number(result.duration_s, TIME_DECIMALS),
        _integer(result.n_segments),
        _number(result.max_segment_score, SCORE_DECIMALS),
        neutralise(result.error),
        _number(result.mean_segment_score, SCORE_DECIMALS),
        _integer(result.fake_segments),
        _integer(result.sample_rate),
        _integer(result.channels),
        neutralise(result.format),
        neutralise(result.decoder),
        _integer(result.size_bytes),
        neutralise(result.sha256),
        "true" if result.truncated else "false",
    )


def _write(handle: TextIO, header: Iterable[str], rows: Iterable[tuple]) -> None:
    # QUOTE_MINIMAL quotes the cells holding a comma, a quote or a character of the line
    # terminator, so the terminator must be "\r\n" (RFC 4180): with "\n" alone a file
    # name holding a carriage return is written bare and splits its row in two.
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)


def write_csv(report: ScanReport, handle: TextIO) -> None:
    """Write one row per input file, in report order, with columns ``FILE_COLUMNS``.

    Scores have 6 decimals, durations 3 (seconds); skipped and unreadable files have
    empty score cells and their reason in ``error``.
    """
    _write(handle, FILE_COLUMNS, (_file_row(result) for result in report.files))


def write_segments_csv(report: ScanReport, handle: TextIO) -> None:
    """Write one row per scored segment (5 s window) with columns ``SEGMENT_COLUMNS``.

    ``start_s``/``end_s`` are seconds from the start of the file, 3 decimals.
    """
    rows = (
        (
            neutralise(result.path),
            _integer(segment.index),
            _number(segment.start_s, TIME_DECIMALS),
            _number(segment.end_s, TIME_DECIMALS),
            _number(segment.score, SCORE_DECIMALS),
            neutralise(segment.verdict),
        )
        for result in report.files
        for segment in result.segments
    )
    _write(handle, SEGMENT_COLUMNS, rows)

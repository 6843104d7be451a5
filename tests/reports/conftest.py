"""A ScanReport with every kind of outcome and file names chosen to break naive writers."""

from types import SimpleNamespace
from typing import Iterable, List, Sequence

import pytest

from forensics_scan.results import (
    ERROR,
    FAKE,
    OK,
    REAL,
    SKIPPED,
    FileResult,
    ScanReport,
    SegmentScore,
)

THRESHOLD = 0.5
SEGMENT_S = 5.0

GENUINE = "<img src=x onerror=alert(1)>.wav"
INSERT = "@SUM(1).wav"  # genuine recording with a synthetic passage in the middle
BROKEN = 'a, "quoted"\nname.wav'
SHORT = "=1+1.wav"
NON_LATIN = "証拠/録音_Ωμέγα_запись.wav"
MARKUP = "[bold red]loud[/bold red] :skull:.wav"
HOSTILE_NAMES = (GENUINE, INSERT, BROKEN, SHORT, NON_LATIN, MARKUP)
BROKEN_ERROR = '=HYPERLINK("http://evil.example/x") <b>bad</b> <script>alert(2)</script>'


def segments(scores: Sequence[float], hop_s: float = SEGMENT_S) -> tuple:
    """Segment records for consecutive windows starting every ``hop_s`` seconds."""
    return tuple(
        SegmentScore(
            index=i,
            start_s=i * hop_s,
            end_s=i * hop_s + SEGMENT_S,
            score=score,
            verdict=FAKE if score >= THRESHOLD else REAL,
        )
        for i, score in enumerate(scores)
    )


def scored(path: str, scores: Sequence[float], **fields) -> FileResult:
    """A FileResult with status OK whose aggregates agree with ``scores``."""
    windows = segments(scores)
    top = max(scores)
    values = dict(
        path=path,
        status=OK,
        verdict=FAKE if top >= THRESHOLD else REAL,
        score=top,
        duration_s=windows[-1].end_s,
        n_segments=len(windows),
        max_segment_score=top,
        mean_segment_score=sum(scores) / len(scores),
        fake_segments=sum(s.verdict == FAKE for s in windows),
        sample_rate=44100,
        channels=2,
        format="WAV",
        decoder="soundfile",
        size_bytes=1234567,
        sha256="ab" * 32,
        segments=windows,
    )
    values.update(fields)
    return FileResult(**values)


# 24 windows (2 minutes) of genuine speech with windows 10-13 synthetic.
INSERT_FAKE = range(10, 14)
INSERT_SCORES = [0.02, 0.05, 0.03, 0.04, 0.01, 0.06, 0.02, 0.03, 0.05, 0.04]
INSERT_SCORES += [0.97, 0.99, 0.93, 0.88]
INSERT_SCORES += [0.04, 0.02, 0.03, 0.05, 0.01, 0.02, 0.03, 0.04, 0.02, 0.03]


def default_files() -> List[FileResult]:
    return [
        scored(GENUINE, [0.01, 0.03, 0.02, 0.05, 0.02, 0.04]),
        scored(INSERT, INSERT_SCORES),
        FileResult(path=BROKEN, status=ERROR, error=BROKEN_ERROR, size_bytes=17),
        FileResult(path=SHORT, status=SKIPPED, error="shorter than 0.1 s", duration_s=0.04),
        scored(NON_LATIN, [0.10, 0.20, 0.15], truncated=True),
        scored(MARKUP, [0.30, 0.45]),
    ]


@pytest.fixture
def make_report():
    """Factory: ``make_report()`` for the standard report, or pass ``files=`` and fields."""

    def build(files: Iterable[FileResult] = None, **fields) -> ScanReport:
        values = dict(
            files=tuple(default_files() if files is None else files),
            threshold=THRESHOLD,
            settings={"hop_s": SEGMENT_S, "jobs": 2, "include": ["*.wav"], "max_duration_s": None},
            model={
                "path": "models/lcnn.safetensors",
                "sha256": "0123456789abcdef" * 4,
                "provenance": "ASVspoof 2019 LA train",
            },
            fscan_version="0.1.0",
            generated_at="2024-05-01T12:00:00+00:00",
            command="fscan scan evidence/ --html report.html",
            elapsed_s=12.5,
        )
        values.update(fields)
        return ScanReport(**values)

    return build


@pytest.fixture
def make_file():
    """Factory ``make_file(path, scores, **fields)``: a scored FileResult, 5 s windows, hop 5 s."""
    return scored


@pytest.fixture
def names():
    """The file names and error text used by ``make_report()``, by role."""
    return SimpleNamespace(
        genuine=GENUINE,
        insert=INSERT,
        insert_fake=INSERT_FAKE,
        broken=BROKEN,
        broken_error=BROKEN_ERROR,
        short=SHORT,
        non_latin=NON_LATIN,
        markup=MARKUP,
        hostile=HOSTILE_NAMES,
    )

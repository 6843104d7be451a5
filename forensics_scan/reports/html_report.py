"""Self-contained HTML report: summary, file table with per-file timelines, failures.

The summary comes first; then one table row per file, sortable and filterable, each
of which expands to the timeline of its window scores against the threshold (flagged
files start expanded) and, for the highest-scoring flagged files, a small spectrogram
of the most suspicious window (``spectrogram.py``).

The page loads nothing from the network (a Content-Security-Policy says so to the
browser too: only its own style and script, and images from ``data:`` URIs) and every
value taken from the scan is escaped by Jinja2's autoescaping. Timelines are inline
SVG whose geometry is computed here, so the template only places numbers.
"""

import base64
import functools
import hashlib
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, TextIO, Tuple

import jinja2

from forensics_scan.reports.spectrogram import MAX_SPECTROGRAMS, spectrograms_for
from forensics_scan.results import FAKE, OK, FileResult, ScanReport, SegmentScore

TEMPLATE = "report.html.j2"
MAX_BARS = 600  # per timeline; keeps the page small for multi-hour recordings

# Timeline geometry, in SVG user units (the SVG scales to the page width).
SVG_WIDTH, SVG_HEIGHT = 800.0, 150.0
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 34.0, 776.0, 8.0, 124.0
MIN_BAR_WIDTH = 1.0  # so a single synthetic window in a long recording stays visible
MAX_X_TICKS = 8
TICK_STEPS_S = (
    0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
    43200, 86400,
)


@dataclass(frozen=True)
class Bar:
    """One drawn bar: the maximum score over one or more consecutive windows."""

    start_s: float
    end_s: float
    score: float
    fake: bool
    windows: int
    judged: bool = True  # False when none of its windows held speech (no score)


@dataclass(frozen=True)
class Timeline:
    """What the template draws for one file; every coordinate is in SVG user units."""

    bars: Tuple[dict, ...]  # x, y, width, height, fake, label
    threshold_y: float
    x_ticks: Tuple[Tuple[float, str], ...]
    y_ticks: Tuple[Tuple[float, str], ...]
    windows_per_bar: int  # above 1 when the file had more than MAX_BARS windows


def bin_segments(segments: Sequence[SegmentScore], max_bars: int = MAX_BARS) -> List[Bar]:
    """Merge segment scores into at most ``max_bars`` bars along time.

    Each window is drawn from its start up to where the next window starts (its end
    for the last one), so overlapping windows (hop shorter than the window) form a step
    plot rather than stacked bars. When there are more than ``max_bars`` windows, each
    bar covers ``ceil(n / max_bars)`` consecutive windows and shows their **maximum**
    score, and is marked fake if any of them is: downsampling can hide a genuine window
    but never a synthetic one.

    Parameters
    ----------
    segments : sequence of SegmentScore
        Scores of one file, in any order.
    max_bars : int
        Upper bound on the number of bars returned.

    Returns
    -------
    list of Bar
        Sorted by time; empty when there are no segments.
    """
    ordered = sorted(segments, key=lambda segment: (segment.start_s, segment.index))
    spans = []
    for position, segment in enumerate(ordered):
        end_s = segment.end_s
        if position + 1 < len(ordered):
            end_s = min(end_s, ordered[position + 1].start_s)
        spans.append((segment.start_s, max(end_s, segment.start_s), segment))

    per_bar = max(1, math.ceil(len(spans) / max_bars))
    bars = []
    for first in range(0, len(spans), per_bar):
        chunk = spans[first : first + per_bar]
        scores = [_finite_or_zero(segment.score) for _, _, segment in chunk]
        bars.append(
            Bar(
                start_s=chunk[0][0],
                end_s=chunk[-1][1],
                score=max(scores),
                fake=any(segment.verdict == FAKE for _, _, segment in chunk),
                windows=len(chunk),
                judged=any(segment.score is not None for _, _, segment in chunk),
            )
        )
    return bars


def _finite_or_zero(value: Optional[float]) -> float:
    return value if value is not None and math.isfinite(value) else 0.0


def format_clock(seconds: float) -> str:
    """'m:ss' under an hour, else 'h:mm:ss' (rounded to whole seconds)."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def format_duration(seconds: Optional[float]) -> str:
    """'4.2 s' under a minute, else a clock ('m:ss', 'h:mm:ss'); an em dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "\u2014"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return format_clock(seconds)


def format_score(score: Optional[float]) -> str:
    """Three decimals, or an em dash when there is no score."""
    if score is None or not math.isfinite(score):
        return "\u2014"
    return f"{score:.3f}"


def sort_key(value: Optional[float]) -> float:
    """Numeric key for the click-to-sort script; missing values sort below zero."""
    if value is None or not math.isfinite(value):
        return -1
    return value


def _tick_label(seconds: float, span_s: float) -> str:
    if span_s < 60:
        return f"{seconds:g} s"
    return format_clock(seconds)


def _x_ticks(span_s: float) -> List[float]:
    step = next((s for s in TICK_STEPS_S if span_s / s <= MAX_X_TICKS), TICK_STEPS_S[-1])
    count = int(span_s // step)
    return [step * i for i in range(count + 1)]


def build_timeline(result: FileResult, threshold: float, max_bars: int = MAX_BARS) -> Timeline:
    """Lay out the segment-score timeline of one scored file.

    x spans 0 to the file's duration (or the last window's end, if later) in seconds;
    y is the score, 0 at the bottom and 1 at the top; the threshold is a dashed line.
    """
    bars = bin_segments(result.segments, max_bars)
    span_s = max([result.duration_s or 0.0] + [bar.end_s for bar in bars])
    span_s = span_s if span_s > 0 else 1.0
    plot_width = PLOT_RIGHT - PLOT_LEFT
    plot_height = PLOT_BOTTOM - PLOT_TOP

    def x_of(seconds: float) -> float:
        return PLOT_LEFT + plot_width * min(max(seconds / span_s, 0.0), 1.0)

    def y_of(score: float) -> float:
        return PLOT_BOTTOM - plot_height * min(max(score, 0.0), 1.0)

    drawn = []
    for bar in bars:
        left = x_of(bar.start_s)
        width = max(x_of(bar.end_s) - left, MIN_BAR_WIDTH)
        # a window without speech has no score: a faint full-height band says so
        top = y_of(bar.score if bar.judged else 1.0)
        windows = f" ({bar.windows} windows, max)" if bar.windows > 1 else ""
        value = f"{bar.score:.3f}" if bar.judged else "no speech, not judged"
        drawn.append(
            {
                "x": round(min(left, PLOT_RIGHT - width), 2),
                "y": round(top, 2),
                "width": round(width, 2),
                "height": round(PLOT_BOTTOM - top, 2),
                "fake": bar.fake,
                "judged": bar.judged,
                "label": f"{bar.start_s:.1f}\u2013{bar.end_s:.1f} s: {value}{windows}",
            }
        )
    return Timeline(
        bars=tuple(drawn),
        threshold_y=round(y_of(threshold), 2),
        x_ticks=tuple((round(x_of(t), 2), _tick_label(t, span_s)) for t in _x_ticks(span_s)),
        y_ticks=tuple((round(y_of(v), 2), f"{v:g}") for v in (0.0, 0.5, 1.0)),
        windows_per_bar=max((bar.windows for bar in bars), default=1),
    )


def _csp_source(text: str) -> str:
    """CSP hash source for an inline <script> or <style> whose content is exactly ``text``."""
    digest = hashlib.sha256(str(text).encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        # PackageLoader reads through importlib, so this works from an installed wheel or zip.
        loader=jinja2.PackageLoader("forensics_scan.reports", "templates"),
        # Explicitly on: select_autoescape() would not match the ".j2" suffix.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        duration=format_duration, score=format_score, sort_key=sort_key, csp_source=_csp_source
    )
    return environment


def _sorted_items(mapping: dict) -> List[Tuple[str, object]]:
    return sorted(((str(key), value) for key, value in mapping.items()), key=lambda item: item[0])


def table_order(files: Sequence[FileResult]) -> List[int]:
    """Positions of ``files`` as the table first shows them: flagged files, then skipped
    and unreadable ones, then the rest, each group in report (path) order."""

    def group(position: int) -> int:
        result = files[position]
        if result.status == OK:
            return 0 if result.verdict == FAKE else 2
        return 1

    return sorted(range(len(files)), key=lambda position: (group(position), position))


def render_html(report: ScanReport, max_spectrograms: int = MAX_SPECTROGRAMS) -> str:
    """Render ``report`` as one self-contained HTML page.

    Flagged files get a spectrogram of their most suspicious window, re-read from the
    file, for the ``max_spectrograms`` highest-scoring ones.
    """
    timelines = {
        position: build_timeline(result, report.threshold)
        for position, result in enumerate(report.files)
        if result.status == OK
    }
    spectrograms = spectrograms_for(report, max_spectrograms) if report.flagged else {}
    sha256 = str(report.model.get("sha256", "") or "")
    return _environment().get_template(TEMPLATE).render(
        report=report,
        summary=report.summary(),
        files=report.files,
        order=table_order(report.files),
        failed=report.failed,
        timelines=timelines,
        spectrograms=spectrograms,
        spectrograms_left_out=len(report.flagged) - len(spectrograms),
        max_spectrograms=max_spectrograms,
        model_sha256=sha256,
        model_path=str(report.model.get("path", "") or ""),
        settings=_sorted_items(report.settings),
        model_items=_sorted_items(report.model),
        max_bars=MAX_BARS,
        svg={
            "width": SVG_WIDTH,
            "height": SVG_HEIGHT,
            "left": PLOT_LEFT,
            "right": PLOT_RIGHT,
            "top": PLOT_TOP,
            "bottom": PLOT_BOTTOM,
        },
        FAKE=FAKE,
        OK=OK,
    )


def write_html(report: ScanReport, handle: TextIO) -> None:
    """Write ``report`` as a self-contained HTML page (see ``render_html``)."""
    handle.write(render_html(report))

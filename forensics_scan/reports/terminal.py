"""Terminal output: a progress bar while scanning and a summary table afterwards.

The only module that uses rich. File names are shown as plain text (never parsed as
rich markup) and with control characters made visible, because a hostile name such as
``"\\x1b[2J.wav"`` would otherwise drive the investigator's terminal.
"""

import math
import os
from typing import List, Optional

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from forensics_scan.results import FAKE, OK, FileResult, ScanReport

MAX_ROWS = 60


def printable(text: str) -> str:
    """``text`` with newlines, escapes and other non-printable characters as backslash escapes."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


class ProgressBar:
    """Progress display for a scan, used as ``with ProgressBar() as progress: scan(..., progress)``.

    Calling the instance with ``(done, total, path)`` moves the bar. It draws on stderr
    with a bar, a done/total count, elapsed time and an ETA, and draws nothing when
    ``disable`` is set or the console is not a terminal (CI logs stay clean).

    Parameters
    ----------
    disable : bool
        Draw nothing (``--quiet``).
    console : rich.console.Console, optional
        Where to draw; a console on stderr by default.
    """

    def __init__(self, disable: bool = False, console: Optional[Console] = None):
        self.console = console if console is not None else Console(stderr=True)
        self.enabled = not disable and self.console.is_terminal
        self._progress = Progress(
            TextColumn("[progress.description]Scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            # markup=False: the current file name is shown as typed, brackets and all.
            TextColumn("{task.fields[name]}", markup=False, style="dim"),
            console=self.console,
            disable=not self.enabled,
            # stdout may be the JSON report ("--json -"); never mix progress into it.
            redirect_stdout=False,
        )
        self._task: Optional[TaskID] = None

    def __enter__(self) -> "ProgressBar":
        self._progress.start()
        self._task = self._progress.add_task("scan", total=None, name="")
        return self

    def __exit__(self, *exc_info) -> None:
        self._progress.stop()

    def __call__(self, done: int, total: int, path: str) -> None:
        if self._task is None:
            return
        self._progress.update(
            self._task, completed=done, total=total, name=printable(os.path.basename(path))
        )


def _ordered(files) -> List[FileResult]:
    flagged = sorted(
        (f for f in files if f.status == OK and f.verdict == FAKE),
        key=lambda f: -(f.score or 0.0),
    )
    failed = [f for f in files if f.status != OK]
    rest = [f for f in files if f.status == OK and f.verdict != FAKE]
    return flagged + failed + rest


def _number(value: Optional[float], pattern: str) -> str:
    return "-" if value is None or not math.isfinite(value) else pattern.format(value)


def verdict_line(report: ScanReport) -> str:
    """One sentence for the end of a scan, e.g. '2 of 10 scored files flagged as synthetic ...'."""
    summary = report.summary()
    parts = [
        f"{summary['flagged']} of {summary['scored']} scored files flagged as synthetic speech"
        f" (threshold {report.threshold:g})"
    ]
    if summary["skipped"]:
        parts.append(f"{summary['skipped']} skipped")
    if summary["errors"]:
        parts.append(f"{summary['errors']} unreadable")
    return "; ".join(parts) + f"; {summary['audio_seconds']:.1f} s of audio."


LOG_WIDTH = 160  # columns of the summary when it goes to a file or a CI log


def summary_console(stderr: bool = False) -> Console:
    """Console for the summary table: the terminal's width, or LOG_WIDTH columns when
    the output is a file or a CI log (where rich would assume 80 and wrap every path).
    ``COLUMNS`` in the environment still wins."""
    console = Console(stderr=stderr)
    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return Console(stderr=stderr, width=LOG_WIDTH)


def print_summary(report: ScanReport, console: Console, max_rows: int = MAX_ROWS) -> None:
    """Print a table of files (flagged first, then failures, then the rest) and a verdict line.

    A skipped or unreadable file has its reason on a second line under its path.

    Parameters
    ----------
    report : ScanReport
        The finished scan.
    console : rich.console.Console
        Where to print.
    max_rows : int
        Rows shown at most; the remainder is counted in a "... N more" line.
    """
    table = Table(title="fscan results", title_justify="left", box=box.SIMPLE_HEAD)
    # Only Path may wrap, so it gets whatever width the short columns leave.
    table.add_column("Path", overflow="fold")
    for header in ("Status", "Verdict"):
        table.add_column(header, no_wrap=True)
    for header in ("Score", "Secs", "Segs", "Fake"):
        table.add_column(header, no_wrap=True, justify="right")

    ordered = _ordered(report.files)
    for result in ordered[:max_rows]:
        # Text, not str: a str cell would be parsed as rich markup.
        path = Text(printable(result.path))
        if result.error:
            path.append("\n  " + printable(result.error), style="dim")
        flagged = result.status == OK and result.verdict == FAKE
        table.add_row(
            path,
            result.status,
            result.verdict or "-",
            _number(result.score, "{:.3f}"),
            _number(result.duration_s, "{:.1f}"),
            str(result.n_segments),
            str(result.fake_segments),
            style="bold red" if flagged else ("yellow" if result.status != OK else None),
        )
    console.print(table)
    if len(ordered) > max_rows:
        console.print(Text(f"... {len(ordered) - max_rows} more (see the CSV or HTML report)"))
    style = "bold red" if report.flagged else "bold green"
    console.print(Text(verdict_line(report), style=style))
    console.print(Text(report.reliability()))


class StreamView:
    """Live terminal view for ``fscan stream --format rich``: the latest windows as a table.

    Each row is one window (time span, score, a bar against the threshold, verdict,
    latency); the caption counts windows and flagged windows so far. Used as
    ``with StreamView(threshold) as view: view.add(window_dict)``.
    """

    BAR_WIDTH = 24

    def __init__(self, threshold: float, console: Optional[Console] = None, rows: int = 12):
        from collections import deque

        self.threshold = threshold
        self.console = console if console is not None else Console()
        self.rows = deque(maxlen=rows)
        self.windows = 0
        self.flagged = 0
        self._live = None

    def __enter__(self) -> "StreamView":
        from rich.live import Live

        self._live = Live(self._render(), console=self.console, auto_refresh=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._live.__exit__(*exc_info)
        if not self.console.is_terminal:
            self.console.line()  # a file or pipe gets no cursor move to end the last line

    def add(self, window: dict) -> None:
        """Show one scored window (a ``stream.LiveWindow.as_dict`` dictionary)."""
        self.rows.append(window)
        self.windows += 1
        self.flagged += window["verdict"] == FAKE
        self._live.update(self._render(), refresh=True)

    def _bar(self, score: Optional[float]) -> Text:
        if score is None:  # no speech in the window
            return Text("·" * self.BAR_WIDTH, style="dim")
        filled = int(round(max(0.0, min(score, 1.0)) * self.BAR_WIDTH))
        mark = int(round(self.threshold * self.BAR_WIDTH))
        cells = ["█" if i < filled else ("│" if i == mark else "·")
                 for i in range(self.BAR_WIDTH)]
        return Text("".join(cells), style="bold red" if score >= self.threshold else "green")

    def _render(self) -> Table:
        table = Table(box=box.SIMPLE, title="fscan stream",
                      caption=f"{self.windows} windows, {self.flagged} flagged "
                              f"(threshold {self.threshold:.4g})")
        for column, justify in (("window", "left"), ("score", "right"), ("", "left"),
                                ("verdict", "left"), ("latency", "right")):
            table.add_column(column, justify=justify)
        for window in self.rows:
            fake = window["verdict"] == FAKE
            table.add_row(f"{_clock(window['start_s'])}–{_clock(window['end_s'])}",
                          _number(window["score"], "{:.3f}"), self._bar(window["score"]),
                          Text(window["verdict"], style="bold red" if fake else ""),
                          f"{window['latency_ms']:.1f} ms")
        return table


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"

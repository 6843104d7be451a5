"""Report writers: one ``ScanReport`` in, one file out.

Each writer has the signature ``writer(report, handle)`` and writes text to an open
handle; ``write_report`` owns the file so that a report is either complete or absent.
"""

import os
import secrets
import sys
from typing import Callable, Dict, TextIO, Union

from forensics_scan.reports.csv_report import write_csv, write_segments_csv
from forensics_scan.reports.html_report import write_html
from forensics_scan.reports.json_report import write_json
from forensics_scan.reports.junit_report import write_junit
from forensics_scan.results import ScanReport

Writer = Callable[[ScanReport, TextIO], None]

WRITERS: Dict[str, Writer] = {
    "csv": write_csv,
    "segments": write_segments_csv,
    "json": write_json,
    "html": write_html,
    "junit": write_junit,
}

STDOUT = "-"


def write_report(kind: str, report: ScanReport, path: Union[str, "os.PathLike[str]"]) -> None:
    """Write ``report`` as ``kind`` to ``path`` atomically, or to stdout when ``path`` is "-".

    The report is written to a temporary file in the target's directory, flushed and
    fsynced, then renamed over the target. If anything fails the temporary file is
    removed and an existing target is left as it was, so a crashed or interrupted scan
    never leaves a half-written report that looks complete.

    Parameters
    ----------
    kind : str
        A key of ``WRITERS``: "csv", "segments", "json", "html" or "junit".
    report : ScanReport
        What to write.
    path : str or os.PathLike
        Target file, or "-" for standard output.

    Raises
    ------
    ValueError
        If ``kind`` is not a known report kind.
    OSError
        If the target directory cannot be written.
    """
    try:
        writer = WRITERS[kind]
    except KeyError:
        known = ", ".join(sorted(WRITERS))
        raise ValueError(f"unknown report kind {kind!r}; expected one of {known}") from None

    path = os.fspath(path)
    if path == STDOUT:
        writer(report, sys.stdout)
        sys.stdout.flush()
        return

    directory, name = os.path.split(os.path.abspath(path))
    temp_path = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
    # os.open with mode 0o666 lets the umask decide permissions, as for any new file;
    # tempfile.mkstemp would make every report private (0o600).
    descriptor = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        # newline="" so the csv module's "\r\n" terminator is written as is on every platform.
        # backslashreplace: a file name that is not valid UTF-8 reaches Python with lone
        # surrogates; it is written as "\udce9", as the terminal and the JSON show it,
        # instead of aborting the report.
        with open(descriptor, "w", encoding="utf-8", errors="backslashreplace",
                  newline="") as handle:
            writer(report, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_path, path)
    except BaseException:
        # BaseException too: Ctrl-C during a long HTML render must not leave debris.
        try:
            os.unlink(temp_path)
        except FileNotFoundError:
            pass
        raise

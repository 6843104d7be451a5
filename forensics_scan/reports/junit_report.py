"""JUnit XML report: one test case per input file, for CI test-report views.

GitLab, Jenkins and GitHub test-report actions read JUnit XML natively, so a scan run
in CI shows up as a test suite: a scored genuine file is a passed test, a flagged file
a **failure**, an unreadable file an **error**, and a file with nothing to judge (too
short, digital silence) a **skipped** test. The counts on ``<testsuites>`` and
``<testsuite>`` agree with the test cases.

GitLab shows a test case's ``classname`` as its suite and ignores the ``message``
attribute of a failure, so the evidence (score, threshold, flagged windows) is also
written as the failure's text.

File names are attacker-controlled: characters XML 1.0 cannot carry (control
characters, lone surrogates from names that are not UTF-8) are written as Python
escapes (``\\x07``, ``\\udce9``), so the document always parses.
"""

import re
import xml.etree.ElementTree as ET
from typing import Optional, TextIO

from forensics_scan.results import ERROR, FAKE, OK, SKIPPED, FileResult, ScanReport

SUITE_NAME = "fscan"
CLASS_NAME = "fscan.scan"
MAX_LISTED_WINDOWS = 20  # flagged windows listed in a failure's text

# Everything outside XML 1.0's Char production.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """Return ``text`` with every character XML 1.0 forbids written as a Python escape."""
    return _NOT_XML.sub(_escape, str(text))


def _escape(match: "re.Match[str]") -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _counts(report: ScanReport) -> dict:
    summary = report.summary()
    return {"tests": str(summary["files"]), "failures": str(summary["flagged"]),
            "errors": str(summary["errors"]), "skipped": str(summary["skipped"])}


def _flagged_windows(result: FileResult, threshold: float) -> str:
    windows = [s for s in result.segments if s.verdict == FAKE]
    lines = [f"{result.path}: synthetic speech in {len(windows)} of {result.n_segments} "
             f"windows (file score {result.score:.3f} >= threshold {threshold:.4g})"]
    lines += [f"  {s.start_s:.1f}-{s.end_s:.1f} s  score {s.score:.3f}"
              for s in windows[:MAX_LISTED_WINDOWS]]
    if len(windows) > MAX_LISTED_WINDOWS:
        lines.append(f"  ... and {len(windows) - MAX_LISTED_WINDOWS} more")
    return "\n".join(lines)


def _test_case(parent: ET.Element, result: FileResult, threshold: float) -> None:
    case = ET.SubElement(parent, "testcase", classname=CLASS_NAME, name=xml_safe(result.path),
                         file=xml_safe(result.path))
    if result.status == ERROR:
        error = ET.SubElement(case, "error", type="unreadable", message=xml_safe(result.error))
        error.text = xml_safe(f"{result.path}: {result.error}")
    elif result.status == SKIPPED:
        ET.SubElement(case, "skipped", message=xml_safe(result.error))
    elif result.status == OK and result.verdict == FAKE:
        failure = ET.SubElement(case, "failure", type="synthetic-speech",
                                message=f"score {result.score:.3f} >= {threshold:.4g}")
        failure.text = xml_safe(_flagged_windows(result, threshold))
    if result.status == OK:
        ET.SubElement(case, "system-out").text = xml_safe(
            f"verdict {result.verdict}, score {result.score:.3f}, "
            f"{result.fake_segments} of {result.n_segments} windows flagged, "
            f"{result.duration_s or 0:.1f} s, sha256 {result.sha256}")


def _properties(parent: ET.Element, report: ScanReport) -> None:
    properties = ET.SubElement(parent, "properties")
    values = {"fscan_version": report.fscan_version, "command": report.command,
              "threshold": f"{report.threshold:g}", "generated_at": report.generated_at,
              "model_sha256": report.model.get("sha256", ""),
              "model_path": report.model.get("path", ""),
              "reliability": report.reliability()}
    for name, value in values.items():
        ET.SubElement(properties, "property", name=name, value=xml_safe(value or ""))


def _seconds(value: Optional[float]) -> Optional[str]:
    return None if value is None or value != value else f"{value:.3f}"


def write_junit(report: ScanReport, handle: TextIO) -> None:
    """Write ``report`` as JUnit XML: ``<testsuites>`` holding one ``<testsuite>``.

    Each file is a ``<testcase classname="fscan.scan" name=PATH>``; flagged files carry
    ``<failure>``, unreadable ones ``<error>``, skipped ones ``<skipped>``. Scan
    metadata (fscan version, model sha256, threshold, command, and the sentence on how
    far to trust the verdicts) are suite properties.
    """
    counts = _counts(report)
    root = ET.Element("testsuites", name=SUITE_NAME, **counts)
    suite = ET.SubElement(root, "testsuite", name=SUITE_NAME, **counts,
                          timestamp=report.generated_at)
    elapsed = _seconds(report.elapsed_s)
    if elapsed is not None:
        root.set("time", elapsed)
        suite.set("time", elapsed)
    _properties(suite, report)
    for result in report.files:
        _test_case(suite, result, report.threshold)
    ET.indent(root)
    handle.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    handle.write(ET.tostring(root, encoding="unicode"))
    handle.write("\n")

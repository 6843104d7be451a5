import io
import xml.etree.ElementTree as ET

from forensics_scan.reports import write_report
from forensics_scan.reports.junit_report import write_junit, xml_safe
from forensics_scan.results import ERROR, FAKE, FileResult


def render(report):
    handle = io.StringIO()
    write_junit(report, handle)
    return handle.getvalue()


def cases_by_name(root):
    return {case.get("name"): case for case in root.iter("testcase")}


def test_one_test_case_per_file_and_counts_match(make_report):
    report = make_report()
    root = ET.fromstring(render(report))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [f.path for f in report.files]
    for element in (root, suite):
        assert int(element.get("tests")) == len(cases)
        assert int(element.get("failures")) == sum(c.find("failure") is not None for c in cases)
        assert int(element.get("errors")) == sum(c.find("error") is not None for c in cases)
        assert int(element.get("skipped")) == sum(c.find("skipped") is not None for c in cases)
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("1", "1", "1")


def test_flagged_is_failure_unreadable_is_error_short_is_skipped(make_report, names):
    report = make_report()
    cases = cases_by_name(ET.fromstring(render(report)))
    failure = cases[names.insert].find("failure")
    assert failure is not None and failure.get("type") == "synthetic-speech"
    assert "4 of 24 windows" in failure.text and "50.0-55.0 s" in failure.text
    error = cases[names.broken].find("error")
    assert error is not None and error.get("message") == names.broken_error
    assert cases[names.short].find("skipped") is not None
    genuine = cases[names.genuine]
    assert [child.tag for child in genuine] == ["system-out"]
    assert "verdict real" in genuine.find("system-out").text


def test_suite_properties_carry_provenance(make_report):
    report = make_report()
    suite = ET.fromstring(render(report)).find("testsuite")
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["model_sha256"] == report.model["sha256"]
    assert properties["fscan_version"] == report.fscan_version
    assert properties["command"] == report.command
    assert float(properties["threshold"]) == report.threshold
    assert properties["reliability"] == report.reliability()
    assert suite.get("timestamp") == report.generated_at


def test_control_characters_and_undecodable_names_still_parse(make_report, make_file,
                                                               tmp_path):
    bell = "ring\x07\x1b[31m.wav"
    undecodable = "caf\udce9.wav"  # how Python sees a Latin-1 name on a UTF-8 system
    files = [make_file(bell, [0.9]), make_file(undecodable, [0.1]),
             FileResult(path="x.wav", status=ERROR, error="bad\x00byte")]
    target = tmp_path / "junit.xml"
    write_report("junit", make_report(files=files), target)
    root = ET.parse(target).getroot()
    names = [case.get("name") for case in root.iter("testcase")]
    assert names == ["ring\\x07\\x1b[31m.wav", "caf\\udce9.wav", "x.wav"]
    assert root.find(".//error").get("message") == "bad\\x00byte"


def test_xml_safe_keeps_ordinary_text():
    text = "証拠/録音 Ωμέγα\ttab\nnewline <b>&amp;</b>"
    assert xml_safe(text) == text


def test_long_list_of_flagged_windows_is_capped(make_report, make_file):
    result = make_file("all-fake.wav", [0.9] * 100)
    failure = ET.fromstring(render(make_report(files=[result]))).find(".//failure")
    assert result.verdict == FAKE
    assert "... and 80 more" in failure.text

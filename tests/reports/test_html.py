import base64
import hashlib
import io
import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from forensics_scan.reports import write_report
from forensics_scan.reports.html_report import (
    MAX_BARS,
    PLOT_BOTTOM,
    PLOT_LEFT,
    PLOT_RIGHT,
    PLOT_TOP,
    bin_segments,
    render_html,
    write_html,
)
from forensics_scan.results import OK

VOID = set("area base br col embed hr img input link meta source track wbr".split())


class Page(HTMLParser):
    """Elements with their attributes, the text inside each, and a parent link."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements = []
        self.stack = []

    def handle_starttag(self, tag, attrs):
        parent = self.stack[-1] if self.stack else None
        element = {"tag": tag, "attrs": dict(attrs), "text": [], "children": [], "parent": parent}
        if parent is not None:
            parent["children"].append(element)
        self.elements.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for element in self.stack:
            element["text"].append(data)

    def find(self, tag, cls=None):
        return [e for e in self.elements if e["tag"] == tag and (cls is None or cls in classes(e))]

    def text(self):
        return "".join(self.elements[0]["text"])


def text_of(element):
    return "".join(element["text"])


def classes(element):
    return (element["attrs"].get("class") or "").split()


@pytest.fixture
def page(make_report):
    return parse(make_report())


def parse(report):
    handle = io.StringIO()
    write_html(report, handle)
    parser = Page()
    parser.feed(handle.getvalue())
    parser.close()
    return parser


def test_hostile_names_and_errors_appear_as_text(page, names):
    text = page.text()
    for name in names.hostile:
        assert name in text
    assert names.broken_error in text


def test_no_markup_derived_from_input(page):
    scripts = page.find("script")
    assert len(scripts) == 1 and "alert" not in text_of(scripts[0])
    for tag in ("img", "iframe", "object", "embed", "link", "form", "b", "base"):
        assert page.find(tag) == [], tag
    for element in page.elements:
        for attribute in element["attrs"]:
            assert not attribute.startswith("on"), (element["tag"], attribute)


def test_nothing_is_loaded_from_the_network(page):
    for element in page.elements:
        for attribute, value in element["attrs"].items():
            if attribute in ("href", "src", "xlink:href", "action", "data", "srcset", "poster"):
                inline_image = element["tag"] == "img" and attribute == "src" and value.startswith(
                    "data:image/png;base64,")
                assert value.startswith("#") or inline_image, (element["tag"], attribute, value)
            assert "http://" not in (value or "") and "https://" not in (value or ""), value
    (style,) = page.find("style")
    assert "url(" not in text_of(style) and "@import" not in text_of(style)


def test_content_security_policy_allows_exactly_the_page_own_style_and_script(page):
    (policy,) = [
        meta
        for meta in page.find("meta")
        if meta["attrs"].get("http-equiv", "").lower() == "content-security-policy"
    ]
    parts = [part.strip() for part in policy["attrs"]["content"].split(";")]
    directives = dict(part.split(" ", 1) for part in parts if part)
    assert directives["default-src"] == "'none'"
    for tag, directive in (("style", "style-src"), ("script", "script-src")):
        (element,) = page.find(tag)
        digest = hashlib.sha256(text_of(element).encode("utf-8")).digest()
        assert directives[directive] == "'sha256-" + base64.b64encode(digest).decode() + "'"


def test_summary_shows_counts_model_and_provenance(page, make_report):
    report = make_report()
    summary = page.find("section")[0]
    facts = {}
    for dt in [e for e in page.elements if e["tag"] == "dt" and e["parent"]["parent"] is summary]:
        siblings = dt["parent"]["children"]
        facts[text_of(dt)] = text_of(siblings[siblings.index(dt) + 1])
    assert facts["Files"] == str(len(report.files))
    assert facts["Flagged"] == "1"
    assert facts["Skipped / errors"] == "1 / 1"
    assert report.model["sha256"][:12] in facts["Model"]
    assert report.model["path"] in facts["Model"]
    assert facts["fscan version"] == report.fscan_version
    assert facts["Generated (UTC)"] == report.generated_at
    assert facts["Command"] == report.command
    assert facts["Threshold"] == str(report.threshold)


def file_bodies(page):
    (table,) = page.find("table", "files")
    return [child for child in table["children"] if child["tag"] == "tbody"]


def test_file_table_has_a_body_per_file_flagged_first_then_failures(page, make_report, names):
    report = make_report()
    bodies = file_bodies(page)
    paths = [text_of(body["children"][0]["children"][0]) for body in bodies]
    assert sorted(paths) == sorted(f.path for f in report.files)
    assert paths[0] == names.insert and set(paths[1:3]) == {names.broken, names.short}
    assert [classes(body) for body in bodies][:3] == [["flagged"], ["failed"], ["failed"]]
    for body in bodies:
        rows = [child for child in body["children"] if child["tag"] == "tr"]
        scored = "failed" not in classes(body)
        assert len(rows) == (2 if scored else 1)  # the file row, and its expandable detail
        toggles = [e for e in page.elements if e["tag"] == "button" and "toggle" in classes(e)
                   and e["parent"]["parent"] is rows[0]]
        assert len(toggles) == (1 if scored else 0)
        if scored:
            assert toggles[0]["attrs"]["aria-controls"] == rows[1]["attrs"]["id"]
            assert len(page_svgs_in(rows[1])) == 1


def page_svgs_in(element):
    found, stack = [], [element]
    while stack:
        node = stack.pop()
        if node["tag"] == "svg":
            found.append(node)
        stack.extend(node["children"])
    return found


def test_filter_buttons_count_flagged_and_failed_files(page):
    buttons = {e["attrs"]["data-filter"]: text_of(e) for e in page.find("button")
               if "data-filter" in e["attrs"]}
    assert buttons == {"all": "All (6)", "flagged": "Flagged (1)",
                       "failed": "Skipped / errors (2)"}


def test_flagged_file_gets_a_spectrogram_of_its_most_suspicious_window(
        make_report, make_file, tmp_path, speechlike, write_audio):
    path = write_audio(tmp_path / "flagged.wav", speechlike(12.0, seed=9))
    size = (tmp_path / "flagged.wav").stat().st_size
    flagged = make_file(path, [0.2, 0.9], size_bytes=size, duration_s=12.0)
    flagged = replace(flagged, segments=(flagged.segments[0],
                                         replace(flagged.segments[1], end_s=10.0)))
    genuine = make_file(path + ".copy", [0.1], size_bytes=size)
    page = parse(make_report(files=[flagged, genuine]))
    (image,) = page.find("img")
    data = base64.b64decode(image["attrs"]["src"].split(",", 1)[1])
    assert data.startswith(b"\x89PNG") and len(data) < 60_000
    (caption,) = page.find("figcaption")
    assert "5.0–10.0 s, score 0.900" in text_of(caption)


def test_spectrograms_are_capped_and_the_cap_is_stated(make_report, make_file, tmp_path,
                                                       speechlike, write_audio):
    files = []
    for index, score in enumerate((0.7, 0.95, 0.8)):
        path = write_audio(tmp_path / f"f{index}.wav", speechlike(5.0, seed=index))
        size = (tmp_path / f"f{index}.wav").stat().st_size
        files.append(make_file(path, [score], size_bytes=size))
    parser = Page()
    parser.feed(render_html(make_report(files=files), max_spectrograms=1))
    assert len(parser.find("img")) == 1
    (caption,) = parser.find("figcaption")
    assert "score 0.950" in text_of(caption)  # the highest-scoring flagged file
    assert "at most 1 files: 2 flagged files have none" in " ".join(parser.text().split())


def test_missing_or_changed_audio_gets_a_note_not_a_picture(make_report, make_file, tmp_path,
                                                            speechlike, write_audio):
    path = write_audio(tmp_path / "changed.wav", speechlike(5.0))
    changed = make_file(path, [0.9], size_bytes=1)
    missing = make_file(str(tmp_path / "gone.wav"), [0.9])
    page = parse(make_report(files=[changed, missing]))
    assert page.find("img") == []
    captions = " ".join(text_of(c) for c in page.find("figcaption"))
    assert "changed since the scan" in captions and "cannot read the file again" in captions


def test_one_timeline_per_scored_file_with_threshold_line(page, make_report):
    report = make_report()
    svgs = page.find("svg", "timeline")
    assert len(svgs) == sum(f.status == OK for f in report.files)
    expected_y = PLOT_BOTTOM - (PLOT_BOTTOM - PLOT_TOP) * report.threshold
    for svg in svgs:
        (line,) = [c for c in svg["children"] if c["tag"] == "line" and "threshold" in classes(c)]
        assert float(line["attrs"]["y1"]) == pytest.approx(expected_y)
        assert float(line["attrs"]["y2"]) == pytest.approx(expected_y)
        assert line["attrs"]["stroke-dasharray"]
        labels = [text_of(c) for c in svg["children"] if c["tag"] == "text"]
        assert any(re.fullmatch(r"\d+:\d\d|\d+(\.\d+)? s", label) for label in labels)


def bars(svg):
    return [c for c in svg["children"] if c["tag"] == "rect" and "bar" in classes(c)]


def test_synthetic_insert_is_drawn_in_the_middle_in_warning_colour(page, names):
    (svg,) = [s for s in page.find("svg", "timeline") if names.insert in text_of(s)]
    drawn = bars(svg)
    assert len(drawn) == 24
    fake = [i for i, bar in enumerate(drawn) if "fake" in classes(bar)]
    assert fake == list(names.insert_fake)
    xs = [float(bar["attrs"]["x"]) for bar in drawn]
    assert xs == sorted(xs)
    tallest = min(drawn, key=lambda bar: float(bar["attrs"]["y"]))
    assert drawn.index(tallest) in names.insert_fake


def test_flagged_file_timeline_comes_first(page, names):
    first = page.find("svg", "timeline")[0]
    assert names.insert in text_of(first)


def test_failures_section_lists_reasons(page, names):
    failures = [s for s in page.find("section") if s["attrs"].get("id") == "failures"][0]
    text = text_of(failures)
    assert names.broken in text and names.broken_error in text
    assert names.short in text and "shorter than 0.1 s" in text


def test_long_recording_is_downsampled_without_hiding_a_synthetic_window(make_report, make_file):
    scores = [0.05] * 5000
    scores[3217] = 0.95
    report = make_report(files=[make_file("long.wav", scores)])
    page = parse(report)
    (svg,) = page.find("svg", "timeline")
    assert "highest of 9 consecutive windows" in page.text()
    drawn = bars(svg)
    assert len(drawn) <= MAX_BARS
    fake = [bar for bar in drawn if "fake" in classes(bar)]
    assert len(fake) == 1
    assert float(fake[0]["attrs"]["width"]) >= 1.0
    position = (float(fake[0]["attrs"]["x"]) - PLOT_LEFT) / (PLOT_RIGHT - PLOT_LEFT)
    assert position == pytest.approx(3217 / 5000, abs=0.01)


def test_binning_keeps_the_maximum_and_covers_the_recording(make_file):
    result = make_file("x.wav", [0.1, 0.9, 0.2, 0.3, 0.4])
    merged = bin_segments(result.segments, max_bars=2)
    assert [bar.score for bar in merged] == [0.9, 0.4]
    assert [bar.fake for bar in merged] == [True, False]
    assert merged[0].start_s == 0.0 and merged[-1].end_s == 25.0


def test_overlapping_windows_become_steps(make_file):
    result = make_file("x.wav", [0.1, 0.2, 0.3])
    hop_s = 2.5
    overlapping = [
        replace(s, start_s=s.index * hop_s, end_s=s.index * hop_s + 5.0) for s in result.segments
    ]
    merged = bin_segments(overlapping)
    assert [(bar.start_s, bar.end_s) for bar in merged] == [(0.0, 2.5), (2.5, 5.0), (5.0, 10.0)]


def test_written_file_is_utf8_and_complete(make_report, names, tmp_path):
    target = tmp_path / "report.html"
    write_report("html", make_report(), target)
    html = target.read_text(encoding="utf-8")
    assert html.rstrip().endswith("</html>")
    assert names.non_latin in html


def test_empty_scan_still_renders_a_complete_page(make_report):
    page = parse(make_report(files=[]))
    assert page.find("svg") == []
    assert "No file was scored." in page.text()
    assert len(page.find("script")) == 1

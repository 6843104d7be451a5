"""The sample report in a real browser: headless Chromium renders it, runs its script,
fetches nothing from the network, and takes the screenshot that README shows.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped with a reason without it.
``pytest tests/reports/test_html_browser.py --update-screenshot`` also writes
``docs/report.png``.
"""

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "report.png"
WINDOW = "1280,2000"
TIMEOUT_S = 120
MAX_SCREENSHOT_BYTES = 300_000
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


pytestmark = pytest.mark.skipif(
    chromium_path() is None,
    reason="headless Chromium not installed (apt-get install chromium; .ci/run does)")


def chromium(page, tmp_path, *args):
    """Run headless Chromium on ``page`` (a file path) with a fresh profile; its stdout."""
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    command = [chromium_path(), *FLAGS, f"--user-data-dir={profile}", *map(str, args),
               Path(page).resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory):
    """The HTML report of sample_audio/ with the bundled model, and its JSON twin."""
    out = tmp_path_factory.mktemp("browser")
    subprocess.run([sys.executable, "-m", "forensics_scan", "sample_audio", "--report",
                    str(out / "report.html"), "--json", str(out / "report.json"), "--no-cache",
                    "--quiet", "--fail-on", "never"], cwd=ROOT, check=True, timeout=300)
    return out / "report.html", json.loads((out / "report.json").read_text())


class Dom(HTMLParser):
    """Start tags with their attributes, in document order."""

    def __init__(self, html):
        super().__init__()
        self.tags = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def find(self, tag, cls=None):
        return [attrs for name, attrs in self.tags
                if name == tag and (cls is None or cls in (attrs.get("class") or "").split())]


def test_report_renders_table_and_timelines_after_its_script_ran(sample_report, tmp_path):
    page, data = sample_report
    dom = Dom(chromium(page, tmp_path, "--dump-dom", "--virtual-time-budget=5000"))
    (html,) = dom.find("html")
    assert html.get("data-ready") == "true"  # the script ran: its CSP hash matched
    files, flagged = data["files"], [f for f in data["files"] if f["verdict"] == "fake"]
    bodies = [attrs for name, attrs in dom.tags if name == "tbody" and "data-position" in attrs]
    assert len(bodies) == len(files)
    assert len(dom.find("svg", "timeline")) == data["summary"]["scored"]
    details = dom.find("tr", "detail")
    open_details = [attrs for attrs in details if "hidden" not in attrs]
    assert len(open_details) == len(flagged)  # flagged files expanded, the others folded
    assert len(dom.find("rect", "fake")) >= len(flagged)
    assert len(dom.find("img")) == min(len(flagged), 20)
    (controls,) = [attrs for name, attrs in dom.tags if attrs.get("id") == "table-controls"]
    assert "hidden" not in controls


def page_requests(net_log_path):
    """URLs that a page asked for: Chromium's net log marks requests from a file:// page
    with the initiator "null" (the browser's own requests have "not an origin")."""
    log = json.loads(Path(net_log_path).read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [event["params"]["url"] for event in log["events"]
            if event["type"] == start_job and event.get("params", {}).get("initiator") == "null"]


def test_report_fetches_nothing_from_the_network(sample_report, tmp_path):
    page, _ = sample_report
    canary = tmp_path / "canary.html"
    canary.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/canary.png">')
    chromium(canary, tmp_path, "--dump-dom", f"--log-net-log={tmp_path / 'canary.json'}")
    assert page_requests(tmp_path / "canary.json") == ["http://127.0.0.1:9/canary.png"]

    chromium(page, tmp_path, "--dump-dom", "--virtual-time-budget=5000",
             f"--log-net-log={tmp_path / 'report.json'}")
    assert page_requests(tmp_path / "report.json") == []


def test_screenshot_of_the_sample_report(sample_report, tmp_path, request):
    page, _ = sample_report
    target = tmp_path / "report.png"
    chromium(page, tmp_path, f"--screenshot={target}", f"--window-size={WINDOW}",
             "--virtual-time-budget=5000")
    from PIL import Image

    with Image.open(target) as image:
        assert image.size == tuple(int(v) for v in WINDOW.split(","))
        assert len(image.convert("RGB").getcolors(1 << 24)) > 50  # not a blank page
        if request.config.getoption("--update-screenshot"):
            # a 128-colour palette keeps the README picture small and still crisp
            image.convert("RGB").quantize(colors=128).save(SCREENSHOT, optimize=True)
            assert SCREENSHOT.stat().st_size < MAX_SCREENSHOT_BYTES

import io

from rich.console import Console

from forensics_scan.reports.terminal import ProgressBar, print_summary, printable
from forensics_scan.results import ERROR, FileResult


def recorded(report, **kwargs):
    console = Console(record=True, width=120, file=io.StringIO(), color_system=None)
    print_summary(report, console, **kwargs)
    return console.export_text()


def test_summary_renders_hostile_names_literally(make_report, names):
    text = recorded(make_report())
    assert names.markup in text  # rich markup in a file name is not interpreted
    assert names.genuine in text
    assert names.non_latin in text
    assert printable(names.broken) in text
    assert 'a, "quoted"\\nname.wav' in text


def test_terminal_control_sequences_in_names_are_made_visible(make_report):
    nasty = FileResult(path="\x1b[2J\x1b]0;owned\x07clear.wav", status=ERROR, error="bad\x1b[31m")
    console = Console(width=120, file=io.StringIO(), color_system=None)
    print_summary(make_report(files=[nasty]), console)
    output = console.file.getvalue()
    assert "\x1b" not in output and "\x07" not in output
    assert "\\x1b[2J" in output


def test_flagged_first_then_failures_then_the_rest(make_report, names):
    text = recorded(make_report())
    expected = [names.insert, 'a, "quoted"', names.short, names.genuine]
    positions = [text.index(name) for name in expected]
    assert positions == sorted(positions)


def test_long_listings_are_cut_with_a_count(make_report, make_file):
    files = [make_file(f"file{i:03d}.wav", [0.1]) for i in range(60)]
    text = recorded(make_report(files=files), max_rows=50)
    assert "file049.wav" in text and "file050.wav" not in text
    assert "... 10 more" in text


def test_verdict_line_counts_outcomes(make_report):
    lines = recorded(make_report()).strip().splitlines()
    last = next(line for line in lines if line.startswith("1 of 4 scored files flagged"))
    assert last.startswith("1 of 4 scored files flagged as synthetic speech (threshold 0.5)")
    assert "1 skipped" in last and "1 unreadable" in last


def test_progress_bar_draws_on_a_terminal_and_shows_names_literally():
    console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system=None)
    with ProgressBar(console=console) as progress:
        progress(0, 2, "")
        progress(1, 2, "evidence/[bold]x.wav")
    output = console.file.getvalue()
    assert "1/2" in output
    assert "[bold]x.wav" in output


def test_progress_bar_is_silent_when_disabled_or_not_a_terminal():
    terminal = Console(file=io.StringIO(), force_terminal=True)
    pipe = Console(file=io.StringIO(), force_terminal=False)
    for console, disable in ((terminal, True), (pipe, False)):
        with ProgressBar(disable=disable, console=console) as progress:
            progress(1, 1, "a.wav")
        assert console.file.getvalue() == ""


def test_summary_in_a_ci_log_does_not_wrap_long_paths(make_report, make_file, monkeypatch):
    from forensics_scan.reports import terminal

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr("sys.stdout", io.StringIO())  # not a terminal, as in a CI job
    console = terminal.summary_console()
    assert console.width == terminal.LOG_WIDTH
    path = "recordings/" + "/".join(f"folder{i}" for i in range(8)) + "/call.wav"
    console.file = io.StringIO()
    print_summary(make_report(files=[make_file(path, [0.2])]), console)
    assert path in console.file.getvalue()  # on one line, searchable with grep

    monkeypatch.setenv("COLUMNS", "100")
    assert terminal.summary_console().width == 100


def test_stream_view_shows_windows_and_ends_its_last_line():
    from forensics_scan.reports.terminal import StreamView

    console = Console(file=io.StringIO(), width=100, color_system=None)
    with StreamView(threshold=0.5, console=console) as view:
        view.add({"index": 0, "start_s": 0.0, "end_s": 5.0, "score": 0.91, "verdict": "fake",
                  "latency_ms": 7.5})
        view.add({"index": 1, "start_s": 5.0, "end_s": 10.0, "score": None,
                  "verdict": "no_speech", "latency_ms": 6.0})
    output = console.file.getvalue()
    assert "0.910" in output and "no_speech" in output and "1 flagged" in output
    assert output.endswith("\n")

"""The command line as a user and a CI job meet it: options, outputs, exit codes."""

import csv
import json
import os
import subprocess
import sys
from xml.etree import ElementTree

import numpy as np
import pytest
from click.testing import CliRunner

from forensics_scan import audio
from forensics_scan.cli import _DEFAULT_WIDTHS, MIN_SAMPLE_RATE, SEGMENT_SECONDS, main

FILE_COLUMNS = ["path", "status", "verdict", "score", "duration_s", "n_segments",
                "max_segment_score", "error"]


@pytest.fixture
def corpus(tmp_path, speechlike, write_audio):
    """A folder with a 12 s WAV, a 3 s upper-case .WAV in a subfolder and a broken file."""
    folder = tmp_path / "recordings"
    (folder / "sub").mkdir(parents=True)
    write_audio(folder / "long.wav", speechlike(12.0, seed=1))
    write_audio(folder / "sub" / "SHORT.WAV", speechlike(3.0, 22050, seed=2), 22050)
    (folder / "broken.mp3").write_bytes(b"this is not audio")
    (folder / "notes.txt").write_text("ignored: not an audio extension")
    return folder


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_segment_length_in_cli_matches_audio_module():
    assert SEGMENT_SECONDS == audio.SEGMENT_SECONDS
    assert MIN_SAMPLE_RATE == audio.MIN_SAMPLE_RATE


def test_default_widths_in_cli_match_the_model():
    from forensics_scan.model import DEFAULT_ARCH

    assert _DEFAULT_WIDTHS == ",".join(map(str, [DEFAULT_ARCH["stem"], *DEFAULT_ARCH["blocks"]]))


def test_a_link_to_a_scanned_file_gets_its_own_row(corpus, tiny_checkpoint, tmp_path):
    os.symlink(corpus / "long.wav", corpus / "a_link_to_long.wav")  # walked first
    out = tmp_path / "out.csv"

    result = run(corpus, "--model", tiny_checkpoint, "--csv", out, "--jobs", "1",
                 "--no-cache", "--quiet", "--fail-on", "never")

    assert result.exit_code == 0, result.output
    by_name = {os.path.basename(row["path"]): row for row in read_csv(out)}
    link, target = by_name["a_link_to_long.wav"], by_name["long.wav"]
    assert link["error"] == (f"the same file as {corpus / 'long.wav'} (reached through a "
                             f"link): scanned once")
    assert target["error"] == ""
    assert (link["status"], link["score"], link["n_segments"]) == (
        target["status"], target["score"], target["n_segments"])


def test_help_documents_exit_codes_and_commands():
    result = run("--help")
    assert result.exit_code == 0
    for text in ("Exit codes", "train", "evaluate", "export", "build-dataset"):
        assert text in result.output
    assert "--fail-on" in run("scan", "--help").output


def test_scan_writes_every_report_and_accounts_for_every_file(corpus, tiny_checkpoint,
                                                              tmp_path):
    out = {kind: tmp_path / f"out.{kind}" for kind in ("csv", "seg", "json", "html")}
    result = run(corpus, "--model", tiny_checkpoint, "--csv", out["csv"], "--segments",
                 out["seg"], "--json", out["json"], "--report", out["html"], "--jobs", "1",
                 "--no-cache", "--quiet", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    rows = read_csv(out["csv"])
    assert list(rows[0])[:len(FILE_COLUMNS)] == FILE_COLUMNS
    by_name = {os.path.basename(row["path"]): row for row in rows}
    assert set(by_name) == {"long.wav", "SHORT.WAV", "broken.mp3"}
    assert by_name["broken.mp3"]["status"] == "error" and by_name["broken.mp3"]["error"]
    assert by_name["long.wav"]["n_segments"] == "3"  # 0-5, 5-10, and 7-12 aligned to the end
    assert by_name["SHORT.WAV"]["n_segments"] == "1"
    segments = read_csv(out["seg"])
    assert [float(s["end_s"]) for s in segments if s["path"].endswith("long.wav")] == [5, 10, 12]
    report = json.loads(out["json"].read_text())
    assert report["summary"]["files"] == 3 and report["summary"]["errors"] == 1
    assert len(report["model"]["sha256"]) == 64
    assert report["generated_at"].endswith("+00:00")
    assert "<svg" in out["html"].read_text()


def test_a_report_in_a_new_folder_is_written(corpus, tiny_checkpoint, tmp_path):
    report = tmp_path / "cases" / "2026" / "report.csv"
    result = run(corpus, "--model", tiny_checkpoint, "--csv", report, "--jobs", "1",
                 "--no-cache", "--quiet", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    assert len(read_csv(report)) == 3


@pytest.mark.parametrize("where", ["folder", "under a file"])
def test_an_unwritable_report_path_fails_before_the_scan(corpus, tiny_checkpoint, tmp_path,
                                                         monkeypatch, where):
    # a long scan must not be lost to a typo in a report path found only at the end
    from forensics_scan import scan

    def no_scan(*args, **kwargs):
        raise AssertionError("scanned although a report could not be written")

    monkeypatch.setattr(scan, "scan_paths", no_scan)
    (tmp_path / "a_file.txt").write_text("x")
    path = tmp_path if where == "folder" else tmp_path / "a_file.txt" / "report.html"
    result = CliRunner().invoke(main, [str(corpus), "--model", str(tiny_checkpoint),
                                       "--csv", str(tmp_path / "ok.csv"), "--report", str(path)])
    assert result.exit_code == 2
    assert str(path) in result.output  # "cannot write ..." or click's "... is a directory"
    assert not (tmp_path / "ok.csv").exists()


@pytest.mark.parametrize("command, option, name", [
    (["train", "DATA"], "--out", "model.safetensors"),
    (["calibrate", "DATA", "--model", "MODEL"], "--out", "model.safetensors"),
    (["evaluate", "DATA", "--model", "MODEL"], "--out-dir", "evaluation")])
def test_train_calibrate_and_evaluate_check_their_output_before_the_work(
        tmp_path, tiny_checkpoint, monkeypatch, command, option, name):
    from forensics_scan import scan, training

    def no_work(*args, **kwargs):
        raise AssertionError("worked although the output could not be written")

    monkeypatch.setattr(training, "train", no_work)
    monkeypatch.setattr(scan, "scan_paths", no_work)
    (tmp_path / "a_file.txt").write_text("x")
    (tmp_path / "data.csv").write_text("path,label\nclip.wav,real\n")
    out = tmp_path / "a_file.txt" / name
    names = {"DATA": str(tmp_path / "data.csv"), "MODEL": str(tiny_checkpoint)}
    result = CliRunner().invoke(main, [names.get(a, a) for a in command] + [option, str(out)])
    assert result.exit_code == 2
    assert f"cannot write {out}" in result.output


@pytest.mark.parametrize("threshold, fail_on, expected", [
    ("0", "fake", 1),  # everything at or above 0 is flagged
    ("1", "fake", 0),  # a sigmoid never reaches 1
    ("0", "never", 0),
    ("1", "error", 1),  # broken.mp3 cannot be read
    ("1", "any", 1),
])
def test_exit_codes_follow_fail_on(corpus, tiny_checkpoint, threshold, fail_on, expected):
    result = run(corpus, "--model", tiny_checkpoint, "--threshold", threshold, "--fail-on",
                 fail_on, "--jobs", "1", "--no-cache", "--quiet")
    assert result.exit_code == expected


@pytest.mark.parametrize("threshold, fail_on, expected", [
    ("0", "fake", 1), ("0", "never", 0), ("1", "fake", 0), ("1", "error", 1)])
def test_junit_report_keeps_fail_on_exit_codes(corpus, tiny_checkpoint, tmp_path, threshold,
                                               fail_on, expected):
    target = tmp_path / "junit.xml"
    result = run(corpus, "--model", tiny_checkpoint, "--junit", target, "--threshold",
                 threshold, "--fail-on", fail_on, "--jobs", "1", "--no-cache", "--quiet")
    assert result.exit_code == expected
    suite = ElementTree.parse(target).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("errors")) == ("3", "1")
    assert suite.get("failures") == ("2" if threshold == "0" else "0")


def test_json_to_stdout_is_parseable_alone(corpus, tiny_checkpoint):
    result = run(corpus, "--model", tiny_checkpoint, "--json", "-", "--jobs", "1",
                 "--no-cache", "--quiet", "--fail-on", "never")
    assert json.loads(result.stdout)["summary"]["files"] == 3


@pytest.mark.parametrize("args, message", [
    (["does-not-exist"], "no such file"),
    (["EMPTY"], "no audio files"),
    (["AUDIO", "--model", "MISSING"], "cannot read model"),
    (["AUDIO", "--model", "GARBAGE"], "cannot read model"),
    (["AUDIO", "--hop", "0"], "hop"),
])
def test_usage_input_and_model_errors_exit_2(tmp_path, corpus, args, message):
    (tmp_path / "empty").mkdir()
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(256))
    names = {"EMPTY": tmp_path / "empty", "AUDIO": corpus, "MISSING": tmp_path / "no.model",
             "GARBAGE": garbage}
    result = CliRunner().invoke(main, [str(names.get(a, a)) for a in args])
    assert result.exit_code == 2
    assert message in result.output.lower()


def test_scan_is_the_default_command_and_a_folder_named_train_needs_scan(
        tmp_path, tiny_checkpoint, speechlike, write_audio):
    folder = tmp_path / "train"
    folder.mkdir()
    write_audio(folder / "a.wav", speechlike(2.0))
    os.chdir(tmp_path)
    explicit = run("scan", "train", "--model", tiny_checkpoint, "--json", "-", "--jobs", "1",
                   "--quiet", "--no-cache", "--fail-on", "never")
    dotted = run("./train", "--model", tiny_checkpoint, "--json", "-", "--jobs", "1", "--quiet",
                 "--no-cache", "--fail-on", "never")
    assert json.loads(explicit.stdout)["summary"]["scored"] == 1
    assert json.loads(dotted.stdout)["summary"]["scored"] == 1


def test_include_and_exclude_globs(corpus, tiny_checkpoint):
    result = run(corpus, "--model", tiny_checkpoint, "--include", "*.wav", "--exclude",
                 "sub/*", "--json", "-", "--jobs", "1", "--quiet", "--no-cache",
                 "--fail-on", "never")
    paths = [f["path"] for f in json.loads(result.stdout)["files"]]
    assert [os.path.basename(p) for p in paths] == ["long.wav"]


def test_scores_identical_for_one_and_two_jobs_and_with_cache(corpus, tiny_checkpoint,
                                                               tmp_path):
    outputs = []
    for extra in (["--jobs", "1", "--no-cache"], ["--jobs", "2", "--no-cache"],
                  ["--jobs", "2", "--cache-dir", tmp_path / "cache"],
                  ["--jobs", "1", "--cache-dir", tmp_path / "cache"]):
        result = run(corpus, "--model", tiny_checkpoint, "--json", "-", "--quiet",
                     "--fail-on", "never", *extra)
        files = json.loads(result.stdout)["files"]
        outputs.append([(f["path"], f["score"], [s["score"] for s in f["segments"]])
                        for f in files])
    assert all(output == outputs[0] for output in outputs)
    assert any((tmp_path / "cache").rglob("*.npz"))


def test_terminal_summary_names_flagged_files(corpus, tiny_checkpoint):
    result = run(corpus, "--model", tiny_checkpoint, "--threshold", "0", "--jobs", "1",
                 "--no-cache")
    assert result.exit_code == 1
    assert "long.wav" in result.output and "broken.mp3" in result.output


def _toy_training_data(folder, speechlike, write_audio):
    """real/ and fake/ folders of 4 speakers x 3 two-second clips; the "vocoder" is hard
    clipping with the envelope kept."""
    for label in ("real", "fake"):
        for speaker in range(4):
            (folder / label / f"spk{speaker}").mkdir(parents=True)
            for clip in range(3):
                signal = speechlike(2.0, seed=10 * speaker + clip)
                if label == "fake":
                    signal = np.clip(signal * 8, -0.5, 0.5)
                write_audio(folder / label / f"spk{speaker}" / f"{clip}.wav", signal)
    return folder


def test_sigterm_stops_training_and_keeps_the_best_epoch(tmp_path, speechlike, write_audio,
                                                         monkeypatch):
    import signal as signals

    from forensics_scan import training

    data = _toy_training_data(tmp_path / "data", speechlike, write_audio)
    train_epoch, calls = training._train_epoch, []

    def terminated_in_epoch_two(*args, **kwargs):
        calls.append(1)
        loss = train_epoch(*args, **kwargs)
        if len(calls) == 2:
            os.kill(os.getpid(), signals.SIGTERM)
        return loss

    monkeypatch.setattr(training, "_train_epoch", terminated_in_epoch_two)
    # without fscan's own handler, SIGTERM would only be recorded here, not end the run
    previous = signals.signal(signals.SIGTERM, lambda signum, frame: None)
    try:
        result = run("train", data, "--out", tmp_path / "model.safetensors", "--epochs", "4",
                     "--val-fraction", "0.5", "--seed", "3", "--jobs", "1", "--batch-size", "8")
    finally:
        signals.signal(signals.SIGTERM, previous)

    assert result.exit_code == 0, result.output
    assert "interrupted: keeping the best epoch so far (1)" in result.output
    assert len(calls) == 2
    history = json.loads((tmp_path / "model.history.json").read_text())
    assert [record["epoch"] for record in history["history"]] == [1]
    assert (tmp_path / "model.safetensors").exists()


def test_ensemble_joins_checkpoints_and_asks_for_calibration(tmp_path, tiny_checkpoint,
                                                              tiny_arch):
    import torch

    from forensics_scan.model import LCNN, load_checkpoint, save_checkpoint

    torch.manual_seed(1)
    other = str(tmp_path / "other.safetensors")
    save_checkpoint(other, LCNN(tiny_arch).eval(), 0.5, {"test": True})
    out = tmp_path / "pair.safetensors"

    result = run("ensemble", tiny_checkpoint, other, "--out", out)

    assert result.exit_code == 0, result.output
    assert "2 LCNNs" in result.output and "fscan calibrate" in result.output
    assert len(load_checkpoint(str(out)).model.members) == 2


def test_ensemble_of_one_checkpoint_is_refused(tmp_path, tiny_checkpoint):
    result = CliRunner().invoke(main, ["ensemble", tiny_checkpoint, "--out",
                                       str(tmp_path / "one.safetensors")])

    assert result.exit_code == 2
    assert "at least two checkpoints" in result.output
    assert not (tmp_path / "one.safetensors").exists()


def test_unpack_writes_the_members_of_an_ensemble(tmp_path, tiny_checkpoint, tiny_arch):
    import torch

    from forensics_scan.model import LCNN, load_checkpoint, save_checkpoint

    torch.manual_seed(1)
    other = str(tmp_path / "other.safetensors")
    save_checkpoint(other, LCNN(tiny_arch).eval(), 0.25, {"test": True})
    pair = str(tmp_path / "pair.safetensors")
    assert run("ensemble", tiny_checkpoint, other, "--out", pair).exit_code == 0

    result = run("unpack", pair, "--out-dir", tmp_path / "members")

    assert result.exit_code == 0, result.output
    assert "threshold 0.2500" in result.output
    assert load_checkpoint(str(tmp_path / "members" / "member1.safetensors")).threshold == 0.25
    refused = CliRunner().invoke(main, ["unpack", other, "--out-dir", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "not an ensemble" in refused.output


def test_build_dataset_with_an_unknown_generator_is_a_usage_error(tmp_path):
    (tmp_path / "real").mkdir()

    result = run("build-dataset", tmp_path / "real", tmp_path / "out",
                 "--generators", "no_such_vocoder")

    assert result.exit_code == 2
    assert "unknown generator(s) ['no_such_vocoder']" in result.output
    assert "Traceback" not in result.output


def test_help_names_every_command_a_folder_could_be_mistaken_for():
    epilog = run("--help").output.split("A folder named like a command")[1]
    for command in main.commands:
        assert command in epilog, command


def test_train_evaluate_export_round_trip(tmp_path, speechlike, write_audio):
    """A two-epoch run on a toy problem writes a checkpoint the scanner accepts."""
    data = _toy_training_data(tmp_path / "data", speechlike, write_audio)
    checkpoint = tmp_path / "model.safetensors"
    result = run("train", data, "--out", checkpoint, "--epochs", "2", "--val-fraction", "0.5",
                 "--seed", "3", "--jobs", "1", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    assert checkpoint.exists() and (tmp_path / "model.history.png").exists()
    assert "| segment |" in (tmp_path / "model.card.md").read_text()
    history = json.loads((tmp_path / "model.history.json").read_text())
    assert len(history["history"]) == 2
    assert history["summary"]["command"].startswith("fscan train")

    result = run("evaluate", data, "--model", checkpoint, "--out-dir", tmp_path / "eval",
                 "--jobs", "1", "--quiet")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0 <= metrics["files"]["eer"] <= 1 and metrics["files"]["n_scored"] == 24

    result = run("export", "--model", checkpoint, "--torchscript", tmp_path / "model.pt")
    assert result.exit_code == 0 and (tmp_path / "model.pt").exists()


@pytest.fixture
def train_with(tmp_path, monkeypatch):
    """Run ``fscan train`` on a two-row manifest with training replaced by a recorder:
    returns (exit code, output, the TrainConfig it received or None)."""
    from forensics_scan import training

    received = []
    monkeypatch.setattr(training, "train", lambda table, out, config, **_: received.append(config))
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.wav,real\nb.wav,fake\n")

    def train(*options):
        result = run("train", manifest, "--out", tmp_path / "x.safetensors", *options)
        return result.exit_code, result.output, received.pop() if received else None
    return train


@pytest.mark.parametrize("options, arch", [((), {}),
                                           (("--head", "one-class"), {"head": "one-class"}),
                                           (("--band-norm",), {"band_norm": True}),
                                           (("--widths", _DEFAULT_WIDTHS), {}),
                                           (("--widths", "8,24,48,64,64"),
                                            {"stem": 8, "blocks": [24, 48, 64, 64]})])
def test_train_passes_architecture_options_to_the_model(train_with, options, arch):
    code, output, config = train_with(*options)
    assert code == 0, output
    assert config.arch == arch


@pytest.mark.parametrize("widths", ["8,24,48", "8,24,48,64,64,64", "8,a,48,64,64",
                                    "0,24,48,64,64", "8,24,-48,64,64", ""])
def test_train_refuses_widths_that_are_not_five_positive_numbers(train_with, widths):
    code, output, config = train_with("--widths", widths)
    assert code == 2 and "--widths" in output and config is None


@pytest.mark.parametrize("option, field", [("--sam-rho", "sam_rho"),
                                           ("--system-weight", "system_weight")])
def test_train_passes_non_negative_loss_settings(train_with, option, field):
    for options, value in (((), 0.0), ((option, "0.05"), 0.05)):
        code, output, config = train_with(*options)
        assert code == 0, output
        assert getattr(config, field) == value
    code, output, config = train_with(option, "-1")
    assert code == 2 and option.lstrip("-") in output and config is None


@pytest.mark.parametrize("flag", ["corpus_balance", "system_balance"])
def test_train_passes_the_balance_flags(train_with, flag):
    for options, expected in (((), False), (("--" + flag.replace("_", "-"),), True)):
        code, output, config = train_with(*options)
        assert code == 0, output
        assert getattr(config, flag) is expected


def test_train_passes_the_starting_checkpoint(train_with, tmp_path):
    code, output, config = train_with()
    assert code == 0 and config.init == ""
    start = tmp_path / "start.safetensors"
    start.write_bytes(b"checked by training.starting_model")
    code, output, config = train_with("--init", start)
    assert code == 0 and config.init == str(start)
    code, output, config = train_with("--init", tmp_path / "missing.safetensors")
    assert code == 2 and "missing.safetensors" in output and config is None


def test_cli_import_does_not_pull_torch_or_librosa():
    code = ("import sys; from forensics_scan import cli; "
            "print('torch' in sys.modules, 'librosa' in sys.modules)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert output == ["False", "False"]  # the --help time itself is a benchmark figure
    result = subprocess.run([sys.executable, "-m", "forensics_scan", "--help"],
                            capture_output=True, text=True, check=True)
    assert "Usage: fscan" in result.stdout

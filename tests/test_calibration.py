"""Threshold calibration: the false-alarm target holds, and only the threshold changes."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.numpy import load_file

from forensics_scan.calibration import (choose_threshold, corpus_weights,
                                        threshold_for_false_alarm)
from forensics_scan.checkpoint import read_checkpoint_info
from forensics_scan.cli import main
from forensics_scan.scan import ScanOptions, scan_paths


@pytest.mark.parametrize("target, flagged", [(0.0, 0), (0.05, 0), (0.1, 1), (0.25, 2),
                                             (0.3, 3), (0.99, 9)])
def test_false_alarm_target_is_met_exactly(target, flagged):
    genuine = np.linspace(0.05, 0.95, 10)
    threshold = threshold_for_false_alarm(genuine, target)
    assert np.sum(genuine >= threshold) == flagged
    # the threshold is the lowest that meets the target: any genuine score below it
    # is the next one that would be flagged
    below = genuine[genuine < threshold]
    assert below.size == 0 or np.sum(genuine >= below.max()) == flagged + 1


def test_ties_never_raise_the_false_alarm_rate():
    genuine = np.array([0.9, 0.9, 0.9, 0.2, 0.1])
    threshold = threshold_for_false_alarm(genuine, 0.4)  # 2 of 5 allowed, 3 tied on top
    assert np.mean(genuine >= threshold) <= 0.4


def test_corpus_weights_make_a_small_corpus_count_as_much_as_a_large_one():
    # 20 keyword clips scored low, 2 read-speech files, one of them scored high
    corpora = ["keywords"] * 20 + ["read"] * 2
    genuine = np.concatenate([np.linspace(0.0, 0.3, 20), [0.2, 0.9]])
    weights = corpus_weights(corpora)
    assert np.allclose(weights[:20].sum(), weights[20:].sum())
    # counted over files, flagging the read file costs 1/22 < 10 %: allowed
    assert threshold_for_false_alarm(genuine, 0.1) <= 0.9
    # counted per corpus it costs half of one corpus (25 % on average): not allowed
    assert threshold_for_false_alarm(genuine, 0.1, weights) > 0.9


def test_choose_threshold_reports_the_mean_over_corpora():
    labels = np.array([0] * 6 + [1] * 2)
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.7, 0.9, 0.95])
    corpora = ["a", "a", "a", "a", "b", "b", "x", "x"]  # fakes' corpora play no part
    result = choose_threshold(labels, scores, 0.25, corpora)
    # corpus b's 0.8 may be flagged (b at 50 %, a at 0 %: mean 25 %), its 0.7 not
    assert 0.7 < result["threshold"] <= 0.8
    assert result["corpus_false_alarm_rate"] == pytest.approx(0.25)
    assert result["n_corpora"] == 2 and result["false_alarm_rate"] == pytest.approx(1 / 6)
    assert "every corpus weighing the same" in result["rule"]
    assert "corpus_false_alarm_rate" not in choose_threshold(labels, scores, 0.25)


def test_bad_targets_and_empty_data_are_refused():
    with pytest.raises(ValueError, match="at least one genuine"):
        threshold_for_false_alarm([], 0.05)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        threshold_for_false_alarm([0.5], 1.0)
    with pytest.raises(ValueError, match="--max-false-alarm"):
        choose_threshold([0, 0], [0.1, 0.2])  # EER point without any fake
    with pytest.raises(ValueError, match="one per genuine score"):
        threshold_for_false_alarm([0.5, 0.6], 0.05, weights=[1.0])


def test_choose_threshold_reports_the_operating_point():
    labels = np.array([0] * 20 + [1] * 20)
    scores = np.concatenate([np.linspace(0.0, 0.6, 20), np.linspace(0.4, 1.0, 20)])
    at_eer = choose_threshold(labels, scores)
    assert at_eer["rule"] == "validation EER point"
    assert abs(at_eer["false_alarm_rate"] - at_eer["miss_rate"]) <= 0.05 + 1e-9
    strict = choose_threshold(labels, scores, max_false_alarm=0.05)
    assert strict["false_alarm_rate"] <= 0.05
    assert strict["threshold"] > at_eer["threshold"]
    assert strict["miss_rate"] >= at_eer["miss_rate"]
    assert (strict["n_genuine"], strict["n_fake"]) == (20, 20)


def labelled_folder(tmp_path, speechlike, write_audio, clips):
    """data/real/N.wav and data/fake/buzz/N.wav: speech and its hard-clipped copy."""
    data = tmp_path / "data"
    (data / "real").mkdir(parents=True)
    (data / "fake" / "buzz").mkdir(parents=True)
    for clip in range(clips):
        signal = speechlike(2.0, seed=clip)
        write_audio(data / "real" / f"{clip}.wav", signal)
        write_audio(data / "fake" / "buzz" / f"{clip}.wav", np.clip(signal * 8, -0.5, 0.5))
    return data


def test_calibrate_command_changes_only_the_threshold(tmp_path, tiny_checkpoint, speechlike,
                                                      write_audio):
    data = labelled_folder(tmp_path, speechlike, write_audio, 6)
    (data / "real" / "broken.wav").write_bytes(b"RIFF not really")
    out = tmp_path / "calibrated.safetensors"
    result = CliRunner().invoke(main, ["calibrate", str(data), "--model", tiny_checkpoint,
                                       "--out", str(out), "--max-false-alarm", "0.2",
                                       "--jobs", "1", "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "1 unreadable files left out" in result.output

    info = read_checkpoint_info(str(out))
    record = info.metadata["calibration"]
    assert info.threshold == record["threshold"] != 0.5
    assert record["n_genuine"] == 6 and record["n_fake"] == 6
    assert record["calibrated_from"] == read_checkpoint_info(tiny_checkpoint).sha256
    assert record["command"].startswith("fscan calibrate")
    original, calibrated = load_file(tiny_checkpoint), load_file(str(out))
    assert original.keys() == calibrated.keys()
    assert all(np.array_equal(original[name], calibrated[name]) for name in original)
    with safe_open(str(out), framework="numpy") as handle:
        metadata = json.loads(handle.metadata()["fscan"])
    assert {k: v for k, v in metadata.items() if k not in ("threshold", "calibration")} == \
        {k: v for k, v in read_checkpoint_info(tiny_checkpoint).metadata.items()
         if k != "threshold"}

    # the promise holds on the calibration data: at most 20 % of the genuine files flagged
    real_files = sorted(str(p) for p in (data / "real").glob("[0-9].wav"))
    results = scan_paths(real_files, str(out), ScanOptions(jobs=1, cache_dir=None))
    assert sum(r.verdict == "fake" for r in results) <= 1


def test_validation_split_needs_a_recorded_split(tmp_path, tiny_checkpoint, speechlike,
                                                 write_audio):
    data = tmp_path / "data"
    for label in ("real", "fake"):
        (data / label).mkdir(parents=True)
        write_audio(data / label / "a.wav", speechlike(1.0))
    result = CliRunner().invoke(main, ["calibrate", str(data), "--model", tiny_checkpoint,
                                       "--out", str(tmp_path / "x.safetensors"),
                                       "--split", "validation", "--quiet"])
    assert result.exit_code == 2
    assert "does not record its validation split" in result.output
    assert not (tmp_path / "x.safetensors").exists()


def test_genuine_files_alone_are_enough_for_a_false_alarm_target(tmp_path, tiny_checkpoint,
                                                                 speechlike, write_audio):
    (tmp_path / "data" / "real").mkdir(parents=True)
    for clip in range(4):
        write_audio(tmp_path / "data" / "real" / f"{clip}.wav", speechlike(1.5, seed=clip))
    out = tmp_path / "calibrated.safetensors"
    result = CliRunner().invoke(main, ["calibrate", str(tmp_path / "data"), "--model",
                                       tiny_checkpoint, "--out", str(out),
                                       "--max-false-alarm", "0.25", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "of 4 genuine files;" in result.output and "nan" not in result.output
    record = read_checkpoint_info(str(out)).metadata["calibration"]
    assert record["n_fake"] == 0 and record["miss_rate"] is None


def test_evaluate_records_held_out_figures_and_calibrate_drops_them(tmp_path, tiny_checkpoint,
                                                                    speechlike, write_audio):
    data = labelled_folder(tmp_path, speechlike, write_audio, 4)
    model = tmp_path / "model.safetensors"
    model.write_bytes(open(tiny_checkpoint, "rb").read())

    def invoke(*arguments):
        return CliRunner().invoke(main, [str(a) for a in arguments], catch_exceptions=False)

    refused = invoke("evaluate", data, "--model", model, "--record", "held", "--threshold",
                     "0.3", "--out-dir", tmp_path / "eval", "--jobs", "1", "--quiet")
    assert refused.exit_code == 2 and "leave out --threshold" in refused.output
    assert "held_out" not in read_checkpoint_info(str(model)).metadata

    result = invoke("evaluate", data, "--model", model, "--record", "held", "--out-dir",
                    tmp_path / "eval", "--jobs", "1", "--quiet")
    assert result.exit_code == 0, result.output
    record = read_checkpoint_info(str(model)).metadata["held_out"]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert record["data"] == "held" and record["command"].startswith("fscan evaluate")
    assert (record["n_genuine"], record["n_fake"], record["n_systems"]) == (4, 4, 1)
    assert record["file_eer"] == metrics["files"]["eer"]
    assert record["miss_rate"] == metrics["files"]["miss_rate"]
    assert record["threshold"] == read_checkpoint_info(tiny_checkpoint).threshold
    original, recorded = load_file(tiny_checkpoint), load_file(str(model))
    assert all(np.array_equal(original[name], recorded[name]) for name in original)

    out = tmp_path / "calibrated.safetensors"
    result = invoke("calibrate", data, "--model", model, "--out", out, "--max-false-alarm",
                    "0.25", "--jobs", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert "held_out" not in read_checkpoint_info(str(out)).metadata  # measured elsewhere


@pytest.mark.parametrize("corpus_column", [False, True])
def test_calibrate_balances_corpora_named_in_the_manifest(tmp_path, tiny_checkpoint,
                                                          speechlike, write_audio,
                                                          corpus_column):
    # corpus "big": 6 files, "small": 2; named by the group's prefix, or by a corpus
    # column that then wins over groups which would say otherwise
    rows = ["path,label,system,group" + (",corpus" if corpus_column else "")]
    for clip in range(8):
        corpus = "big" if clip < 6 else "small"
        write_audio(tmp_path / f"{clip}.wav", speechlike(1.5, seed=clip))
        rows.append(f"{clip}.wav,real,bonafide,{corpus}:speaker{clip}" if not corpus_column
                    else f"{clip}.wav,real,bonafide,g{clip % 3}:speaker{clip},{corpus}")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "calibrated.safetensors"

    def calibrate(*options):
        return CliRunner().invoke(main, ["calibrate", str(manifest), "--model",
                                         tiny_checkpoint, "--out", str(out), "--jobs", "1",
                                         "--quiet", *options], catch_exceptions=False)

    refused = calibrate("--balance-corpora")
    assert refused.exit_code == 2 and "needs --max-false-alarm" in refused.output
    result = calibrate("--max-false-alarm", "0.25", "--balance-corpora")
    assert result.exit_code == 0, result.output
    assert "mean over 2 corpora" in result.output
    record = read_checkpoint_info(str(out)).metadata["calibration"]
    assert record["n_corpora"] == 2 and record["corpus_false_alarm_rate"] <= 0.25
    scores = {r.path: r.score for r in scan_paths(
        [str(tmp_path / f"{clip}.wav") for clip in range(8)], tiny_checkpoint,
        ScanOptions(jobs=1, cache_dir=None))}
    flagged = [scores[str(tmp_path / f"{clip}.wav")] >= record["threshold"]
               for clip in range(8)]
    assert np.mean(flagged[:6]) / 2 + np.mean(flagged[6:]) / 2 <= 0.25


def test_calibrate_balances_the_folders_of_a_real_and_fake_folder(tmp_path, tiny_checkpoint,
                                                                  speechlike, write_audio):
    for clip in range(5):  # real/big: 4 files, real/small: 1 file
        folder = tmp_path / "data" / "real" / ("big" if clip < 4 else "small")
        folder.mkdir(parents=True, exist_ok=True)
        write_audio(folder / f"{clip}.wav", speechlike(1.5, seed=clip))
    out = tmp_path / "calibrated.safetensors"
    result = CliRunner().invoke(main, ["calibrate", str(tmp_path / "data"), "--model",
                                       tiny_checkpoint, "--out", str(out), "--jobs", "1",
                                       "--quiet", "--max-false-alarm", "0.3",
                                       "--balance-corpora"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = read_checkpoint_info(str(out)).metadata["calibration"]
    assert record["n_corpora"] == 2 and record["corpus_false_alarm_rate"] <= 0.3

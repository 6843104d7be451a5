"""Scanning files and aggregating segment scores (forensics_scan/scan.py).

The tiny random checkpoint scores everything near 0.5, so these tests check plumbing,
layout and determinism, never whether a verdict is right about the audio.
"""

import glob
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from forensics_scan import audio, scan
from forensics_scan.audio import SAMPLE_RATE, segment_starts
from forensics_scan.discovery import find_audio_files
from forensics_scan.model import Detector
from forensics_scan.results import ERROR, FAKE, OK, REAL, SKIPPED
from forensics_scan.scan import ScanOptions, aggregate, scan_paths


@pytest.fixture
def corpus(tmp_path, speechlike, write_audio):
    """Readable clips of several lengths, rates and channel counts, by name."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    stereo = np.stack([speechlike(6.0, seed=4), speechlike(6.0, seed=5)], axis=1)
    return {
        "long": write_audio(folder / "long.wav", speechlike(12.0, seed=1)),
        "cd": write_audio(folder / "cd.wav", speechlike(7.3, 44100, seed=2), 44100),
        "short": write_audio(folder / "short.flac", speechlike(2.0, seed=3)),
        "stereo": write_audio(folder / "stereo.wav", stereo, subtype="FLOAT"),
    }


@pytest.fixture
def problem_files(tmp_path, write_audio, speechlike):
    folder = tmp_path / "problems"
    folder.mkdir()
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("not audio at all\n" * 50)
    return {
        "empty": str(folder / "empty.wav"),
        "text": str(folder / "text.wav"),
        "silence": write_audio(folder / "silence.wav", np.zeros(6 * SAMPLE_RATE, np.float32)),
        "blip": write_audio(folder / "blip.wav", speechlike(0.05)),
    }


def _scan(paths, model, **options):
    options.setdefault("jobs", 1)
    return scan_paths(list(paths), model, ScanOptions(**options))


def _scores(results):
    return [(r.path, r.status, r.score, [(s.start_s, s.end_s, s.score) for s in r.segments])
            for r in results]


def test_every_input_gets_one_result_in_input_order(corpus, problem_files, tiny_checkpoint,
                                                     monkeypatch):
    monkeypatch.setattr(scan, "FILES_PER_TASK", 3)  # several chunks, results re-joined
    paths = [corpus["long"], problem_files["empty"], corpus["short"], problem_files["silence"],
             corpus["cd"], problem_files["text"], corpus["long"], problem_files["blip"],
             corpus["stereo"]]
    calls = []

    results = scan_paths(paths, tiny_checkpoint, ScanOptions(jobs=1),
                         progress=lambda done, total, path: calls.append((done, total)))

    assert [r.path for r in results] == paths
    assert [r.status for r in results] == [OK, ERROR, OK, SKIPPED, OK, ERROR, OK, SKIPPED, OK]
    assert calls[0] == (0, len(paths)) and calls[-1] == (len(paths), len(paths))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert results[0] == results[6]  # the same file twice, scored the same


def test_scored_files_have_the_segment_layout_of_their_duration(corpus, tiny_checkpoint):
    results = _scan(corpus.values(), tiny_checkpoint)

    expected = {"long": (12.0, 16000, 1), "cd": (7.3, 44100, 1), "short": (2.0, 16000, 1),
                "stereo": (6.0, 16000, 2)}
    for (name, (seconds, rate, channels)), result in zip(expected.items(), results):
        assert result.status == OK and result.error == "", name
        assert result.duration_s == pytest.approx(seconds, abs=1 / SAMPLE_RATE), name
        assert (result.sample_rate, result.channels) == (rate, channels), name
        starts = segment_starts(round(result.duration_s * SAMPLE_RATE))
        assert result.n_segments == len(result.segments) == len(starts), name
        assert [s.start_s for s in result.segments] == pytest.approx(
            [x / SAMPLE_RATE for x in starts], abs=1e-6), name
        assert [s.index for s in result.segments] == list(range(len(starts))), name
        assert result.segments[-1].end_s == pytest.approx(result.duration_s), name  # end-aligned
        assert len(result.sha256) == 64 and result.size_bytes == os.path.getsize(result.path)


def test_unreadable_files_become_errors_with_a_reason(problem_files, tiny_checkpoint):
    results = _scan([problem_files["empty"], problem_files["text"]], tiny_checkpoint)

    for result in results:
        assert result.status == ERROR
        assert result.error  # the reason reaches every report
        assert result.score is None and result.verdict == "" and result.segments == ()


def test_nothing_to_judge_is_skipped(problem_files, tiny_checkpoint):
    silence, blip = _scan([problem_files["silence"], problem_files["blip"]], tiny_checkpoint)

    assert silence.status == SKIPPED and "silence" in silence.error
    assert silence.duration_s == pytest.approx(6.0)
    assert blip.status == SKIPPED and "too short" in blip.error
    assert blip.duration_s == pytest.approx(0.05)
    assert silence.score is None and blip.score is None


def test_overlapping_hop_gives_more_segments(corpus, tiny_checkpoint):
    default, = _scan([corpus["long"]], tiny_checkpoint)
    overlapped, = _scan([corpus["long"]], tiny_checkpoint, hop_s=2.5)

    assert [(s.start_s, s.end_s) for s in default.segments] == [(0, 5), (5, 10), (7, 12)]
    assert [(s.start_s, s.end_s) for s in overlapped.segments] == [
        (0, 5), (2.5, 7.5), (5, 10), (7, 12)]
    # segments at the same place see the same samples, so they get the same score
    assert overlapped.segments[0].score == default.segments[0].score
    assert overlapped.segments[-1].score == default.segments[-1].score


def test_aggregate_is_the_maximum_and_flips_at_the_threshold():
    scores = [0.2, 0.73, 0.41]

    assert aggregate(scores, 0.5) == (0.73, FAKE)
    assert aggregate(scores, 0.73) == (0.73, FAKE)  # at the threshold counts as synthetic
    assert aggregate(scores, float(np.nextafter(0.73, 1))) == (0.73, REAL)
    assert aggregate([0.9], 0.95)[1] == REAL
    assert aggregate([0.1, 0.2], 0.0)[1] == FAKE


def test_file_score_is_the_maximum_segment_score(corpus, tiny_checkpoint):
    first, = _scan([corpus["long"]], tiny_checkpoint)
    values = sorted(s.score for s in first.segments)
    assert values[0] < values[-1]  # distinct scores, else this test proves nothing
    threshold = values[1]  # some segments on each side

    result, = _scan([corpus["long"]], tiny_checkpoint, threshold=threshold)

    segment_scores = [s.score for s in result.segments]
    assert result.score == result.max_segment_score == max(segment_scores)
    assert result.mean_segment_score == pytest.approx(np.mean(segment_scores), abs=1e-6)
    assert [s.verdict for s in result.segments] == [
        FAKE if s >= threshold else REAL for s in segment_scores]
    assert result.fake_segments == sum(s >= threshold for s in segment_scores) == 2
    assert result.verdict == FAKE


@pytest.mark.parametrize("threshold, verdict", [(0.0, FAKE), (1.0, REAL)])
def test_threshold_option_overrides_the_checkpoint(corpus, tiny_checkpoint, threshold,
                                                   verdict):
    results = _scan([corpus["long"], corpus["short"]], tiny_checkpoint, threshold=threshold)

    assert [r.verdict for r in results] == [verdict, verdict]


def test_scores_do_not_depend_on_jobs(corpus, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(scan, "FILES_PER_TASK", 1)  # one chunk per file: two really run
    paths = [corpus["long"], corpus["cd"], corpus["stereo"]]

    serial = _scan(paths, tiny_checkpoint, jobs=1)
    parallel = _scan(paths, tiny_checkpoint, jobs=2)

    assert _scores(parallel) == _scores(serial)
    assert parallel == serial


def test_scores_do_not_depend_on_the_other_files(corpus, tiny_checkpoint):
    together = _scan(corpus.values(), tiny_checkpoint)
    alone = [_scan([path], tiny_checkpoint)[0] for path in corpus.values()]

    assert _scores(alone) == _scores(together)


def test_cache_gives_identical_scores_and_is_used(corpus, problem_files, tiny_checkpoint,
                                                 tmp_path, monkeypatch):
    paths = [corpus["long"], corpus["cd"], problem_files["silence"]]
    cache_dir = str(tmp_path / "cache")

    uncached = _scan(paths, tiny_checkpoint)
    filling = _scan(paths, tiny_checkpoint, cache_dir=cache_dir)
    entries = sorted(glob.glob(os.path.join(cache_dir, "*", "*.npz")))

    def no_decoding(path, *args, **kwargs):
        raise AssertionError(f"decoded {path} although it was cached")

    monkeypatch.setattr(scan, "stream_blocks", no_decoding)
    cached = _scan(paths, tiny_checkpoint, cache_dir=cache_dir)

    assert len(entries) == len(paths)
    assert filling == uncached
    assert cached == uncached  # bit-identical from the cache, skipped file included


def test_a_cached_float_file_is_not_read_ahead_for_its_level(tmp_path, tiny_checkpoint,
                                                             speechlike, write_audio,
                                                             monkeypatch):
    # a float file beyond full scale is read once for its level before it is decoded;
    # a rescan that finds its scores in the cache must not pay that read
    voice = speechlike(6.0, seed=2)
    loud = write_audio(tmp_path / "loud.wav", voice / np.abs(voice).max() * np.float32(3.0),
                       subtype="FLOAT")
    cache_dir = str(tmp_path / "cache")
    filling = _scan([loud], tiny_checkpoint, cache_dir=cache_dir)

    def no_level(path, *args):
        raise AssertionError(f"read {path} for its level although it was cached")

    monkeypatch.setattr(audio, "_float_level", no_level)
    cached = _scan([loud], tiny_checkpoint, cache_dir=cache_dir)

    assert filling[0].status == OK
    assert "float samples run to 4 times full scale" in filling[0].error
    assert cached == filling  # the note on the scaling included


def test_cache_keeps_settings_apart(corpus, tiny_checkpoint, tmp_path):
    cache_dir = str(tmp_path / "cache")
    _scan([corpus["long"]], tiny_checkpoint, cache_dir=cache_dir)

    overlapped, = _scan([corpus["long"]], tiny_checkpoint, cache_dir=cache_dir, hop_s=2.5)
    cut, = _scan([corpus["long"]], tiny_checkpoint, cache_dir=cache_dir, max_duration_s=6)

    assert overlapped.n_segments == 4 and cut.n_segments == 2


def test_cache_written_by_an_older_decoder_is_not_used(corpus, tiny_checkpoint, tmp_path,
                                                       monkeypatch):
    cache_dir = str(tmp_path / "cache")
    monkeypatch.setattr(scan, "DECODE_VERSION", 1)  # as if fscan were upgraded after this
    _scan([corpus["long"]], tiny_checkpoint, cache_dir=cache_dir)
    monkeypatch.undo()
    decoded = []
    real_stream_blocks = scan.stream_blocks

    def counting(path, *args, **kwargs):
        decoded.append(path)
        return real_stream_blocks(path, *args, **kwargs)

    monkeypatch.setattr(scan, "stream_blocks", counting)
    _scan([corpus["long"]], tiny_checkpoint, cache_dir=cache_dir)

    assert decoded == [corpus["long"]]


def test_damaged_cache_entry_is_recomputed(corpus, tiny_checkpoint, tmp_path):
    cache_dir = str(tmp_path / "cache")
    expected, = _scan([corpus["long"]], tiny_checkpoint, cache_dir=cache_dir)
    entry, = glob.glob(os.path.join(cache_dir, "*", "*.npz"))
    with open(entry, "r+b") as handle:
        handle.truncate(os.path.getsize(entry) // 2)

    result, = _scan([corpus["long"]], tiny_checkpoint, cache_dir=cache_dir)

    assert result == expected


def test_audio_the_decoder_never_delivers_is_reported(corpus, tiny_checkpoint, monkeypatch):
    """A stream that ends long before its header says (a damaged MP3 does) is scored as
    far as it goes, and the result says how much was missing; small shortfalls pass."""
    real_probe = scan.probe

    def announcing(seconds):
        def probe(path, log=None, **options):
            info = real_probe(path, log, **options)
            return replace(info, frames=int(seconds * info.sample_rate))
        return probe

    monkeypatch.setattr(scan, "probe", announcing(30.0))
    cut, = _scan([corpus["long"]], tiny_checkpoint)
    assert cut.status == OK and cut.duration_s == 12.0 and cut.n_segments == 3
    assert cut.error == ("only 12.0 s of the 30.0 s its header announces could be decoded "
                         "(a damaged stream?): the rest was not scanned")

    monkeypatch.setattr(scan, "probe", announcing(12.4))  # a header's estimate, near enough
    assert _scan([corpus["long"]], tiny_checkpoint)[0].error == ""
    monkeypatch.setattr(scan, "probe", announcing(30.0))
    limited, = _scan([corpus["long"]], tiny_checkpoint, max_duration_s=6)
    assert limited.truncated and limited.error == ""  # cut on purpose, not lost


@pytest.mark.parametrize("rate, status", [(1, SKIPPED), (3999, SKIPPED), (4000, OK)])
def test_rates_too_slow_for_speech_are_skipped_undecoded(tmp_path, write_audio,
                                                          tiny_checkpoint, monkeypatch,
                                                          rate, status):
    """A header saying 1 Hz made 300 samples into "300 s of speech" judged genuine."""
    t = np.arange(max(rate, 300) * 3) / max(rate, 300)
    path = write_audio(tmp_path / f"rate{rate}.wav", 0.3 * np.sin(2 * np.pi * 700 * t), rate)
    monkeypatch.setattr(scan, "speech_activity", lambda features: np.ones(len(features)))

    result, = _scan([path], tiny_checkpoint)

    assert result.status == status and result.sample_rate == rate
    if status == SKIPPED:
        assert result.error == (f"sampled at {rate:,} Hz, too slow to carry speech (under "
                                f"4,000 Hz; a wrong rate in its header?): nothing to judge")
        assert result.duration_s is None and result.n_segments == 0


def test_antiphase_stereo_scores_as_its_mono_and_says_so(tmp_path, speechlike, write_audio,
                                                         tiny_checkpoint):
    voice = speechlike(7.0, seed=8)
    mono = write_audio(tmp_path / "mono.wav", voice)
    reversed_lead = write_audio(tmp_path / "antiphase.wav", np.stack([voice, -voice], 1))
    cache_dir = str(tmp_path / "cache")

    plain, flipped = _scan([mono, reversed_lead], tiny_checkpoint, cache_dir=cache_dir)
    cached, = _scan([reversed_lead], tiny_checkpoint, cache_dir=cache_dir)

    assert flipped.status == OK and flipped.score == plain.score  # was: "digital silence"
    assert flipped.error == ("channel 2 of 2 ran against channel 1 (a lead wired in "
                             "reverse?): inverted before the channels were mixed, which "
                             "would otherwise have cancelled out")
    assert cached.error == flipped.error


def test_decoder_complaints_are_noted_in_the_report_row_and_cached(damaged_mp3, tmp_path,
                                                                   tiny_checkpoint, capfd):
    cache_dir = str(tmp_path / "cache")

    first, = _scan([damaged_mp3], tiny_checkpoint, cache_dir=cache_dir)
    again, = _scan([damaged_mp3], tiny_checkpoint, cache_dir=cache_dir)  # from the cache

    assert first.status == OK and first.duration_s == 6.0
    assert first.error == ("the decoder reported 4 problems in the stream (first: error: "
                           "dequantization failed): the audio may have gaps or glitches, "
                           "which can sway the score")
    assert again.error == first.error and again.score == first.score
    assert "dequantization" not in capfd.readouterr().err


def test_float_file_beyond_full_scale_scores_as_its_scaled_copy(tmp_path, speechlike,
                                                                 write_audio, tiny_checkpoint):
    signal = speechlike(7.0, seed=6)
    signal = signal / np.abs(signal).max()
    scaled = write_audio(tmp_path / "int16_range.wav", signal * 32767, subtype="FLOAT")
    within = write_audio(tmp_path / "full_scale.wav", signal, subtype="FLOAT")

    loud, plain = _scan([scaled, within], tiny_checkpoint)

    assert loud.status == plain.status == OK
    assert [s.score for s in loud.segments] == pytest.approx([s.score for s in plain.segments],
                                                            abs=1e-5)
    assert loud.error == ("float samples run to 32,768 times full scale: scaled down by that "
                          "factor before scoring")
    assert plain.error == ""


def test_max_duration_truncates(corpus, tiny_checkpoint):
    cut, whole = _scan([corpus["long"], corpus["short"]], tiny_checkpoint, max_duration_s=7)

    assert cut.truncated and cut.duration_s == 7.0
    assert cut.n_segments == len(segment_starts(7 * SAMPLE_RATE)) == 2
    assert cut.segments[-1].end_s == 7.0
    assert not whole.truncated and whole.duration_s == 2.0  # shorter than the limit


def test_file_removed_after_discovery_is_an_error(corpus, tiny_checkpoint):
    found = find_audio_files([os.path.dirname(corpus["long"])])
    os.remove(corpus["cd"])

    results = _scan(found.files, tiny_checkpoint)

    by_path = {r.path: r for r in results}
    assert len(results) == len(found.files) == 4
    assert by_path[corpus["cd"]].status == ERROR
    assert "No such file" in by_path[corpus["cd"]].error
    assert all(r.status == OK for path, r in by_path.items() if path != corpus["cd"])


def test_file_and_segment_verdicts_agree_at_the_threshold(corpus, tiny_checkpoint,
                                                          monkeypatch):
    def just_below(self, features):
        return torch.full((len(features),), 0.4999996)

    monkeypatch.setattr(Detector, "score", just_below)  # jobs=1 scores in this process

    result, = _scan([corpus["long"]], tiny_checkpoint, threshold=0.5)

    assert (result.verdict == FAKE) == (result.fake_segments > 0)


def test_hop_below_one_sample_is_refused():
    with pytest.raises(ValueError):
        ScanOptions(hop_s=1e-5)


def test_windows_without_speech_are_not_judged_and_do_not_count(tmp_path, speechlike,
                                                                  write_audio, tiny_checkpoint,
                                                                  rng):
    silence = np.zeros(10 * SAMPLE_RATE, np.float32)  # a muted stretch in a call
    recording = np.concatenate([speechlike(5.0, seed=1), silence, speechlike(5.0, seed=2)])
    path = write_audio(tmp_path / "call.wav", recording)
    noise = write_audio(tmp_path / "line_noise.wav",
                        (0.05 * rng.standard_normal(8 * SAMPLE_RATE)).astype(np.float32))

    call, hiss = scan_paths([path, noise], tiny_checkpoint, ScanOptions(jobs=1))

    verdicts = [s.verdict for s in call.segments]
    assert verdicts[1:3] == ["no_speech", "no_speech"]
    assert {verdicts[0], verdicts[3]} <= {REAL, FAKE}
    assert [s.score is None for s in call.segments] == [False, True, True, False]
    judged = [call.segments[0].score, call.segments[3].score]
    assert call.status == OK and call.score == max(judged) and call.n_segments == 4
    assert call.mean_segment_score == pytest.approx(np.mean(judged), abs=1e-6)
    assert hiss.status == SKIPPED and "no speech" in hiss.error and hiss.score is None

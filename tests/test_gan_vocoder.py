"""HiFi-GAN vocoder (forensics_scan.gan_vocoder): shapes, features, packing, losses,
checkpoints, copy-synthesis and the stand-alone trainer.

A training step drives the full-size discriminators (70 M parameters): about 5 s on two
CPU cores with full 0.5 s crops, about 2.5 s with 0.1 s crops. The training here crops
0.1 s (``gv.SEGMENT`` patched; nothing in the loop depends on the crop length beyond it
being whole hops): two steps for the checkpoint the tests share, one for the stand-alone
trainer.
"""

import json
import math
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from forensics_scan import gan_vocoder as gv

TINY = gv.GanVocoderConfig(channels=16)
TRAIN_STEPS = 2
SHORT_CROP = 1600  # samples per training crop in the shared run, a fifth of gv.SEGMENT


def voice(f0_hz, seconds, seed=0):
    """A vowel-like harmonic signal with vibrato and a little noise (module fixtures
    cannot use the function-scoped ``speechlike``)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * gv.SAMPLE_RATE)) / gv.SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(f0_hz * (1 + 0.05 * np.sin(2 * np.pi * 4 * t))) / gv.SAMPLE_RATE
    signal = sum(np.sin(k * phase) / k for k in range(1, 15))
    return 0.2 * signal / np.abs(signal).max() + 0.001 * rng.standard_normal(t.size)


def rms(audio):
    return float(np.sqrt(np.mean(np.asarray(audio, dtype=np.float64) ** 2)))


def at_work_level(audio):
    return np.asarray(audio, dtype=np.float64) * (gv.WORK_RMS / rms(audio))


def synthesise(generator, frames=20, seed=0):
    mel = torch.randn(1, gv.N_MELS, frames, generator=torch.Generator().manual_seed(seed)) - 4
    with torch.no_grad():
        return generator(mel)


@pytest.fixture(scope="module")
def filterbank():
    return gv.mel_filterbank()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("gan") / "hifigan.safetensors"
    packed = gv.pack_clips([voice(130, 1.2, 0), voice(220, 1.0, 1)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gv, "SEGMENT", SHORT_CROP)
        summary = gv.train_gan_vocoder(packed, str(path), config=TINY, batch_size=2,
                                       max_steps=TRAIN_STEPS, device="cpu")
    return path, summary, packed


# ----------------------------------------------------------------- configuration, shapes

@pytest.mark.parametrize("rates", [(5, 4, 4), (5, 4, 4, 4), (), (3, 50), (160, 1, 2)])
def test_config_refuses_upsampling_that_is_not_one_hop(rates):
    with pytest.raises(ValueError, match="must multiply to 160"):
        gv.GanVocoderConfig(channels=16, upsample_rates=rates)


@pytest.mark.parametrize("channels", [8, 24, 0])
def test_config_refuses_channels_that_cannot_be_halved_at_every_stage(channels):
    with pytest.raises(ValueError, match="cannot be halved"):
        gv.GanVocoderConfig(channels=channels)  # four stages: a multiple of 16 is needed


@pytest.mark.parametrize("rates", [(5, 4, 4, 2), (8, 5, 4), (2, 4, 4, 5), (10, 16), (160,)])
def test_generator_makes_one_hop_of_samples_per_frame_within_full_scale(rates):
    torch.manual_seed(0)
    generator = gv.HifiGanGenerator(gv.GanVocoderConfig(channels=16, upsample_rates=rates))
    for frames in (1, 7):
        mel = torch.randn(2, gv.N_MELS, frames)
        with torch.no_grad():
            audio = generator(mel)
        assert audio.shape == (2, frames * gv.HOP)
        assert torch.all(torch.isfinite(audio)) and audio.std() > 0
    with torch.no_grad():
        generator.post.bias.fill_(4.0)  # drive the last layer far past full scale
        audio = generator(torch.randn(1, gv.N_MELS, 3))
    assert audio.max() <= 1.0 and audio.min() > 0.99


# ------------------------------------------------------------------------------ features

@pytest.mark.parametrize("n", [480, 1000, 8000, 12345])
def test_log_mel_gives_one_frame_per_hop(filterbank, n):
    audio = torch.randn(3, n) * 0.05
    assert gv.LogMel(filterbank)(audio).shape == (3, gv.N_MELS, n // gv.HOP)


def test_log_mel_matches_librosa_and_follows_the_gain(filterbank, speechlike):
    librosa = pytest.importorskip("librosa")
    audio = at_work_level(speechlike(0.5, seed=3))
    log_mel = gv.LogMel(filterbank)
    ours = log_mel(torch.from_numpy(audio)[None].float())[0].double().numpy()
    pad = (gv.N_FFT - gv.HOP) // 2
    reference = librosa.feature.melspectrogram(
        y=np.pad(audio, pad, mode="reflect"), sr=gv.SAMPLE_RATE, n_fft=gv.N_FFT,
        hop_length=gv.HOP, center=False, power=1.0, n_mels=gv.N_MELS, fmin=0.0,
        fmax=gv.SAMPLE_RATE / 2)
    reference = np.log(np.maximum(reference, 1e-5))
    assert ours.shape == reference.shape == (gv.N_MELS, audio.size // gv.HOP)
    np.testing.assert_allclose(ours, reference, atol=2e-3)
    assert ours.max() - ours.min() > 5  # a real spectrum, not a clamped floor

    doubled = log_mel(torch.from_numpy(2 * audio)[None].float())[0].double().numpy()
    unclamped = ours > math.log(1e-4)
    assert unclamped.mean() > 0.5
    np.testing.assert_allclose(doubled[unclamped] - ours[unclamped], math.log(2), atol=1e-3)
    assert np.all(doubled >= ours - 1e-4)


# ------------------------------------------------------------------------------- packing

def test_pack_clips_keeps_speech_crops_inside_one_clip_at_the_work_level(speechlike):
    first = speechlike(1.2, seed=0)
    second = speechlike(1.0, seed=1)
    second = np.concatenate([second, second[:50]])  # 16050 samples: the tail is dropped
    burst = np.zeros(int(1.3 * gv.SAMPLE_RATE), dtype=np.float32)
    burst[8000:12800] = speechlike(0.3, seed=2)  # frames 50-79 speech, the rest silence
    short_burst = np.zeros(int(1.3 * gv.SAMPLE_RATE), dtype=np.float32)
    short_burst[8000:11200] = speechlike(0.2, seed=4)  # 20 speech frames: under half a crop
    clips = [first, np.zeros(gv.SAMPLE_RATE), speechlike(0.45, seed=5), 1e-6 * first,
             second, short_burst, burst * 0.01]
    packed = gv.pack_clips(clips)

    lengths = [19200, 16000, 20800]  # first, second (trimmed to whole hops), burst
    assert packed["audio"].dtype == np.int16
    assert packed["audio"].size == sum(lengths)
    assert packed["filterbank"].shape == (gv.N_MELS, gv.N_FFT // 2 + 1)
    assert packed["filterbank"].dtype == np.float32
    audio = packed["audio"].astype(np.float64) / 32767
    bounds = np.cumsum([0] + lengths)
    for start, end in zip(bounds, bounds[1:]):  # (the level counts the dropped tail)
        assert rms(audio[start:end]) == pytest.approx(gv.WORK_RMS, rel=5e-3)

    # voiced clips: every whole-hop crop; the burst: crops that are at least half speech
    expected = np.concatenate([
        np.arange(0, 19200 - gv.SEGMENT + 1, gv.HOP),
        19200 + np.arange(0, 16000 - gv.SEGMENT + 1, gv.HOP),
        35200 + np.arange(25, 56) * gv.HOP])
    np.testing.assert_array_equal(packed["starts"], expected)
    for start in packed["starts"]:
        clip = np.searchsorted(bounds, start, side="right") - 1
        assert start + gv.SEGMENT <= bounds[clip + 1]

    # the level of a clip does not matter
    louder = gv.pack_clips([first * 3])
    np.testing.assert_allclose(louder["audio"], packed["audio"][:19200], atol=1)


def test_pack_clips_refuses_a_set_without_speech(speechlike):
    with pytest.raises(ValueError, match="nothing to train on"):
        gv.pack_clips([np.zeros(gv.SAMPLE_RATE), speechlike(0.3), np.zeros(0)])
    with pytest.raises(ValueError, match="nothing to train on"):
        gv.pack_clips([])


def test_packing_script_drops_the_head_and_the_crops_that_start_in_it(speechlike):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).parents[1] / "scripts/experiments/pack_vocoder_audio.py"
    spec = importlib.util.spec_from_file_location("pack_vocoder_audio", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    packed = gv.pack_clips([speechlike(1.2, seed=0), speechlike(1.0, seed=1)])
    cut = 19200 + 3 * gv.HOP  # inside the second clip
    tail = module.drop_head(packed, cut)

    np.testing.assert_array_equal(tail["audio"], packed["audio"][cut:])
    np.testing.assert_array_equal(tail["starts"], np.arange(0, 16000 - 3 * gv.HOP
                                                           - gv.SEGMENT + 1, gv.HOP))
    assert tail["filterbank"] is packed["filterbank"]
    assert module.drop_head(packed, 0)["starts"].size == packed["starts"].size


# -------------------------------------------------------------------------------- losses

def judged(scores, maps):
    return [(torch.full((2, 5), float(s)), [torch.full((2, 3, 4), float(m)) for m in fm])
            for s, fm in zip(scores, maps)]


def test_losses_of_perfect_and_fooled_judges():
    maps = [[0.5, -1.0, 2.0]] * 3
    real, fake = judged([1, 1, 1], maps), judged([0, 0, 0], maps)
    assert gv.discriminator_loss(real, fake).item() == 0.0
    assert gv.discriminator_loss(fake, real).item() == pytest.approx(6.0)  # 2 per judge
    adversarial, matching = gv.generator_loss(real, fake)
    assert adversarial.item() == pytest.approx(3.0) and matching.item() == 0.0
    adversarial, matching = gv.generator_loss(fake, real)
    assert adversarial.item() == 0.0 and matching.item() == 0.0
    shifted = judged([1, 1, 1], [[m + 0.25 for m in fm] for fm in maps])
    assert gv.generator_loss(real, shifted)[1].item() == pytest.approx(0.25 * 9)
    assert gv.discriminator_loss(judged([0.5], [[0]]), judged([0.5], [[0]])).item() == 0.5


def test_discriminators_judge_a_batch_with_eight_judges():
    torch.manual_seed(0)
    judges = gv.Discriminators()
    audio = 0.05 * torch.randn(2, 1603)  # not a multiple of any period
    with torch.no_grad():
        verdicts = judges(audio)
        again = judges(audio)
    assert len(verdicts) == 8  # periods 2, 3, 5, 7, 11 and three scales
    for index, (score, maps) in enumerate(verdicts):
        assert score.shape[0] == 2 and score.ndim == 2 and torch.all(torch.isfinite(score))
        assert len(maps) == (5 if index < 5 else 7) + 1
    scale_lengths = [score.shape[1] for score, _ in verdicts[5:]]
    assert scale_lengths[0] > scale_lengths[1] > scale_lengths[2]  # raw, x2, x4 pooled
    assert gv.generator_loss(verdicts, again)[1].item() == 0.0
    assert gv.discriminator_loss(verdicts, again).item() > 0


def test_narrow_discriminators_keep_every_judge_at_a_sixteenth_of_the_weights():
    torch.manual_seed(0)
    full, narrow = gv.Discriminators(), gv.Discriminators(0.25)
    audio = 0.05 * torch.randn(2, 1603)
    with torch.no_grad():
        full_verdicts, narrow_verdicts = full(audio), narrow(audio)
    assert len(narrow_verdicts) == len(full_verdicts) == 8
    for (full_score, full_maps), (score, maps) in zip(full_verdicts, narrow_verdicts):
        assert score.shape == full_score.shape and len(maps) == len(full_maps)
        assert [m.shape[2:] for m in maps] == [m.shape[2:] for m in full_maps]
        assert maps[-2].shape[1] * 4 == full_maps[-2].shape[1]  # last hidden layer
    ratio = (sum(p.numel() for p in narrow.parameters())
             / sum(p.numel() for p in full.parameters()))
    assert 1 / 20 < ratio < 1 / 12


@pytest.mark.parametrize("width", [0.3, 0.0, 1 / 16, 1 / 64, -1.0])  # 1/16: 8 channels, 16 groups
def test_a_discriminator_width_leaving_part_of_a_channel_is_refused(width):
    with pytest.raises(ValueError, match="discriminator width"):
        gv.Discriminators(width)


# ---------------------------------------------------------------------------- checkpoints

def test_training_writes_a_generator_checkpoint_with_its_history(trained):
    path, summary, packed = trained
    assert summary["steps"] == TRAIN_STEPS
    assert summary["train_audio_seconds"] == pytest.approx(packed["audio"].size / 16000, abs=0.1)
    assert set(summary["final_losses"]) == {"mel", "disc", "adv"}
    assert all(math.isfinite(v) for v in summary["final_losses"].values())
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["kind"] == gv.CHECKPOINT_KIND
    assert json.loads(metadata["training"])["steps"] == TRAIN_STEPS
    assert json.loads(metadata["config"])["channels"] == 16
    tensors = load_file(str(path))
    # the generator and the filterbank only: no discriminator weights
    assert set(tensors) == set(gv.HifiGanGenerator(TINY).state_dict()) | {"mel_filterbank"}
    assert all(t.dtype == torch.float32 for t in tensors.values())
    np.testing.assert_array_equal(tensors["mel_filterbank"].numpy(), packed["filterbank"])

    generator, log_mel = gv.load_gan_vocoder(str(path))
    assert generator.config == TINY and not generator.training
    torch.manual_seed(0)  # the seed the trainer built its generator with
    initial = gv.HifiGanGenerator(TINY).eval()
    assert not torch.equal(synthesise(generator), synthesise(initial))  # the steps moved it


def test_training_goes_on_from_a_checkpoint_with_its_configuration(trained, tmp_path):
    path, _, packed = trained
    again = tmp_path / "again.safetensors"
    # no step: the checkpoint written is the one it started from, whatever config is passed
    summary = gv.train_gan_vocoder(packed, str(again), minutes=5, max_steps=0,
                                   config=gv.GanVocoderConfig(), init=str(path))
    assert summary["steps"] == 0
    started, _ = gv.load_gan_vocoder(str(again))
    assert started.config == TINY
    assert torch.equal(synthesise(started), synthesise(gv.load_gan_vocoder(str(path))[0]))


def test_a_checkpoint_round_trips_also_at_half_precision(trained, tmp_path):
    path, summary, packed = trained
    generator, log_mel = gv.load_gan_vocoder(str(path))
    again, _ = gv.load_gan_vocoder(str(path))
    assert torch.equal(synthesise(generator), synthesise(again))

    full = tmp_path / "full.safetensors"
    gv.save_gan_vocoder(generator, log_mel, str(full), 7, 1.0, {}, 2.0)
    resaved, resaved_mel = gv.load_gan_vocoder(str(full))
    assert torch.equal(synthesise(resaved, seed=1), synthesise(generator, seed=1))
    assert torch.equal(resaved_mel.filterbank, log_mel.filterbank)

    half = tmp_path / "half.safetensors"
    gv.save_gan_vocoder(generator, log_mel, str(half), 7, 1.0, {}, 2.0, half=True)
    on_disk = load_file(str(half))
    assert all(on_disk[k].dtype == torch.float16 for k in on_disk if k != "mel_filterbank")
    halved, _ = gv.load_gan_vocoder(str(half))
    assert all(p.dtype == torch.float32 for p in halved.parameters())
    for name, value in halved.state_dict().items():
        torch.testing.assert_close(value, generator.state_dict()[name].half().float(),
                                   rtol=0, atol=0)
    reference, output = synthesise(generator, seed=2), synthesise(halved, seed=2)
    assert not torch.equal(reference, output)
    torch.testing.assert_close(output, reference, rtol=0, atol=2e-3)
    with safe_open(str(half), framework="pt") as handle:
        assert json.loads(handle.metadata()["training"])["steps"] == 7


def test_foreign_files_are_refused(tmp_path):
    foreign = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign), {"kind": "fscan-nsf-vocoder"})
    with pytest.raises(ValueError, match="not an fscan HiFi-GAN vocoder"):
        gv.load_gan_vocoder(str(foreign))
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))
    with pytest.raises(ValueError, match="not an fscan HiFi-GAN vocoder"):
        gv.load_gan_vocoder(str(bare))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint" * 8)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        gv.load_gan_vocoder(str(garbage))
    with pytest.raises(OSError):
        gv.load_gan_vocoder(str(tmp_path / "missing.safetensors"))
    unconfigured = tmp_path / "unconfigured.safetensors"
    save_file({"w": torch.zeros(2)}, str(unconfigured), {"kind": gv.CHECKPOINT_KIND})
    with pytest.raises(ValueError, match="no usable vocoder configuration"):
        gv.load_gan_vocoder(str(unconfigured))


# -------------------------------------------------------------------------- synthesis

@pytest.mark.parametrize("n", [8000, 12345, 8001, gv.N_FFT + 1])
def test_copy_synthesis_keeps_the_length_and_ignores_the_input_gain(trained, speechlike, n):
    generator, log_mel = gv.load_gan_vocoder(str(trained[0]))
    audio = speechlike(1.0, seed=6)[:n]
    output = gv.gan_copy_synthesis(generator, log_mel, audio)
    assert output.shape == (n,) and output.dtype == np.float64
    assert np.all(np.isfinite(output)) and np.abs(output).max() <= 1.0 and rms(output) > 0
    quiet = gv.gan_copy_synthesis(generator, log_mel, 0.1 * audio)
    np.testing.assert_allclose(quiet, output, rtol=0, atol=1e-5)


def test_copy_synthesis_refuses_clips_shorter_than_one_analysis_window(trained):
    generator, log_mel = gv.load_gan_vocoder(str(trained[0]))
    for bad in (np.ones(gv.N_FFT - 1), np.zeros(0), np.ones((2, 4000))):
        with pytest.raises(ValueError, match="expected mono audio of at least"):
            gv.gan_copy_synthesis(generator, log_mel, bad)


def test_copy_synthesis_applies_a_transform_to_the_frames(trained, speechlike):
    generator, log_mel = gv.load_gan_vocoder(str(trained[0]))
    audio = speechlike(0.5, seed=7)[:7777]
    seen = []

    def identity(mel):
        seen.append(mel.shape)
        return mel

    plain = gv.gan_copy_synthesis(generator, log_mel, audio)
    np.testing.assert_array_equal(
        gv.gan_copy_synthesis(generator, log_mel, audio, transform=identity), plain)
    assert seen == [(gv.N_MELS, math.ceil(7777 / gv.HOP))]
    shifted = gv.gan_copy_synthesis(generator, log_mel, audio, transform=lambda m: m[::-1] + 1)
    assert shifted.shape == plain.shape and not np.allclose(shifted, plain)


# ---------------------------------------------------------------------- stand-alone trainer

def test_main_trains_from_a_saved_pack_without_librosa(tmp_path, speechlike, monkeypatch,
                                                       capsys):
    packed = gv.pack_clips([speechlike(0.8, seed=8)])
    packed_path = tmp_path / "packed.npz"
    np.savez(packed_path, **packed)
    out = tmp_path / "hifigan.safetensors"
    monkeypatch.setitem(sys.modules, "librosa", None)  # a lent machine has no librosa
    monkeypatch.setattr(gv, "SEGMENT", SHORT_CROP)  # a full crop would add 4 s
    widths = []
    full_width_judges = gv.Discriminators
    monkeypatch.setattr(gv, "Discriminators",
                        lambda width: widths.append(width) or full_width_judges(width))
    gv.main([str(packed_path), str(out), "--max-steps", "1", "--channels", "16",
             "--batch-size", "2", "--device", "cpu", "--half", "--seed", "3",
             "--judge-width", "0.25"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 1 and widths == [0.25]
    generator, log_mel = gv.load_gan_vocoder(str(out))
    assert generator.config == TINY
    assert load_file(str(out))["pre.parametrizations.weight.original1"].dtype == torch.float16
    np.testing.assert_array_equal(log_mel.filterbank.numpy(), packed["filterbank"])
    with pytest.raises(SystemExit):
        gv.main([str(packed_path)])  # the output path is required


# ---------------------------------------------------------- the build-dataset generator

def test_hifigan_generator_makes_a_twin_at_its_originals_level(trained, monkeypatch):
    from forensics_scan import generators, synthesis

    path, _, _ = trained
    monkeypatch.setenv(synthesis.HIFIGAN_VOCODER_ENV, str(path))
    generator = generators.GENERATORS["hifigan"]
    assert generator.available() and not generator.default  # opt-in: needs trained weights
    options = generator.sample_options(np.random.default_rng(0))
    assert options["checkpoint"] == str(path) and len(options["checkpoint_sha256"]) == 64
    source = 0.3 * voice(170, 1.1, 4)
    twin = generator(source, **options)
    assert twin.shape == source.shape
    assert synthesis.rms(twin) == pytest.approx(synthesis.rms(source), rel=0.01)
    with pytest.raises(synthesis.GeneratorUnavailable, match="not the vocoder"):
        generator(source, **{**options, "checkpoint_sha256": "0" * 64})


def test_hifigan_at_another_rate_vocodes_stretched_speech_and_gives_the_speech_back(
        trained, monkeypatch):
    from forensics_scan import generators, synthesis

    path, _, _ = trained
    monkeypatch.setenv(synthesis.HIFIGAN_VOCODER_ENV, str(path))
    generator = generators.GENERATORS["hifigan_rate"]
    options = generator.sample_options(np.random.default_rng(0))
    assert options["rate"] in generators.HIFIGAN_RATES
    source = 0.3 * voice(170, 1.1, 4)
    seen = []

    def identity(generator, log_mel, audio):  # a perfect vocoder: what goes in comes out
        seen.append(audio.size)
        return audio

    with monkeypatch.context() as patch:
        patch.setattr(gv, "gan_copy_synthesis", identity)
        back = synthesis.hifigan_vocoder(source, checkpoint=str(path), rate=24000)
    # the vocoder saw 1.5 times the samples (the speech slowed down to it), and the
    # speech came back at its own pitch and length: only the vocoder's traces move
    assert seen == [pytest.approx(1.5 * source.size, abs=2)]
    assert back.shape == source.shape
    assert np.corrcoef(back[100:-100], source[100:-100])[0, 1] > 0.999
    shifted = generator(source, **options)  # the trained one, through build-dataset's door
    assert shifted.shape == source.shape
    assert synthesis.rms(shifted) == pytest.approx(synthesis.rms(source), rel=0.01)
    with pytest.raises(ValueError, match="at least 16000"):
        synthesis.hifigan_vocoder(source, checkpoint=str(path), rate=8000)


def test_hifigan_generator_without_usable_weights_says_so(tmp_path, monkeypatch):
    from forensics_scan import generators, synthesis

    monkeypatch.setenv(synthesis.HIFIGAN_VOCODER_ENV, str(tmp_path / "missing.safetensors"))
    assert "fscan train-vocoder" in generators.GENERATORS["hifigan"].missing()
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    with pytest.raises(synthesis.GeneratorUnavailable, match="hifigan vocoder .* cannot be"):
        synthesis.hifigan_vocoder(voice(150, 0.5), checkpoint=str(corrupt))


# ------------------------------------------------------- the published V1 generators

def published_names(state: dict) -> dict:
    """fscan's parameter names as Kong et al.'s repository writes them (the inverse of
    ``load_published_hifigan``'s renaming)."""
    blocks = len(gv.PUBLISHED.resblock_kernels)
    renamed = {}
    for name, tensor in state.items():
        parts = name.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v").split(".")
        if parts[0] == "fusions":
            stage, kernel, kind = int(parts[1]), int(parts[2]), parts[3]
            convs = "convs1" if kind == "dilated" else "convs2"
            parts = ["resblocks", str(stage * blocks + kernel), convs] + parts[4:]
        else:
            parts[0] = {"pre": "conv_pre", "upsample": "ups", "post": "conv_post"}[parts[0]]
        renamed[".".join(parts)] = tensor
    return renamed


def test_published_checkpoint_loads_into_the_same_network(tmp_path):
    torch.manual_seed(0)
    original = gv.HifiGanGenerator(gv.PUBLISHED).eval()
    path = tmp_path / "generator_universal.pth.tar"
    state = published_names(original.state_dict())
    assert "resblocks.11.convs2.2.weight_v" in state and "ups.3.weight_g" in state
    torch.save({"generator": state}, path)

    generator, log_mel = gv.load_published_hifigan(str(path))

    assert log_mel.hop == 256 and log_mel.filterbank.shape == (gv.N_MELS, gv.N_FFT // 2 + 1)
    mel = torch.randn(1, gv.N_MELS, 4) - 4
    with torch.no_grad():
        assert torch.equal(generator(mel), original(mel))
        assert generator(mel).shape == (1, 4 * 256)


def test_a_file_that_is_not_a_published_generator_is_refused(tmp_path):
    path = tmp_path / "other.pth.tar"
    torch.save({"model": {}}, path)
    with pytest.raises(ValueError, match="not a published HiFi-GAN"):
        gv.load_published_hifigan(str(path))
    torch.save({"generator": {"conv_pre.bias": torch.zeros(3)}}, path)
    with pytest.raises(ValueError, match="does not fit HiFi-GAN V1"):
        gv.load_published_hifigan(str(path))


def test_log_mel_at_another_hop_gives_one_frame_per_hop(filterbank):
    assert gv.LogMel(filterbank, hop=256)(torch.randn(1, 25600) * 0.05).shape == (1, 80, 100)


# ---------------------------------------------- the 16 kHz TorchScript generator

class _FrameToSamples(torch.nn.Module):
    """A stand-in TorchScript vocoder: ``hop`` samples a frame, shaped as Kong et al.'s
    generator returns them, (batch, 1, samples)."""

    def __init__(self, hop: int):
        super().__init__()
        self.up = torch.nn.ConvTranspose1d(gv.N_MELS, 1, hop, hop)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.up(mel))


def test_a_torchscript_vocoder_loads_with_its_log_mel(tmp_path):
    torch.manual_seed(0)
    original = _FrameToSamples(gv.HOP)
    path = tmp_path / "vocoder.ts"
    torch.jit.save(torch.jit.script(original), str(path))

    generator, log_mel = gv.load_torchscript_hifigan(str(path))

    mel = torch.randn(1, gv.N_MELS, 4)
    with torch.no_grad():
        assert torch.allclose(generator(mel), original(mel)[:, 0])  # (batch, samples)
    assert log_mel.hop == gv.HOP
    # the 800-sample Hann window sits in the middle of the 1024-point frame
    window = log_mel.window
    assert window.shape == (gv.N_FFT,) and int((window > 0).sum()) == gv.TORCHSCRIPT_WINDOW - 1
    assert torch.equal(window[112:912], torch.hann_window(gv.TORCHSCRIPT_WINDOW))


def test_the_log_mel_window_is_torch_stfts_shorter_window(filterbank):
    audio = torch.randn(1, 16000) * 0.05
    ours = gv.LogMel(filterbank, window_length=800)(audio)
    pad = (gv.N_FFT - gv.HOP) // 2
    padded = torch.nn.functional.pad(audio[:, None], (pad, pad), mode="reflect")[:, 0]
    spectrum = torch.stft(padded, gv.N_FFT, gv.HOP, win_length=800,
                          window=torch.hann_window(800), center=False, return_complex=True)
    theirs = torch.log(torch.clamp(torch.as_tensor(filterbank) @ spectrum.abs(), min=1e-5))
    assert torch.allclose(ours, theirs, atol=1e-4)
    # the full-length window is the one fscan's own vocoders were trained with
    assert torch.equal(gv.LogMel(filterbank).window, torch.hann_window(gv.N_FFT))


def test_a_file_that_is_not_a_16_khz_torchscript_vocoder_is_refused(tmp_path):
    path = tmp_path / "vocoder.ts"
    path.write_bytes(b"not a TorchScript archive")
    with pytest.raises(ValueError, match="not a TorchScript vocoder"):
        gv.load_torchscript_hifigan(str(path))
    torch.jit.save(torch.jit.script(_FrameToSamples(256)), str(path))  # a 22.05 kHz hop
    with pytest.raises(ValueError, match=r"not \(1, 1, 320\)"):
        gv.load_torchscript_hifigan(str(path))

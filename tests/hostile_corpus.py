"""A corpus of broken, strange and hostile inputs, generated on demand (issue 5).

``build_corpus(root)`` writes every case under ``root`` and returns one ``HostileCase``
per report row the scan must produce. Paths are relative to ``root``: the tests scan
from inside it, giving the top-level entries as arguments the way ``fscan -- *`` would,
so that names such as ``=1+1.wav`` reach the reports as the first character of a cell.

Nothing here is committed as a binary: every file is made from seeded signals and
hand-built headers each time.
"""

import io
import os
import struct
from dataclasses import dataclass
from typing import List

import numpy as np
import soundfile as sf

OK, SKIPPED, ERROR = "ok", "skipped", "error"  # mirrors forensics_scan.results

NOT_UTF8 = "file name that is not valid UTF-8"  # audio.py opens it by its bytes

SIGNAL_SECONDS = 1.2  # one segment per scored file keeps the scan fast


@dataclass(frozen=True)
class HostileCase:
    """One expected report row: the path as reported, its status, and what is odd."""

    path: str  # relative to the corpus root, exactly as the reports must show it
    expected: str  # OK, SKIPPED or ERROR
    what: str  # the hostile property, for messages
    reason: str = ""  # a fragment the reported reason must contain (error/skipped)


def voice(seconds: float = SIGNAL_SECONDS, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A seeded voiced-speech stand-in (harmonics of a wandering F0 plus noise), peak 0.3."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f0 = 130 + 25 * np.sin(2 * np.pi * 0.8 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    harmonics = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k
                    for k in range(1, 25) if k * 160 < 0.45 * sr)
    signal = harmonics * (0.2 + 0.8 * np.sin(np.pi * 3 * t) ** 2)
    signal = 0.3 * signal / np.abs(signal).max() + 0.003 * rng.standard_normal(t.size)
    return signal.astype(np.float32)


def build_corpus(root: str, with_unreadable: bool = None) -> List[HostileCase]:
    """Write the hostile corpus under ``root``; return the rows a scan must report.

    ``with_unreadable`` adds a file and a folder without read permission; by default
    only when not running as root (root reads them anyway).
    """
    if with_unreadable is None:
        with_unreadable = os.geteuid() != 0
    cases: List[HostileCase] = []

    def path(relative: str) -> str:
        full = os.path.join(root, relative)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        return full

    def audio(relative, expected, what, data=None, sr=16000, subtype="PCM_16", fmt=None,
              seed=0, reason=""):
        if data is None:
            data = voice(sr=sr, seed=seed)
        sf.write(path(relative), data, sr, subtype=subtype, format=fmt)
        cases.append(HostileCase(relative, expected, what, reason))

    def raw(relative, expected, what, content: bytes, reason="corrupt audio"):
        with open(path(relative), "wb") as handle:
            handle.write(content)
        cases.append(HostileCase(relative, expected, what, reason if expected != OK else ""))

    rng = np.random.default_rng(5)

    # --- damaged or foreign bytes --------------------------------------------------------
    raw("empty.wav", ERROR, "zero-byte file", b"", reason="empty file")
    raw("text.wav", ERROR, "text named .wav", b"Minutes of the meeting, 3 May.\n" * 40)
    raw("text.mp3", ERROR, "text named .mp3", b"ID3? no: just a shopping list.\n" * 40)
    raw("random.wav", ERROR, "random bytes named .wav", rng.bytes(8192))
    raw("random.mp3", ERROR, "random bytes named .mp3", rng.bytes(8192))
    flac = path("truncated.flac")
    sf.write(flac, voice(2.0, seed=7), 16000, format="FLAC")
    with open(flac, "r+b") as handle:  # an interrupted copy: libsndfile loses sync
        handle.truncate(os.path.getsize(flac) // 2)
    cases.append(HostileCase("truncated.flac", ERROR, "FLAC cut in half", "decoding failed"))
    mp3 = io.BytesIO()
    sf.write(mp3, voice(6.0, seed=9), 16000, format="MP3")
    damaged_mp3 = bytearray(mp3.getvalue())
    flips = np.random.default_rng(5)  # these 40 bytes make libmpg123 stop after 2.0 s
    for at in flips.integers(len(damaged_mp3) // 4, len(damaged_mp3) - 10, 40):
        damaged_mp3[at] = flips.integers(0, 256)
    raw("damaged.mp3", OK, "MP3 whose decoder stops early without an error",
        bytes(damaged_mp3))
    cases[-1] = HostileCase("damaged.mp3", OK, cases[-1].what, "header announces")
    mp3 = io.BytesIO()
    sf.write(mp3, voice(6.0, seed=3), 16000, format="MP3")
    garbled_mp3 = bytearray(mp3.getvalue())
    for at in range(len(garbled_mp3) // 4, len(garbled_mp3) - 10, 251):
        garbled_mp3[at] ^= 0xA5  # libmpg123 decodes on, complaining on stderr
    raw("garbled.mp3", OK, "MP3 with damaged frames the decoder complains of",
        bytes(garbled_mp3))
    cases[-1] = HostileCase("garbled.mp3", OK, cases[-1].what, "the decoder reported")
    raw("truncated_data.wav", OK, "WAV whose data chunk is cut mid-sample",
        _wav_bytes(voice(2.0, seed=1))[:44 + 16001])
    raw("huge_header.wav", OK, "WAV whose header claims 4 GB",
        _wav_bytes(voice(seed=2), riff_size=0xFFFFFFF0, data_size=0xFFFFFF00))

    # --- nothing (or nothing usable) to judge ---------------------------------------------
    audio("one_sample.wav", SKIPPED, "a single sample", np.array([0.25], np.float32),
          reason="too short")
    audio("zero_frames.wav", SKIPPED, "valid header, zero frames", np.zeros(0, np.float32),
          reason="too short")
    audio("silence.wav", SKIPPED, "pure digital silence", np.zeros(16000, np.float32),
          reason="silence")
    all_nan = np.full(16000, np.nan, np.float32)  # sanitised to zeros, so silence too
    audio("all_nan.wav", SKIPPED, "float WAV of NaN only", all_nan, subtype="FLOAT",
          reason="silence")
    audio("steady_noise.wav", SKIPPED, "3 s of steady white noise, no speech",
          (0.05 * rng.standard_normal(48000)).astype(np.float32), reason="no speech")
    audio("mains_hum.wav", SKIPPED, "2 s of 50 Hz hum with harmonics, no speech",
          (0.2 * np.sign(np.sin(2 * np.pi * 50 * np.arange(32000) / 16000))).astype(np.float32),
          reason="no speech")

    # --- odd but valid signals -------------------------------------------------------------
    audio("dc_offset.wav", OK, "speech on a 0.5 DC offset", voice(seed=3) + 0.5)
    audio("clipped.wav", OK, "hard clipping of the louder syllables",
          np.clip(voice(seed=4) * 8, -1, 1))
    # clipped so hard that every syllable is the same full-scale square wave: a steady buzz
    audio("square_buzz.wav", SKIPPED, "voice clipped into a steady square-wave buzz",
          np.clip(voice(seed=4) * 50, -1, 1), reason="no speech")
    damaged = voice(seed=5)
    damaged[::97] = np.nan
    damaged[50::211] = np.inf
    damaged[80::307] = -np.inf
    audio("nan_inf.wav", OK, "float WAV containing NaN and +/-Inf", damaged, subtype="FLOAT")
    audio("int16_range_float.wav", OK, "float WAV holding int16-range values (peak ~9,800)",
          voice(seed=12) * 32767, subtype="FLOAT", reason="times full scale: scaled down")

    # --- rates, channels, sample formats, containers ----------------------------------
    for sr in (8000, 11025, 96000):
        audio(f"rate_{sr}.wav", OK, f"{sr} Hz", voice(sr=sr, seed=6), sr=sr)
    audio("rate_100.wav", SKIPPED, "100 Hz header (a wrong rate)", voice(sr=16000, seed=6),
          sr=100, reason="too slow to carry speech")
    audio("antiphase.wav", OK, "stereo whose right channel is the left inverted",
          np.stack([voice(seed=6), -voice(seed=6)], axis=1), reason="ran against channel 1")
    audio("six_channels.wav", OK, "6 channels",
          np.stack([voice(seed=10 + c) for c in range(6)], axis=1))
    audio("pcm_u8.wav", OK, "8-bit unsigned PCM", subtype="PCM_U8")
    audio("pcm_24.wav", OK, "24-bit PCM", subtype="PCM_24")
    audio("float64.wav", OK, "64-bit float", subtype="DOUBLE")
    audio("ulaw.wav", OK, "u-law", subtype="ULAW")
    audio("flac_inside.wav", OK, "FLAC named .wav", fmt="FLAC")
    audio("UPPER.WAV", OK, "upper-case extension")
    audio("Mixed.FlAc", OK, "mixed-case extension", fmt="FLAC")

    # --- names -------------------------------------------------------------------------
    hostile_names = {
        "with spaces in it.wav": "spaces",
        "quote's \"double\".wav": "single and double quotes",
        "comma, separated.wav": "comma",
        "new\nline.wav": "newline",
        "録音_Ωμέγα_запись_تسجيل.wav": "non-Latin scripts",
        "<img src=x onerror=alert(1)>.wav": "HTML markup",
        "=1+1.wav": "formula (=)",
        "@SUM(1).wav": "formula (@)",
        "+x.wav": "formula (+)",
        "-2+3.wav": "formula (-) that also looks like an option",
        "\ttab.wav": "leading tab",
        "\rreturn.wav": "leading carriage return",
        "\x1b[2Jclear.wav": "terminal escape sequence",
    }
    for seed, (name, what) in enumerate(hostile_names.items(), start=20):
        audio(name, OK, what, voice(0.6, seed=seed))

    # --- hidden files, command-like folders, links ---------------------------------------
    audio(os.path.join("hidden", ".secret.wav"), OK, "hidden file inside a folder")
    audio(os.path.join("hidden", ".dotfolder", "inner.wav"), OK, "file in a hidden folder")
    raw(os.path.join("hidden", "._appledouble.wav"), ERROR, "macOS AppleDouble metadata",
        b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4000))
    audio(os.path.join("train", "in_train.wav"), OK, "folder named like a subcommand")
    audio(os.path.join("loop", "looped.wav"), OK, "folder holding a link to itself")
    os.symlink(".", path(os.path.join("loop", "again")))
    os.symlink("does-not-exist.wav", path("broken_link.wav"))
    cases.append(HostileCase("broken_link.wav", ERROR, "broken symbolic link",
                             "broken symbolic link"))
    os.symlink("self_loop.wav", path("self_loop.wav"))
    cases.append(HostileCase("self_loop.wav", ERROR, "symbolic link loop", "link loop"))
    os.mkfifo(path("named_pipe.wav"))  # reading it would block the scan for ever
    cases.append(HostileCase("named_pipe.wav", ERROR, "named pipe with an audio name",
                             "not a regular file"))
    latin1 = os.fsdecode(b"caf\xe9_latin1.wav")  # not UTF-8: reaches Python as a surrogate
    sf.write(path("latin1.tmp.wav"), voice(0.6, seed=40), 16000)
    try:
        os.rename(path("latin1.tmp.wav"), path(latin1))
    except (OSError, UnicodeError):  # a file system that insists on UTF-8 names
        os.remove(path("latin1.tmp.wav"))
    else:
        cases.append(HostileCase(latin1, OK, NOT_UTF8))
    if with_unreadable:  # in a folder: named as arguments, click refuses them (cli.py)
        unreadable = os.path.join("permissions", "no_permission.wav")
        audio(unreadable, ERROR, "no read permission", reason="Permission denied")
        os.chmod(path(unreadable), 0)
        locked = os.path.join("permissions", "locked_folder")
        os.makedirs(path(os.path.join(locked, "inside")))
        os.chmod(path(locked), 0)
        cases.append(HostileCase(locked, ERROR, "folder without permission",
                                 "cannot list folder"))
    return sorted(cases, key=lambda case: case.path)


def restore_permissions(root: str) -> None:
    """Undo the chmods of ``build_corpus`` so that the corpus can be deleted."""
    for name in ("no_permission.wav", "locked_folder"):
        full = os.path.join(root, "permissions", name)
        if os.path.lexists(full):
            os.chmod(full, 0o755)


def top_level_arguments(root: str) -> List[str]:
    """What ``fscan -- *`` passes when run inside ``root``: its visible entries, sorted."""
    return sorted(name for name in os.listdir(root) if not name.startswith("."))


def _wav_bytes(samples: np.ndarray, sr: int = 16000, riff_size: int = None,
               data_size: int = None) -> bytes:
    """A 16-bit mono WAV built by hand, so that its size fields can lie."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    data_size = len(pcm) if data_size is None else data_size
    riff_size = 36 + len(pcm) if riff_size is None else riff_size
    header = (b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
              + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16)
              + b"data" + struct.pack("<I", data_size))
    return header + pcm

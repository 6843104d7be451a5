"""Regenerate ``sample_audio/`` from sources that package managers install.

Genuine speech comes from two packages, fetched into a temporary folder:

* the CMU ARCTIC sentence ``arctic_a0007.wav`` inside the **source** distribution of
  pysptk on PyPI (``pip download``; CMU ARCTIC licence, BSD-style);
* the channel-test voice clips of Debian's alsa-utils (``apt-get download``, then
  ``dpkg-deb -x``; ``/usr/share/sounds/alsa/*.wav``; GPL-2).

Synthetic speech is made from that genuine speech with ``forensics_scan.synthesis``
(copy-synthesis, so speaker and words stay the same) and with the Debian TTS programs
espeak-ng, flite and festival (skipped with a warning when not installed). Everything is
seeded; the decoded samples are the same on every run (the Ogg container's serial number
is random, so that file's bytes differ).

Usage (from the repository root, on Debian or Ubuntu)::

    apt-get install -y --no-install-recommends espeak-ng flite festival \
        festvox-kallpc16k festvox-us-slt-hts festlex-cmu
    python scripts/make_sample_audio.py --out sample_audio
"""

import argparse
import csv
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import soundfile as sf

# importable from a plain checkout, without installing fscan
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from forensics_scan import synthesis, tts  # noqa: E402
from forensics_scan.audio import SAMPLE_RATE, load_audio  # noqa: E402

PYSPTK_VERSION = "1.0.1"
# speaker-test's order; the package's Noise.wav is not speech
ALSA_ORDER = ("Front_Left", "Front_Center", "Front_Right", "Side_Left", "Side_Right",
              "Rear_Left", "Rear_Center", "Rear_Right")
SENTENCE = "Please check the weather report before the meeting starts this afternoon."
COMMAND = "python scripts/make_sample_audio.py --out sample_audio"
FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"),
           ".ogg": ("OGG", "VORBIS"), ".mp3": ("MP3", "MPEG_LAYER_III")}


def fetch_arctic(folder):
    """Download the pysptk sdist; return (16 kHz audio, COPYING text, version)."""
    # "--no-binary pysptk" rather than ":all:": the latter also forces Cython, a build
    # dependency needed to read the sdist's metadata, to compile from source, which fails
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--no-binary", "pysptk", f"pysptk=={PYSPTK_VERSION}", "-d", folder],
                   check=True)
    (archive,) = glob.glob(os.path.join(folder, f"pysptk-{PYSPTK_VERSION}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(folder, members=[m for m in tar.getmembers()
                                        if "/example_audio_data/" in m.name], filter="data")
    data = os.path.join(folder, f"pysptk-{PYSPTK_VERSION}", "pysptk", "example_audio_data")
    with open(os.path.join(data, "COPYING"), encoding="utf-8") as handle:
        notice = handle.read()
    return load_audio(os.path.join(data, "arctic_a0007.wav")), notice, PYSPTK_VERSION


def fetch_alsa(folder):
    """Download and unpack alsa-utils; return ({name: 16 kHz audio}, copyright, version)."""
    for program in ("apt-get", "dpkg-deb"):
        if shutil.which(program) is None:
            sys.exit(f"{program} not found: this script needs Debian or Ubuntu")
    subprocess.run(["apt-get", "download", "alsa-utils"], cwd=folder, check=True,
                   stdout=subprocess.DEVNULL)
    (deb,) = glob.glob(os.path.join(folder, "alsa-utils_*.deb"))
    version = subprocess.run(["dpkg-deb", "-f", deb, "Version"], check=True,
                             capture_output=True, text=True).stdout.strip()
    root = os.path.join(folder, "alsa-utils")
    subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    sounds = os.path.join(root, "usr", "share", "sounds", "alsa")
    clips = {name: load_audio(os.path.join(sounds, f"{name}.wav")) for name in ALSA_ORDER}
    with open(os.path.join(root, "usr", "share", "doc", "alsa-utils", "copyright"),
              encoding="utf-8") as handle:
        return clips, handle.read(), version


def debian_version(package):
    completed = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                               capture_output=True, text=True)
    return completed.stdout.strip() if completed.returncode == 0 else "unknown"


def write(out, name, audio):
    fmt, subtype = FORMATS[os.path.splitext(name)[1].lower()]
    sf.write(os.path.join(out, name), audio, SAMPLE_RATE, format=fmt, subtype=subtype)
    return audio.size / SAMPLE_RATE


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="sample_audio", help="folder to (re)create")
    out = parser.parse_args().out
    os.makedirs(out, exist_ok=True)
    _remove_previous(out)

    with tempfile.TemporaryDirectory(prefix="fscan-samples-") as folder:
        arctic, arctic_notice, pysptk_version = fetch_arctic(folder)
        alsa, alsa_copyright, alsa_version = fetch_alsa(folder)
    alsa_all = np.concatenate([alsa[name] for name in ALSA_ORDER])
    arctic_src = (f"CMU ARCTIC `arctic_a0007.wav` from the pysptk {pysptk_version} sdist (PyPI)",
                  "CMU ARCTIC licence (BSD-style, see COPYING.cmu_arctic)")
    alsa_src = (f"the 8 voice clips of Debian alsa-utils {alsa_version}, joined in the order "
                f"{', '.join(ALSA_ORDER)}", "GPL-2 (see COPYING.alsa-utils)")
    rows = []  # (file, genuine?, generator, what, source, licence, start_s, end_s)

    def add(name, audio, label, generator, what, source):
        seconds = write(out, name, audio)
        rows.append((name, label, generator, what, source[0], source[1], 0.0, seconds))

    with synthesis.single_threaded():
        add("genuine_arctic.wav", arctic, "real", "bonafide",
            "a read English sentence (CMU ARCTIC prompt a0007), studio, 16 kHz", arctic_src)
        add("genuine_alsa_voice.flac", alsa_all, "real", "bonafide",
            "a voice naming loudspeaker channels, resampled 48 -> 16 kHz", alsa_src)
        add("synthetic_world_dio_arctic.WAV", synthesis.world_dio(arctic), "fake", "world_dio",
            "WORLD vocoder copy-synthesis (DIO F0) of genuine_arctic.wav; upper-case extension",
            _derived(arctic_src))
        add("synthetic_world_coded24_arctic.flac", synthesis.world_coded(arctic, f0_scale=1.15),
            "fake", "world_coded24", "WORLD with a 24-dim coded envelope, F0 x 1.15, "
            "of genuine_arctic.wav", _derived(arctic_src))
        add("synthetic_griffin_lim_mel80_alsa.ogg", synthesis.griffin_lim_mel(alsa_all, seed=0),
            "fake", "griffin_lim_mel80", "Griffin-Lim from an 80-bin mel spectrogram of "
            "genuine_alsa_voice.flac, Ogg Vorbis", _derived(alsa_src))
        add("synthetic_lpc18_arctic.mp3", synthesis.lpc_vocoder(arctic, seed=0), "fake",
            "lpc18", "order-18 LPC vocoder copy-synthesis of genuine_arctic.wav, MP3",
            _derived(arctic_src))
        _add_tts(add)
        _add_long(out, rows, arctic, alsa, arctic_src, alsa_src)

    with open(os.path.join(out, "COPYING.cmu_arctic"), "w", encoding="utf-8") as handle:
        handle.write(arctic_notice)
    with open(os.path.join(out, "COPYING.alsa-utils"), "w", encoding="utf-8") as handle:
        handle.write(alsa_copyright)
    _write_labels(out, rows)
    _write_readme(out, rows, pysptk_version, alsa_version)
    total = sum(os.path.getsize(path) for path in glob.glob(os.path.join(out, "*")))
    print(f"wrote {len(rows)} audio files to {out} ({total / 1e6:.2f} MB)")


def _remove_previous(out):
    # only what an earlier run wrote (listed in its labels.csv), never other files
    labels = os.path.join(out, "labels.csv")
    names = {"README.md", "labels.csv", "COPYING.cmu_arctic", "COPYING.alsa-utils"}
    if os.path.exists(labels):
        with open(labels, newline="", encoding="utf-8") as handle:
            names |= {row["path"] for row in csv.DictReader(handle)}
    for name in names:
        path = os.path.join(out, os.path.basename(name))
        if os.path.isfile(path):
            os.remove(path)


def _derived(source):
    return (f"made by fscan from {source[0]}", f"{source[1]}; modified: resynthesised")


def _add_tts(add):
    voices = (
        ("synthetic_espeak_ng.flac", "espeak_ng", tts.espeak_tts,
         {"voice": "en-us+f3", "rate_wpm": 160, "pitch": 55}, "espeak-ng",
         "espeak-ng is GPL-3+, run as a separate program; the audio is its output for "
         "fscan's own text"),
        ("synthetic_flite_slt.wav", "flite_slt", tts.flite_tts, {"voice": "slt"},
         "flite", "flite and its slt voice: BSD-style CMU licence"),
        ("synthetic_festival_kal_diphone.FLAC", "festival_kal_diphone", tts.festival_tts,
         {"voice": "kal_diphone"}, "festvox-kallpc16k",
         "festival: X11-style; kal voice: CMU/CSTR permissive"),
        ("synthetic_festival_slt_hts.flac", "festival_cmu_us_slt_arctic_hts",
         tts.festival_tts, {"voice": "cmu_us_slt_arctic_hts"}, "festvox-us-slt-hts",
         "festival: X11-style; slt HTS voice: BSD-style"),
    )
    for name, generator, function, options, package, licence in voices:
        try:
            audio = function(SENTENCE, rms_dbfs=-24.0, **options)
        except synthesis.GeneratorUnavailable as error:
            print(f"skipping {name}: {error}", file=sys.stderr)
            continue
        source = (f"text written for fscan, spoken by Debian {package} {debian_version(package)}",
                  licence)
        settings = ", ".join(f"{key}={value}" for key, value in options.items())
        add(name, audio, "fake", generator, f"TTS ({settings}) of: \"{SENTENCE}\"", source)


def _add_long(out, rows, arctic, alsa, arctic_src, alsa_src):
    # The packages hold only ~15 s of genuine speech, so the genuine parts reuse it: the
    # insert is the WORLD copy of speech heard again, genuinely, after it.
    before = np.concatenate([alsa[name] for name in ALSA_ORDER])
    insert = synthesis.world_dio(np.concatenate([arctic, alsa["Side_Left"], alsa["Side_Right"]]))
    after = np.concatenate([arctic, alsa["Front_Left"], alsa["Front_Center"],
                            alsa["Front_Right"], alsa["Rear_Left"]])
    name = "long_genuine_with_synthetic_insert.flac"
    total = write(out, name, np.concatenate([before, insert, after]))
    start, end = before.size / SAMPLE_RATE, (before.size + insert.size) / SAMPLE_RATE
    source = (f"{arctic_src[0]}; {alsa_src[0]}", f"{arctic_src[1]}; {alsa_src[1]}")
    rows.append((name, "real", "bonafide", "genuine: the alsa-utils clips", *alsa_src, 0.0, start))
    rows.append((name, "fake", "world_dio", "synthetic insert: WORLD (DIO) copy-synthesis of "
                 "arctic_a0007 + alsa Side_Left + Side_Right", *_derived(source), start, end))
    rows.append((name, "real", "bonafide", "genuine: arctic_a0007 + alsa Front_Left, "
                 "Front_Center, Front_Right, Rear_Left", *source, end, total))


def _write_labels(out, rows):
    with open(os.path.join(out, "labels.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "system", "start_s", "end_s"])
        writer.writerows([row[0], row[1], row[2], f"{row[6]:.3f}", f"{row[7]:.3f}"]
                         for row in rows)


def _write_readme(out, rows, pysptk_version, alsa_version):
    lines = [
        "# Sample audio", "",
        "Short genuine and synthetic speech clips for trying `fscan` and for its end-to-end "
        "test. Every file is regenerated, deterministically, by", "",
        f"    {COMMAND}", "",
        "which downloads the genuine speech with the package managers (the pysptk "
        f"{pysptk_version} source distribution from PyPI via `pip download`, and Debian "
        f"alsa-utils {alsa_version} via `apt-get download`) and makes the synthetic speech "
        "with `forensics_scan.synthesis` and the Debian TTS packages espeak-ng "
        f"{debian_version('espeak-ng')}, flite {debian_version('flite')} and festival "
        f"{debian_version('festival')}. "
        "`labels.csv` gives the label of every file and of every part of the long file, "
        "in seconds. Reruns give the same samples; only the Ogg file's bytes change (its "
        "container serial number is random). Writing the MP3 needs libsndfile >= 1.1.", "",
        "| file | genuine or synthetic | generator | what it is | source | licence | "
        "start-end (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label, generator, what, source, licence, start, end in rows:
        kind = "genuine" if label == "real" else "synthetic"
        lines.append(f"| `{name}` | {kind} | {generator} | {what} | {source} | {licence} | "
                     f"{start:.2f}-{end:.2f} |")
    lines += [
        "", "All files are 16 kHz mono. The genuine recordings were decoded, resampled to "
        "16 kHz (soxr HQ) and concatenated; nothing else was changed. Copy-synthesis outputs "
        "have the RMS level of the genuine speech they were made from; TTS outputs are at "
        "-24 dBFS RMS.", "",
        "CMU ARCTIC data is redistributed under the conditions in `COPYING.cmu_arctic` "
        "(copyright notice kept, modifications marked above, authors' names kept). The "
        "alsa-utils clips are GPL-2; `COPYING.alsa-utils` is that package's Debian copyright "
        "file.", "",
    ]
    with open(os.path.join(out, "README.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


if __name__ == "__main__":
    main()

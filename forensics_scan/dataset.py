"""Build a labelled training set of genuine and synthetic speech.

Recipe (``build_dataset``)
--------------------------
1. **Genuine clips.** Every audio file under ``real_dir`` (recursive). Its split group is
   ``<source folder>:<speaker>`` when ``real_dir/MANIFEST.csv`` names the speaker, else
   ``<source folder>:<file stem>``. Files that cannot be decoded are recorded and left out.
2. **Budget.** Fake audio in total = ``fraction`` x genuine audio. Clips listed by the
   ``neural_dirs`` manifests (neural-vocoder twins, referenced in place, never copied)
   count first; ``tts_share`` of the total goes to TTS; copy-synthesis makes up the rest.
3. **Copy-synthesis twins.** Genuine clips are visited in a seeded random order; each
   gets one vocoder (two with probability ``two_generator_share``; classical ones by
   default, fscan's neural ``nsf`` when named), always the generator with the least
   audio so far, until the budget is spent. A twin is written to
   ``fake/<generator>/<original's relative path>.flac`` at its original's RMS and inherits
   its original's group, so a twin never crosses a train/validation split.
4. **TTS.** Sentences composed here (keywords, commands, wake words, digit strings and
   template sentences of 1-25 words, so clips last ~0.7-10 s like the genuine corpus) are
   spoken by espeak-ng (accents x variants, random rate/pitch), flite and festival voices
   at a random level between -40 and -16 dBFS RMS (the genuine corpus's 5-95 % range).
   Group: ``tts:<engine>:<voice>``. Missing TTS programs are skipped with a warning.
5. **Outputs.** ``MANIFEST.csv`` (``path,label,system,group,original`` for every clip;
   paths under ``out_dir`` are relative to it, others absolute), ``failures.csv``,
   ``plan.csv`` (the source or text and options of every generated clip) and
   ``summary.csv`` (clips, audio seconds and, for clips made by this run rather than
   resumed, seconds of generation work per system).

Everything random is drawn from one ``numpy`` generator seeded with ``seed`` while planning,
before any work is dispatched, so the result does not depend on ``jobs``. A rerun resumes:
an output that exists and was made from the same recipe (``plan.csv`` fingerprint) is kept,
any other is made again. Files are written atomically, so an interrupted run never leaves
a truncated FLAC behind.
"""

import csv
import hashlib
import logging
import os
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np
import soundfile as sf

from . import synthesis
from .generators import COPY_SYNTHESIS, GENERATORS, TTS, Generator
from .audio import MIN_SAMPLES, SAMPLE_RATE, DecodeError, load_audio, probe
from .discovery import find_audio_files
from .labels import REAL_NAMES

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("path", "label", "system", "group", "original")
TTS_LEVEL_DBFS = (-40.0, -16.0)
TTS_WEIGHTS = {"espeak_ng": 3.0}  # many voices in one engine: a larger share; others 1.0
TTS_MIN_SECONDS = (0.7, 1.1)  # keyword clips in the genuine corpus are ~1 s long
TTS_SECONDS_PER_WORD = 0.31  # planning estimate only, fitted on this module's own output
TTS_LEAD_SECONDS = 0.35


@dataclass(frozen=True)
class _Genuine:
    path: str  # absolute
    rel: str  # relative to real_dir, "/"-separated
    group: str
    duration_s: float


@dataclass(frozen=True)
class _Task:
    out_rel: str
    generator: str
    source: str  # genuine path (copy-synthesis) or text (TTS)
    options: dict = field(hash=False)
    group: str = ""
    original: str = ""
    min_s: float = 0.0  # TTS only: pad a one-word clip with silence up to this length


@dataclass(frozen=True)
class _Outcome:
    task: _Task
    ok: bool
    reason: str = ""
    duration_s: float = 0.0
    work_s: float = 0.0  # wall-clock seconds spent making the clip (TTS runs as a child)
    unreadable_source: bool = False


def build_dataset(real_dir: str, out_dir: str, *, neural_dirs: Sequence[str] = (),
                  generators: Optional[Iterable[str]] = None, fraction: float = 1.0,
                  tts_share: float = 0.175, two_generator_share: float = 0.3, seed: int = 0,
                  jobs: int = 1, progress: Optional[Callable[[int, int], None]] = None,
                  strict: bool = False) -> str:
    """Generate synthetic speech from a genuine corpus and write a training manifest.

    Parameters
    ----------
    real_dir : str
        Folder of genuine speech (searched recursively), optionally with a
        ``MANIFEST.csv`` holding ``path`` and ``speaker`` columns.
    out_dir : str
        Where generated FLAC files and the manifests go; created if missing.
    neural_dirs : sequence of str
        Folders with a ``MANIFEST.csv`` of ``path,label,system,genuine_original``;
        their clips are listed in place and count towards the fake budget.
    generators : iterable of str, optional
        Names from ``generators.GENERATORS`` to use (a comma-separated string works too);
        when None, every generator whose ``default`` is set (all but the slow Kokoro).
    fraction : float
        Total fake audio (neural + copy-synthesis + TTS) over genuine audio, in seconds.
    tts_share : float
        Part of the total fake audio spoken by TTS.
    two_generator_share : float
        Probability that a chosen genuine clip gets two copy-synthesis twins.
    seed : int
        Seed of every random choice; the same seed gives the same dataset.
    jobs : int
        Worker processes (joblib) for the generation step.
    progress : callable, optional
        Called as ``progress(done, total)`` after each generated clip.
    strict : bool
        Refuse (ValueError) when a generator to use cannot run here. By default it is
        skipped with a warning and the others share its part: another data set than the
        same seed makes where it runs.

    Returns
    -------
    str
        Path of ``out_dir/MANIFEST.csv``.
    """
    started = time.monotonic()
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    plan = plan_dataset(real_dir, neural_dirs=neural_dirs, generators=generators,
                        fraction=fraction, tts_share=tts_share,
                        two_generator_share=two_generator_share, seed=seed, strict=strict)
    failures = plan.failures
    record_plan(plan.tasks, out_dir)
    outcomes = _run_tasks(plan.tasks, out_dir, jobs, progress)
    unreadable = {o.task.source for o in outcomes if o.unreadable_source}
    for outcome in outcomes:
        if not outcome.ok:
            log.warning("%s failed: %s", outcome.task.out_rel, outcome.reason)
            failures.append({"path": outcome.task.out_rel, "generator": outcome.task.generator,
                             "source": outcome.task.original or outcome.task.source,
                             "reason": outcome.reason})

    rows = [{"path": clip.path, "label": "real", "system": "bonafide", "group": clip.group,
             "original": ""} for clip in plan.genuine if clip.path not in unreadable]
    rows += [{"path": o.task.out_rel, "label": "fake", "system": o.task.generator,
              "group": o.task.group, "original": o.task.original} for o in outcomes if o.ok]
    rows += plan.neural_rows
    manifest = _write_csv(os.path.join(out_dir, "MANIFEST.csv"), MANIFEST_COLUMNS,
                          sorted(rows, key=lambda row: (row["label"], row["system"], row["path"])))
    _write_csv(os.path.join(out_dir, "failures.csv"), ("path", "generator", "source", "reason"),
               failures)
    _write_summary(out_dir, plan.genuine, unreadable, outcomes, plan.neural_rows)
    log.info("dataset built in %.0f s: %d rows, %d failures", time.monotonic() - started,
             len(rows), len(failures))
    return manifest


@dataclass
class Plan:
    """What ``build_dataset`` will make, decided before anything is made."""

    genuine: List[_Genuine]
    neural_rows: List[dict]  # manifest rows of the neural twins, listed in place
    tasks: List[_Task]  # clips to generate
    failures: List[dict]  # genuine or neural files that could not be read


def plan_dataset(real_dir: str, *, neural_dirs: Sequence[str] = (),
                 generators: Optional[Iterable[str]] = None, fraction: float = 1.0,
                 tts_share: float = 0.175, two_generator_share: float = 0.3, seed: int = 0,
                 installed_only: bool = True, strict: bool = False) -> Plan:
    """Plan ``build_dataset`` with the same arguments (steps 1-4), generating nothing.

    A program that makes some twins elsewhere (``scripts/experiments/diffwave_twins.py``,
    on a GPU) plans with this, so its clips are exactly the ones ``build_dataset`` then
    finds and keeps; with ``installed_only=False`` it also plans generators whose program
    or weights are not on this machine (yet).
    """
    failures: List[dict] = []
    chosen = _choose_generators(generators, installed_only, strict)
    genuine = _read_genuine(real_dir, failures)
    neural_rows = _read_neural(neural_dirs, genuine, failures)

    rng = np.random.default_rng(seed)
    genuine_s = sum(clip.duration_s for clip in genuine)
    neural_s = sum(row["duration_s"] for row in neural_rows)
    copy_names = [g.name for g in chosen if g.kind == COPY_SYNTHESIS]
    tts_names = [g.name for g in chosen if g.kind == TTS]
    total_fake_s = fraction * genuine_s
    tts_s = tts_share * total_fake_s if tts_names else 0.0
    copy_s = max(total_fake_s - neural_s - tts_s, 0.0) if copy_names else 0.0
    log.info("genuine %.1f min, neural %.1f min; planning copy-synthesis %.1f min, TTS %.1f min",
             genuine_s / 60, neural_s / 60, copy_s / 60, tts_s / 60)
    tasks = (_plan_copies(genuine, copy_names, copy_s, two_generator_share, rng)
             + _plan_tts(tts_names, tts_s, rng))
    return Plan(genuine, neural_rows, tasks, failures)


# ------------------------------------------------------------------------ inputs

def _choose_generators(names, installed_only: bool = True,
                       strict: bool = False) -> List[Generator]:
    if isinstance(names, str):
        names = [name.strip() for name in names.split(",") if name.strip()]
    named = names is not None
    if names is None:
        names = sorted(name for name, generator in GENERATORS.items()
                       if generator.default)
    names = list(names)
    unknown = [name for name in names if name not in GENERATORS]
    if unknown:
        raise ValueError(f"unknown generator(s) {unknown}; known: {sorted(GENERATORS)}")
    chosen, reasons = [], []
    for name in sorted(set(names)):
        generator = GENERATORS[name]
        missing = generator.missing() if installed_only else ""
        if missing:
            log.warning("generator %s unavailable (%s); skipping it", name, missing)
            reasons.append(f"{name}: {missing}")
        else:
            chosen.append(generator)
    if reasons and (strict or (named and not chosen)):  # none of those named would run
        raise ValueError("generators that cannot run here: " + "; ".join(reasons))
    return chosen


def _read_genuine(real_dir: str, failures: List[dict]) -> List[_Genuine]:
    real_dir = os.path.abspath(real_dir)
    speakers = _read_speakers(os.path.join(real_dir, "MANIFEST.csv"))
    clips = []
    found = find_audio_files([real_dir])
    for path, reason in found.problems:
        failures.append({"path": path, "generator": "bonafide", "source": path, "reason": reason})
    for path in found.files:
        rel = os.path.relpath(path, real_dir).replace(os.sep, "/")
        try:
            duration_s = _duration_s(path)
        except DecodeError as error:
            log.warning("genuine clip %s skipped: %s", path, error)
            failures.append({"path": path, "generator": "bonafide", "source": path,
                             "reason": str(error)})
            continue
        parts = rel.split("/")
        folder = parts[0] if len(parts) > 1 else os.path.basename(real_dir)
        stem = os.path.splitext(parts[-1])[0]
        clips.append(_Genuine(path, rel, f"{folder}:{speakers.get(rel) or stem}", duration_s))
    return clips


def _read_speakers(manifest: str) -> Dict[str, str]:
    if not os.path.exists(manifest):
        return {}
    with open(manifest, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"path", "speaker"} <= set(reader.fieldnames or ()):
            return {}
        return {row["path"].replace(os.sep, "/"): row["speaker"].strip() for row in reader}


def _duration_s(path: str) -> float:
    info = probe(path, read_level=False)  # the header only: no float level read
    samples = (info.frames * SAMPLE_RATE / info.sample_rate if info.frames is not None
               else load_audio(path).size)  # ffmpeg formats do not announce their length
    if samples < MIN_SAMPLES:
        raise DecodeError(f"too short or empty: {samples / SAMPLE_RATE:.3f} s")
    return samples / SAMPLE_RATE


def _read_neural(neural_dirs, genuine: List[_Genuine], failures: List[dict]) -> List[dict]:
    by_rel = {clip.rel: clip for clip in genuine}
    by_path = {os.path.realpath(clip.path): clip for clip in genuine}
    rows = []
    for folder in neural_dirs:
        folder = os.path.abspath(folder)
        with open(os.path.join(folder, "MANIFEST.csv"), newline="", encoding="utf-8") as handle:
            for entry in csv.DictReader(handle):
                path = os.path.join(folder, entry["path"])
                try:
                    duration_s = float(entry.get("duration_s") or "nan")
                    if not np.isfinite(duration_s):
                        duration_s = _duration_s(path)
                    elif not os.path.exists(path):
                        raise DecodeError("file listed in the manifest is missing")
                except (DecodeError, ValueError) as error:  # missing file, bad duration
                    failures.append({"path": path, "generator": entry.get("system", ""),
                                     "source": entry.get("genuine_original", ""),
                                     "reason": str(error)})
                    continue
                original = _match_original(entry.get("genuine_original", ""), folder,
                                           by_rel, by_path)
                genuine_label = (entry.get("label") or "").strip().lower() in REAL_NAMES
                rows.append({"path": path, "label": "real" if genuine_label else "fake",
                             "system": entry.get("system") or os.path.basename(folder),
                             "group": original.group if original else
                             f"neural:{os.path.splitext(os.path.basename(path))[0]}",
                             "original": original.path if original else
                             entry.get("genuine_original", ""), "duration_s": duration_s})
                if original is None and entry.get("genuine_original"):
                    log.warning("original of %s is not in the genuine corpus", path)
    return rows


def _match_original(reference: str, folder: str, by_rel, by_path) -> Optional[_Genuine]:
    if not reference:
        return None
    for base in (os.path.dirname(folder), folder):
        clip = by_path.get(os.path.realpath(os.path.join(base, reference)))
        if clip:
            return clip
    parts = reference.replace(os.sep, "/").split("/")
    for start in range(len(parts)):  # "real/x/y.flac" -> "x/y.flac" -> "y.flac"
        clip = by_rel.get("/".join(parts[start:]))
        if clip:
            return clip
    return None


# ---------------------------------------------------------------------- planning

def _plan_copies(genuine: List[_Genuine], names: List[str], budget_s: float,
                 two_share: float, rng: np.random.Generator) -> List[_Task]:
    if not names or budget_s <= 0:
        return []
    assigned = dict.fromkeys(names, 0.0)
    tasks, spent = [], 0.0
    out_rels = set()
    for index in rng.permutation(len(genuine)):
        if spent >= budget_s:
            break
        clip = genuine[index]
        count = 2 if (len(names) > 1 and rng.random() < two_share) else 1
        tie_break = {name: rng.random() for name in names}
        picks = sorted(names, key=lambda name: (assigned[name], tie_break[name]))[:count]
        for name in picks:
            out_rel = f"fake/{name}/{os.path.splitext(clip.rel)[0]}.flac"
            if out_rel in out_rels:  # x.wav and x.flac side by side
                out_rel = f"fake/{name}/{clip.rel}.flac"
            out_rels.add(out_rel)
            options = GENERATORS[name].sample_options(rng)
            tasks.append(_Task(out_rel, name, clip.path, options, clip.group, clip.path))
            assigned[name] += clip.duration_s
            spent += clip.duration_s
    return tasks


def _plan_tts(names: List[str], budget_s: float, rng: np.random.Generator) -> List[_Task]:
    if not names or budget_s <= 0:
        return []
    weights = {name: TTS_WEIGHTS.get(name, 1.0) for name in names}
    assigned = dict.fromkeys(names, 0.0)
    tasks, spent = [], 0.0
    while spent < budget_s:
        name = min(names, key=lambda n: (assigned[n] / weights[n], n))
        generator = GENERATORS[name]
        text = compose_text(rng, sample_word_count(rng))
        options = generator.sample_options(rng)
        options["rms_dbfs"] = round(float(rng.uniform(*TTS_LEVEL_DBFS)), 2)
        stretch = options.get("duration_stretch", 175.0 / options.get("rate_wpm", 175))
        estimate_s = TTS_LEAD_SECONDS + len(text.split()) * TTS_SECONDS_PER_WORD * stretch
        out_rel = f"fake/{name}/tts_{len(tasks):05d}.flac"
        min_s = round(float(rng.uniform(*TTS_MIN_SECONDS)), 3)
        group = f"tts:{generator.family or generator.engine}:{options['voice']}"
        tasks.append(_Task(out_rel, name, text, options, group, "", min_s))
        assigned[name] += max(estimate_s, min_s)
        spent += max(estimate_s, min_s)
    return tasks


# -------------------------------------------------------------------------- texts

_KEYWORDS = ("yes no up down left right on off stop go zero one two three four five six "
             "seven eight nine bed bird cat dog happy house tree wow backward forward "
             "follow learn visual computer athena amelia hello okay cancel play pause next "
             "repeat volume music weather lights alarm timer").split()
_DIGITS = "zero one two three four five six seven eight nine oh".split()
_WAKE = ("hey computer", "hey mycroft", "okay computer", "hey chatterbox", "hello athena",
         "hey amelia")
_NAMES = "anna peter maria john lucy david sarah tom emma james nora ben".split()
_NOUNS = ("window door garden kitchen letter train report coffee phone river bridge meeting "
          "teacher doctor market ticket picture story camera bottle street forest lamp "
          "computer engine message holiday dinner budget village mountain table").split()
_ADJECTIVES = ("old new small large quiet bright cold warm early late heavy simple strange "
               "yellow green careful busy empty").split()
_PAST = ("opened closed found moved carried painted finished cleaned watched checked sold "
         "fixed left brought").split()
_BASE = "open close find move carry paint finish clean watch check sell fix bring".split()
_IMPERATIVE = "turn on,turn off,open,close,check,play,stop,call,find,start,save".split(",")
_PLACES = ("station office library park school harbour hospital airport museum").split()
_TIMES = ("this morning, last night, on monday, after lunch, before the meeting, "
          "every evening, yesterday, next week, at noon").split(", ")
_PREPOSITIONS = "near behind inside beside under across".split()
_CONNECTORS = (", and", ", but", " because", " while", " so", ".")
_CLAUSES = (
    "the {adj} {noun} {past} {prep} the {place}",
    "{name} {past} the {noun} {time}",
    "please {imp} the {noun} in the {place}",
    "we walked to the {place} {time}",
    "I think the {noun} is too {adj}",
    "{time} {name} will {base} the {adj} {noun}",
    "it was {adj} {prep} the old {place}",
    "can you {base} the {noun} for me",
    "my {noun} was {adj} and {adj2}",
    "the {noun} {prep} the {place} looked {adj}",
)


def sample_word_count(rng: np.random.Generator) -> int:
    """Draw a phrase length in words: mostly keywords and short commands, some sentences.

    Returns
    -------
    int
        Between 1 and 25.
    """
    band = rng.choice(4, p=(0.3, 0.3, 0.25, 0.15))
    low, high = ((1, 1), (2, 4), (5, 12), (13, 25))[band]
    return int(rng.integers(low, high + 1))


def compose_text(rng: np.random.Generator, n_words: int) -> str:
    """Compose an English phrase of about ``n_words`` words from built-in lists.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every choice.
    n_words : int
        Wanted length; phrases of 5+ words are whole clauses, so they may run a few over.

    Returns
    -------
    str
    """
    if n_words <= 1:
        return str(rng.choice(_KEYWORDS)).capitalize()
    if n_words <= 4:
        kind = rng.integers(4)
        if kind == 0:
            return str(rng.choice(_WAKE)).capitalize()
        if kind == 1:
            return " ".join(str(d) for d in rng.choice(_DIGITS, n_words)).capitalize()
        if kind == 2:
            return f"{rng.choice(_IMPERATIVE)} the {rng.choice(_NOUNS)}".capitalize()
        return " ".join(str(w) for w in rng.choice(_KEYWORDS, n_words)).capitalize()
    text = _clause(rng)
    while len(text.split()) < n_words:
        addition = f"{rng.choice(_CONNECTORS)} {_clause(rng)}"
        if len((text + addition).split()) > 25 and len(text.split()) >= 5:
            break
        text += addition
    sentences = [part.strip() for part in text.split(".")]
    return " ".join(s[0].upper() + s[1:] + ("?" if s.startswith("can you") else ".")
                    for s in sentences if s)


def _clause(rng: np.random.Generator) -> str:
    adjectives = rng.choice(_ADJECTIVES, 2, replace=False)
    return str(rng.choice(_CLAUSES)).format(
        adj=adjectives[0], adj2=adjectives[1], noun=rng.choice(_NOUNS), past=rng.choice(_PAST),
        base=rng.choice(_BASE), imp=rng.choice(_IMPERATIVE), place=rng.choice(_PLACES),
        name=str(rng.choice(_NAMES)).capitalize(), time=rng.choice(_TIMES),
        prep=rng.choice(_PREPOSITIONS))


# ----------------------------------------------------------------------- running

def _fingerprint(task: _Task) -> str:
    recipe = (task.generator, task.source, sorted(task.options.items()), task.min_s)
    return hashlib.sha1(repr(recipe).encode("utf-8")).hexdigest()[:16]


def record_plan(tasks: List[_Task], out_dir: str) -> None:
    """Write ``out_dir/plan.csv`` for ``tasks``, first deleting every existing output that
    an earlier plan (other seed, generators or code) made from another recipe."""
    plan_path = os.path.join(out_dir, "plan.csv")
    previous = {}
    if os.path.exists(plan_path):
        with open(plan_path, newline="", encoding="utf-8") as handle:
            previous = {row["path"]: row["fingerprint"] for row in csv.DictReader(handle)}
    rows = []
    for task in tasks:
        fingerprint = _fingerprint(task)
        target = os.path.join(out_dir, task.out_rel)
        if os.path.exists(target) and previous.get(task.out_rel) != fingerprint:
            os.remove(target)
        rows.append({"path": task.out_rel, "generator": task.generator, "source": task.source,
                     "options": repr(sorted(task.options.items())), "fingerprint": fingerprint})
    _write_csv(plan_path, ("path", "generator", "source", "options", "fingerprint"), rows)


def _run_tasks(tasks: List[_Task], out_dir: str, jobs: int, progress) -> List[_Outcome]:
    from joblib import Parallel, delayed

    total = len(tasks)
    if progress:
        progress(0, total)
    outcomes = []
    stream = Parallel(n_jobs=jobs, return_as="generator")(
        delayed(_run_task)(task, out_dir) for task in tasks)
    for outcome in stream:
        outcomes.append(outcome)
        if progress:
            progress(len(outcomes), total)
    return outcomes


def _recoverable() -> tuple:
    # errors that spoil one clip, not the run; librosa's ParameterError derives from
    # Exception only, and librosa is imported here rather than at module import
    from librosa.util.exceptions import ParameterError

    return (synthesis.SynthesisError, OSError, ValueError, RuntimeError, ArithmeticError,
            subprocess.SubprocessError, ParameterError)


def _run_task(task: _Task, out_dir: str) -> _Outcome:
    target = os.path.join(out_dir, task.out_rel)
    if os.path.exists(target):
        try:
            return _Outcome(task, True, "exists", sf.info(target).duration)
        except RuntimeError:
            os.remove(target)  # unreadable leftover: make it again
    generator = GENERATORS[task.generator]
    started = time.perf_counter()
    try:
        source = task.source
        if generator.kind == COPY_SYNTHESIS:
            try:
                source = load_audio(task.source)
            except DecodeError as error:
                return _Outcome(task, False, f"cannot decode original: {error}",
                                unreadable_source=True)
        with synthesis.single_threaded():
            audio = _pad(generator(source, **task.options), task.min_s)
        write_flac(target, audio)
    except _recoverable() as error:
        return _Outcome(task, False, f"{type(error).__name__}: {error}")
    return _Outcome(task, True, "", audio.size / SAMPLE_RATE, time.perf_counter() - started)


def _pad(audio: np.ndarray, min_s: float) -> np.ndarray:
    # TTS engines start and end on digital silence, so zeros extend that silence
    missing = int(round(min_s * SAMPLE_RATE)) - audio.size
    if missing <= 0:
        return audio
    before = missing // 2
    return np.pad(audio, (before, missing - before))


def write_flac(path: str, audio: np.ndarray) -> None:
    """Write 16 kHz 16-bit FLAC, atomically (through ``<path>.part``)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + ".part"
    sf.write(partial, audio, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    os.replace(partial, path)  # a crash never leaves a half-written .flac to resume from


def _write_csv(path: str, columns: Sequence[str], rows: Iterable[dict]) -> str:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_summary(out_dir, genuine, unreadable, outcomes, neural_rows) -> None:
    stats = defaultdict(lambda: {"clips": 0, "audio_s": 0.0, "work_s": 0.0, "failed": 0,
                                 "kind": ""})
    real = [clip for clip in genuine if clip.path not in unreadable]
    stats["bonafide"].update(kind="genuine", clips=len(real),
                             audio_s=sum(clip.duration_s for clip in real))
    for outcome in outcomes:
        entry = stats[outcome.task.generator]
        entry["kind"] = GENERATORS[outcome.task.generator].kind
        if outcome.ok:
            entry["clips"] += 1
            entry["audio_s"] += outcome.duration_s
            entry["work_s"] += outcome.work_s
        else:
            entry["failed"] += 1
    for row in neural_rows:
        stats[row["system"]]["kind"] = "neural"
        stats[row["system"]]["clips"] += 1
        stats[row["system"]]["audio_s"] += row["duration_s"]
    _write_csv(os.path.join(out_dir, "summary.csv"),
               ("system", "kind", "clips", "audio_s", "work_s", "failed"),
               [{"system": name, **{k: (round(v, 1) if isinstance(v, float) else v)
                                    for k, v in entry.items()}}
                for name, entry in sorted(stats.items())])

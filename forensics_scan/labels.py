"""Read labelled audio (genuine or synthetic) for training and evaluation.

Two layouts are understood:

- a folder with ``real/`` and ``fake/`` subfolders, searched recursively for audio files
  (the same files ``fscan scan`` would take, see ``discovery.py``); the first folder under
  ``fake/`` names the generating system, e.g. ``fake/hifigan/x.wav`` is system "hifigan";
- a CSV manifest with at least the columns ``path`` and ``label``, and optionally
  ``system``, ``group``, ``original`` (a synthetic twin's genuine source, as
  ``fscan build-dataset`` writes it) and ``corpus`` (see ``corpus_names``); any other
  columns are kept.

Either way the result is one table, sorted by path, with absolute paths, so that a data
set reads the same from any working directory and on every run.
"""

import os
from typing import List

import pandas as pd

from .discovery import InputPathError, find_audio_files
from .results import FAKE, REAL

COLUMNS = ["path", "label", "system", "group"]
GENUINE_SYSTEM = "bonafide"  # system name of genuine speech, as in ASVspoof protocols
UNKNOWN_SYSTEM = "fake"  # system name of a fake whose generator is not given
REAL_NAMES = frozenset({"real", "bonafide", "genuine", "0"})
FAKE_NAMES = frozenset({"fake", "spoof", "synthetic", "1"})


class LabelError(ValueError):
    """Labelled data that cannot be read: missing, badly laid out or badly labelled."""


def parse_label(value) -> str:
    """Map a label synonym to ``REAL`` or ``FAKE``.

    ``real``, ``bonafide``, ``genuine`` and 0 mean genuine speech; ``fake``, ``spoof``,
    ``synthetic`` and 1 mean synthetic speech. Case and surrounding spaces are ignored.

    Raises
    ------
    LabelError
        For any other value.
    """
    text = str(value).strip().lower()
    if text in REAL_NAMES:
        return REAL
    if text in FAKE_NAMES:
        return FAKE
    raise LabelError(f"unknown label {value!r}: use one of "
                     f"{', '.join(sorted(REAL_NAMES))} (genuine) or "
                     f"{', '.join(sorted(FAKE_NAMES))} (synthetic)")


def read_labelled(source: str) -> pd.DataFrame:
    """Read a labelled data set from a ``real/``+``fake/`` folder or a CSV manifest.

    Parameters
    ----------
    source : str
        A folder holding ``real/`` and/or ``fake/`` subfolders, or a CSV file.

    Returns
    -------
    pandas.DataFrame
        Columns ``path`` (absolute), ``label`` (``"real"`` or ``"fake"``), ``system``
        (the generator; ``"bonafide"`` for genuine speech, ``"fake"`` when unknown) and
        ``group`` (the file's folder relative to the source, for splits that keep a
        folder together), then a manifest's other columns; sorted by path.

    Raises
    ------
    LabelError
        If the source does not exist, a folder has neither ``real/`` nor ``fake/`` or
        holds no audio, or a manifest lacks a column, repeats a path or has an unknown
        label (the message names the line).
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        table = _read_folder(source)
    elif os.path.isfile(source):
        table = _read_manifest(source)
    else:
        raise LabelError(f"no such folder or manifest: {source}")
    return table.sort_values("path", kind="mergesort", ignore_index=True)


def corpus_names(table: pd.DataFrame) -> pd.Series:
    """Each row's corpus: its ``corpus`` column when the table has one, else the part of
    its ``group`` before the first ':' (``fscan build-dataset`` writes groups as
    ``corpus:speaker``; in a ``real/`` + ``fake/`` folder the group is the file's folder).
    """
    if "corpus" in table:
        return table["corpus"].astype(str)
    return table["group"].astype(str).str.split(":").str[0]


def _read_folder(folder: str) -> pd.DataFrame:
    root = os.path.abspath(folder)
    classes = [name for name in (REAL, FAKE) if os.path.isdir(os.path.join(root, name))]
    if not classes:
        raise LabelError(f"{folder} has neither a real/ nor a fake/ subfolder")
    rows: List[dict] = []
    for label in classes:
        try:
            found = find_audio_files([os.path.join(root, label)])
        except InputPathError as error:
            raise LabelError(str(error)) from error
        if found.problems:
            listed = "; ".join(f"{path}: {reason}" for path, reason in found.problems[:5])
            raise LabelError(f"{len(found.problems)} unreadable entries under "
                             f"{folder}/{label}: {listed}")
        for path in found.files:
            relative = os.path.relpath(path, root).split(os.sep)
            rows.append({"path": path, "label": label,
                         "system": _folder_system(label, relative),
                         "group": "/".join(relative[:-1])})
    if not rows:
        raise LabelError(f"no audio files under {folder}/real or {folder}/fake")
    return pd.DataFrame(rows, columns=COLUMNS)


def _folder_system(label: str, relative: List[str]) -> str:
    if label == REAL:
        return GENUINE_SYSTEM
    return relative[1] if len(relative) > 2 else UNKNOWN_SYSTEM  # fake/<system>/.../file


def _read_manifest(manifest: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(manifest, dtype={name: str for name in COLUMNS})
    except (OSError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as error:
        raise LabelError(f"cannot read manifest {manifest}: {error}") from error
    table.columns = [str(name).strip() for name in table.columns]
    missing = [name for name in ("path", "label") if name not in table.columns]
    if missing:
        raise LabelError(f"manifest {manifest} lacks the column(s) {', '.join(missing)}")
    root = os.path.dirname(os.path.abspath(manifest))
    paths, labels, systems, groups = [], [], [], []
    for index, row in enumerate(table.itertuples(index=False)):
        where = f"{manifest}, line {index + 2}"  # line 1 is the header
        path, system, group = (_text(getattr(row, name, None))
                               for name in ("path", "system", "group"))
        if not path:
            raise LabelError(f"{where}: empty path")
        try:
            label = parse_label(row.label)
        except LabelError as error:
            raise LabelError(f"{where} ({path}): {error}") from None
        path = os.path.normpath(os.path.join(root, os.path.expanduser(path)))
        paths.append(path)
        labels.append(label)
        systems.append(system or (GENUINE_SYSTEM if label == REAL else UNKNOWN_SYSTEM))
        groups.append(group or _parent_under(path, root))
    repeated = pd.Series(paths)[pd.Series(paths).duplicated()].unique()
    if len(repeated):
        raise LabelError(f"manifest {manifest} lists {len(repeated)} path(s) more than "
                         f"once, e.g. {repeated[0]}")
    extras = table.drop(columns=[name for name in COLUMNS if name in table.columns])
    if "original" in extras:  # a path too: absolute, like ``path``
        extras["original"] = [
            os.path.normpath(os.path.join(root, os.path.expanduser(text))) if text else ""
            for text in map(_text, extras["original"])]
    labelled = pd.DataFrame({"path": paths, "label": labels, "system": systems,
                             "group": groups}, index=table.index)
    return pd.concat([labelled, extras], axis=1)


def _text(value) -> str:
    return "" if value is None or pd.isna(value) else str(value).strip()


def _parent_under(path: str, root: str) -> str:
    parent = os.path.dirname(path)
    relative = os.path.relpath(parent, root)
    if relative == os.curdir:
        return ""
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return parent.replace(os.sep, "/")  # outside the manifest's folder
    return relative.replace(os.sep, "/")

"""Find the audio files under the paths a user names.

Order is deterministic (sorted, case-sensitive, per argument in the order given), every
directory is entered once even through symlink loops, and files named explicitly are
always scanned whatever their extension: the user asked for them.
"""

import fnmatch
import os
from dataclasses import dataclass
from typing import Iterable, List, Sequence, Tuple

AUDIO_EXTENSIONS = frozenset({
    ".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc", ".au",
    ".snd", ".caf", ".w64", ".m4a", ".aac", ".mp4",
})


class InputPathError(Exception):
    """A path given on the command line does not exist or cannot be listed."""


@dataclass(frozen=True)
class Discovery:
    """Files to scan, plus paths that were found but could not be scanned."""

    files: Tuple[str, ...]
    problems: Tuple[Tuple[str, str], ...]  # (path, reason), e.g. a broken symlink


def is_audio(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in AUDIO_EXTENSIONS


def find_audio_files(paths: Sequence[str], include: Iterable[str] = (),
                     exclude: Iterable[str] = ()) -> Discovery:
    """Expand files and folders into a sorted, de-duplicated list of audio files.

    Parameters
    ----------
    paths : sequence of str
        Files and folders. Folders are walked recursively; inside them only files with
        an audio extension (any case) are taken.
    include, exclude : iterable of str
        Glob patterns (``fnmatch``) matched against the file name and the path relative
        to the folder argument. A file is kept when it matches any include pattern (or
        none are given) and no exclude pattern.

    Raises
    ------
    InputPathError
        If a named path does not exist.
    """
    include, exclude = tuple(include), tuple(exclude)
    files: List[str] = []
    problems: List[Tuple[str, str]] = []
    seen_files = set()
    seen_dirs = set()
    for path in paths:
        if not os.path.lexists(path):
            raise InputPathError(f"no such file or directory: {path}")
        if os.path.isdir(path):
            found, found_problems = _walk(path, seen_dirs)
            problems.extend(found_problems)
            candidates = [(file, os.path.relpath(file, path)) for file in found]
        elif os.path.exists(path):
            candidates = [(path, os.path.basename(path))]
        else:
            problems.append((path, "broken symbolic link"))
            continue
        for file, relative in candidates:
            if not _selected(file, relative, include, exclude):
                continue
            key = os.path.realpath(file)
            if key not in seen_files:
                seen_files.add(key)
                files.append(file)
    return Discovery(tuple(files), tuple(problems))


def _walk(root: str, seen_dirs: set) -> Tuple[List[str], List[Tuple[str, str]]]:
    files, problems = [], []
    stack = [root]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen_dirs:
            continue  # a symlink loop or a folder reached twice
        seen_dirs.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            problems.append((folder, f"cannot list folder: {error.strerror or error}"))
            continue
        subfolders = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append(entry.path)
            elif is_audio(entry.name):
                if os.path.exists(entry.path):
                    files.append(entry.path)
                else:
                    problems.append((entry.path, "broken symbolic link"))
        stack.extend(reversed(subfolders))  # depth-first, in sorted order
    return sorted(files), problems


def _selected(path: str, relative: str, include: Tuple[str, ...], exclude: Tuple[str, ...]
              ) -> bool:
    names = (os.path.basename(path), relative, path)

    def matches(patterns):
        return any(fnmatch.fnmatch(name, pattern) for pattern in patterns for name in names)

    return (not include or matches(include)) and not matches(exclude)

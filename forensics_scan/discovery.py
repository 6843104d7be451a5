"""Find the audio files under the paths a user names.

Order is deterministic (sorted, case-sensitive, per argument in the order given), every
directory is entered once even through symlink loops, and files named explicitly are
always scanned whatever their extension: the user asked for them. What cannot be
scanned at all (a broken link, a link loop, a named pipe, a folder that cannot be
listed) is returned as a problem with a reason, so that it still appears in the reports.
Inside folders a file is taken when its name has an audio extension, or when its first
bytes are an audio container's signature: a recording saved without an extension, or as
``.bak`` or ``.dat``, is scanned too, while documents beside the recordings are not.
"""

import errno
import fnmatch
import os
import stat
from dataclasses import dataclass
from typing import Iterable, List, Sequence, Tuple

AUDIO_EXTENSIONS = frozenset({
    ".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".aifc", ".au",
    ".snd", ".caf", ".w64", ".m4a", ".aac", ".mp4",
    # phone, browser and messenger recordings: read through ffmpeg when it is installed,
    # otherwise reported as errors that say so (never silently passed over)
    ".amr", ".3gp", ".wma", ".webm", ".mka", ".spx", ".mp2", ".m4b", ".wv",
})


class InputPathError(Exception):
    """A path given on the command line does not exist or cannot be listed."""


@dataclass(frozen=True)
class Discovery:
    """Files to scan, plus paths that were found but could not be scanned."""

    files: Tuple[str, ...]
    problems: Tuple[Tuple[str, str], ...]  # (path, reason), e.g. a broken symlink
    # (path, the path in files it leads to): another way to the same file, e.g. a symlink
    aliases: Tuple[Tuple[str, str], ...] = ()


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

    Returns
    -------
    Discovery
        ``files`` to scan, and ``problems``: broken links, link loops, named pipes and
        devices (filtered like files, once each) and folders that cannot be listed.
        A file reached again by another path (a symlink to it) is not listed twice:
        that path goes to ``aliases`` with the path of ``files`` it leads to.

    Raises
    ------
    InputPathError
        If a named path does not exist.
    """
    include, exclude = tuple(include), tuple(exclude)
    files: List[str] = []
    problems = {}  # path -> reason: a path named twice is reported once
    seen_files = {}  # real path -> the path listed for it
    seen_dirs = set()
    aliases = {}
    for path in paths:
        if not os.path.lexists(path):
            raise InputPathError(f"no such file or directory: {path}")
        if os.path.isdir(path):
            found, found_problems = _walk(path, seen_dirs)
            for problem, reason in found_problems:
                # an unlistable folder is always reported: what it holds is unknown
                if os.path.isdir(problem) or _selected(
                        problem, os.path.relpath(problem, path), include, exclude):
                    problems.setdefault(problem, reason)
            candidates = [(file, os.path.relpath(file, path)) for file in found]
        else:
            reason = _unscannable(path)
            if reason:
                if _selected(path, os.path.basename(path), include, exclude):
                    problems.setdefault(path, reason)
                continue
            candidates = [(path, os.path.basename(path))]
        for file, relative in candidates:
            if not _selected(file, relative, include, exclude):
                continue
            key = os.path.realpath(file)
            listed = seen_files.get(key)
            if listed is None:
                seen_files[key] = file
                files.append(file)
            elif os.path.abspath(file) == os.path.abspath(listed):
                continue  # the same path named twice
            elif os.path.islink(listed) and not os.path.islink(file):
                # the file itself is listed, the link to it is the alias
                files[files.index(listed)] = seen_files[key] = file
                aliases = {alias: file if target == listed else target
                           for alias, target in aliases.items()}
                aliases[listed] = file
            else:
                aliases.setdefault(file, listed)
    return Discovery(tuple(files), tuple(problems.items()), tuple(aliases.items()))


_NOT_REGULAR = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _unscannable(path: str) -> str:
    """Why ``path`` (not a folder) cannot be scanned at all, or "" when it can be tried.

    A named pipe or device would block the scan or never end, and could not be read
    twice (hash, then decode) anyway; a link loop or a dangling link has nothing behind it.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop"
        if os.path.islink(path):
            return "broken symbolic link"
        return ""  # e.g. no permission: the scan reports the precise reason
    for test, kind in _NOT_REGULAR:
        if test(mode):
            return f"not a regular file ({kind})"
    return ""


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
                reason = _unscannable(entry.path)
                if reason:
                    problems.append((entry.path, reason))
                else:
                    files.append(entry.path)
            elif _is_regular_file(entry) and looks_like_audio(entry.path):
                files.append(entry.path)
        stack.extend(reversed(subfolders))  # depth-first, in sorted order
    return sorted(files), problems


def _is_regular_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


# (offset, bytes) pairs that must all match the start of a file, one tuple per container.
# MPEG audio without an ID3 tag is left out: its bare frame sync also starts UTF-16 text.
AUDIO_SIGNATURES = (
    ((0, b"RIFF"), (8, b"WAVE")),
    ((0, b"RIFX"), (8, b"WAVE")),
    ((0, b"RF64"), (8, b"WAVE")),
    ((0, b"riff"), (4, bytes.fromhex("2e91cf11"))),  # Sony Wave64
    ((0, b"FORM"), (8, b"AIFF")),
    ((0, b"FORM"), (8, b"AIFC")),
    ((0, b"fLaC"),),
    ((0, b"OggS"),),
    ((0, b"ID3"),),  # MP3 with a tag
    ((0, b".snd"),),
    ((0, b"caff"),),
    ((0, b"#!AMR"),),
    ((4, b"ftypM4A "),),
    ((4, b"ftyp3gp"),),
    ((0, bytes.fromhex("3026b2758e66cf11")),),  # ASF (WMA)
)


def looks_like_audio(path: str) -> bool:
    """Whether the file starts with the signature of an audio container fscan can read."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return any(all(head[at:at + len(magic)] == magic for at, magic in signature)
               for signature in AUDIO_SIGNATURES)


def _selected(path: str, relative: str, include: Tuple[str, ...], exclude: Tuple[str, ...]
              ) -> bool:
    names = (os.path.basename(path), relative, path)

    def matches(patterns):
        return any(fnmatch.fnmatch(name, pattern) for pattern in patterns for name in names)

    return (not include or matches(include)) and not matches(exclude)

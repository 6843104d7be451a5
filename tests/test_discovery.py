"""Finding audio files under the paths a user names (forensics_scan/discovery.py)."""

import os

import numpy as np
import pytest
import soundfile as sf

from forensics_scan.discovery import InputPathError, find_audio_files


def _touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF")  # discovery never decodes: content does not matter
    return root


def _relative(found, root):
    return [os.path.relpath(path, root) for path in found.files]


def test_folders_are_walked_recursively_in_sorted_order(tmp_path):
    # created out of order, so a directory-order listing would show up
    _touch(tmp_path, "b/z.wav", "a.wav", "b/a/deep.flac", "B.wav", "c.mp3", "a-b/x.wav")

    found = find_audio_files([str(tmp_path)])

    assert _relative(found, tmp_path) == ["B.wav", "a-b/x.wav", "a.wav", "b/a/deep.flac",
                                          "b/z.wav", "c.mp3"]
    assert list(found.files) == sorted(found.files)  # case-sensitive code-point order
    assert found.problems == ()
    assert find_audio_files([str(tmp_path)]) == found  # deterministic


def test_arguments_keep_their_order(tmp_path):
    _touch(tmp_path, "one/a.wav", "two/b.wav")

    found = find_audio_files([str(tmp_path / "two"), str(tmp_path / "one")])

    assert _relative(found, tmp_path) == ["two/b.wav", "one/a.wav"]


def test_extensions_match_in_any_case(tmp_path):
    _touch(tmp_path, "loud.WAV", "mixed.Flac", "upper.MP3", "lower.ogg")

    found = find_audio_files([str(tmp_path)])

    assert _relative(found, tmp_path) == ["loud.WAV", "lower.ogg", "mixed.Flac", "upper.MP3"]


def test_non_audio_files_in_folders_are_ignored(tmp_path):
    _touch(tmp_path, "notes.txt", "cover.jpg", "wav", "archive.wav.zip", "speech.wav")

    found = find_audio_files([str(tmp_path)])

    assert _relative(found, tmp_path) == ["speech.wav"]
    assert found.problems == ()


def test_audio_without_an_audio_name_is_found_by_its_first_bytes(tmp_path):
    # recordings saved without an extension or renamed; beside them files that only
    # resemble audio (an AVI is RIFF too; UTF-16 text starts like an MPEG frame sync)
    signal = np.zeros(1600, np.float32)
    for name, fmt in (("evidence_01", "WAV"), ("take.flac.bak", "FLAC"),
                      ("voice_note.dat", "OGG"), ("memo", "AIFF"), ("call.w64.tmp", "W64"),
                      ("old.au.1", "AU"), ("apple.caf~", "CAF")):
        sf.write(str(tmp_path / name), signal, 16000, format=fmt)
    heads = {"tagged_mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
             "android_call": b"#!AMR\n", "iphone_memo": b"\x00\x00\x00\x20ftypM4A \x00",
             "phone_clip": b"\x00\x00\x00\x18ftyp3gp4", "windows_media": bytes.fromhex(
                 "3026b2758e66cf11a6d900aa0062ce6c"),
             "film.avi": b"RIFF\x00\x00\x00\x00AVI LIST", "notes_utf16.txt": "hi".encode("utf-16"),
             "photo.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF", "archive.zip": b"PK\x03\x04",
             "tiny": b"RI", "empty": b""}
    for name, head in heads.items():
        (tmp_path / name).write_bytes(head + bytes(64))

    found = find_audio_files([str(tmp_path)])

    assert _relative(found, tmp_path) == sorted([
        "evidence_01", "take.flac.bak", "voice_note.dat", "memo", "call.w64.tmp", "old.au.1",
        "apple.caf~", "tagged_mp3", "android_call", "iphone_memo", "phone_clip",
        "windows_media"])


def test_phone_and_messenger_formats_are_found_by_name(tmp_path):
    names = ["a.amr", "b.3gp", "c.wma", "d.webm", "e.mka", "f.spx", "g.mp2", "h.m4b", "i.wv"]
    _touch(tmp_path, *names)

    assert _relative(find_audio_files([str(tmp_path)]), tmp_path) == names


def test_a_file_named_explicitly_is_always_taken(tmp_path):
    _touch(tmp_path, "recording.bin", "notes.txt")

    found = find_audio_files([str(tmp_path / "recording.bin"), str(tmp_path / "notes.txt")])

    assert _relative(found, tmp_path) == ["recording.bin", "notes.txt"]


def test_hidden_files_and_folders_are_included(tmp_path):
    # a deliberate choice: a forensic scan must not silently skip dot-files
    _touch(tmp_path, ".hidden.wav", ".secret/inside.wav", "visible.wav")

    found = find_audio_files([str(tmp_path)])

    assert _relative(found, tmp_path) == [".hidden.wav", ".secret/inside.wav", "visible.wav"]


@pytest.mark.parametrize("include, exclude, expected", [
    (["*.wav"], [], ["keep/a.wav", "top.wav"]),
    ([], ["*.wav"], ["keep/b.flac", "skip/c.flac"]),
    ([], ["skip/*"], ["keep/a.wav", "keep/b.flac", "top.wav"]),
    (["keep/*"], ["*.flac"], ["keep/a.wav"]),
    (["*.WAV"], [], []),  # globs are case-sensitive, like the sort
])
def test_include_and_exclude_globs(tmp_path, include, exclude, expected):
    _touch(tmp_path, "keep/a.wav", "keep/b.flac", "skip/c.flac", "top.wav")

    found = find_audio_files([str(tmp_path)], include=include, exclude=exclude)

    assert _relative(found, tmp_path) == expected


def test_symlink_loop_terminates_and_lists_files_once(tmp_path):
    _touch(tmp_path, "root/a.wav", "root/sub/b.wav")
    os.symlink(tmp_path / "root", tmp_path / "root" / "sub" / "back-to-root")
    os.symlink(tmp_path / "root" / "sub", tmp_path / "root" / "sideways")

    found = find_audio_files([str(tmp_path / "root")])

    assert sorted(os.path.realpath(path) for path in found.files) == [
        str((tmp_path / "root" / "a.wav").resolve()),
        str((tmp_path / "root" / "sub" / "b.wav").resolve())]


def test_the_same_file_twice_is_listed_once(tmp_path):
    _touch(tmp_path, "clip.wav")
    os.symlink(tmp_path / "clip.wav", tmp_path / "alias.wav")
    clip, alias = str(tmp_path / "clip.wav"), str(tmp_path / "alias.wav")

    twice = find_audio_files([clip, clip])
    via_link = find_audio_files([clip, alias])
    link_first = find_audio_files([alias, clip])
    folder_and_file = find_audio_files([clip, str(tmp_path)])
    folder = find_audio_files([str(tmp_path)])  # alias.wav is walked before clip.wav

    assert twice.files == via_link.files == folder_and_file.files == (clip,)
    assert link_first.files == folder.files == (clip,)
    assert twice.aliases == ()
    assert via_link.aliases == link_first.aliases == folder.aliases == ((alias, clip),)


def test_broken_symlink_with_audio_extension_is_a_problem(tmp_path):
    _touch(tmp_path, "real.wav")
    os.symlink(tmp_path / "gone.wav", tmp_path / "dangling.wav")
    os.symlink(tmp_path / "gone.txt", tmp_path / "dangling.txt")  # not audio: ignored

    found = find_audio_files([str(tmp_path)])
    named = find_audio_files([str(tmp_path / "dangling.wav")])

    assert _relative(found, tmp_path) == ["real.wav"]
    assert [(os.path.basename(path), reason) for path, reason in found.problems] == [
        ("dangling.wav", "broken symbolic link")]
    assert named.files == () and len(named.problems) == 1


def test_missing_path_raises(tmp_path):
    _touch(tmp_path, "a.wav")

    with pytest.raises(InputPathError, match="missing"):
        find_audio_files([str(tmp_path / "a.wav"), str(tmp_path / "missing")])


def test_empty_folder_finds_nothing(tmp_path):
    assert find_audio_files([str(tmp_path)]) == find_audio_files([])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file and folder")
def test_unreadable_folder_is_a_problem_and_unreadable_file_is_still_listed(tmp_path):
    _touch(tmp_path, "locked/inner.wav", "private.wav", "open.wav")
    os.chmod(tmp_path / "private.wav", 0)
    os.chmod(tmp_path / "locked", 0)
    try:
        found = find_audio_files([str(tmp_path)])
    finally:
        os.chmod(tmp_path / "locked", 0o755)
        os.chmod(tmp_path / "private.wav", 0o644)

    # the scanner, not discovery, reports an unreadable file, so it lands in every report
    assert _relative(found, tmp_path) == ["open.wav", "private.wav"]
    assert [os.path.basename(path) for path, _ in found.problems] == ["locked"]

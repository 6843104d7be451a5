import os

import pytest

from forensics_scan.labels import LabelError, parse_label, read_labelled


def touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb"):
        pass


@pytest.fixture
def labelled_folder(tmp_path):
    for relative in ["real/speaker1/a.wav", "real/B.FLAC", "fake/hifigan/set1/c.wav",
                     "fake/hifigan/d.Mp3", "fake/e.ogg", "fake/notes.txt", "real/cover.jpg"]:
        touch(tmp_path / relative)
    return tmp_path


def test_folder_layout(labelled_folder, monkeypatch):
    monkeypatch.chdir(labelled_folder.parent)
    table = read_labelled(labelled_folder.name)
    root = str(labelled_folder)
    expected = [
        ("fake/e.ogg", "fake", "fake", "fake"),
        ("fake/hifigan/d.Mp3", "fake", "hifigan", "fake/hifigan"),
        ("fake/hifigan/set1/c.wav", "fake", "hifigan", "fake/hifigan/set1"),
        ("real/B.FLAC", "real", "bonafide", "real"),
        ("real/speaker1/a.wav", "real", "bonafide", "real/speaker1"),
    ]
    assert list(table.columns) == ["path", "label", "system", "group"]
    assert [tuple(row) for row in table.itertuples(index=False)] == [
        (os.path.join(root, *relative.split("/")), label, system, group)
        for relative, label, system, group in expected]


def test_folder_with_only_one_class_is_read(tmp_path):
    touch(tmp_path / "real" / "x.wav")
    assert list(read_labelled(str(tmp_path))["label"]) == ["real"]


def test_folder_without_real_or_fake_is_rejected(tmp_path):
    touch(tmp_path / "audio" / "x.wav")
    with pytest.raises(LabelError, match="neither a real/ nor a fake/"):
        read_labelled(str(tmp_path))


def test_folder_without_audio_is_rejected(tmp_path):
    touch(tmp_path / "real" / "readme.txt")
    os.makedirs(tmp_path / "fake")
    with pytest.raises(LabelError, match="no audio files"):
        read_labelled(str(tmp_path))


def write_manifest(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return str(path)


def test_manifest_resolves_paths_and_label_synonyms(tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere" / "z.wav"
    manifest = write_manifest(tmp_path / "data" / "labels.csv", (
        "path,label,system,group,duration_s\n"
        "clips/b.wav,Bonafide,,,1.5\n"
        "clips/a.wav, spoof ,WaveGlow,,2.0\n"
        "gen/c.flac,1,,,\n"
        "d.wav,0,,speakerD,3.0\n"
        f"{outside},synthetic,MelGAN,,4.0\n"
        "clips/e.wav,genuine,,,1.0\n"
        "clips/f.wav,FAKE,,,1.0\n"
    ))
    monkeypatch.chdir(tmp_path)  # not the manifest folder
    table = read_labelled(manifest)
    data = str(tmp_path / "data")
    rows = {row.path: row for row in table.itertuples(index=False)}
    assert list(table["path"]) == sorted(rows)
    assert list(table.columns) == ["path", "label", "system", "group", "duration_s"]
    assert rows[os.path.join(data, "clips", "a.wav")][1:4] == ("fake", "WaveGlow", "clips")
    assert rows[os.path.join(data, "clips", "b.wav")][1:4] == ("real", "bonafide", "clips")
    assert rows[os.path.join(data, "gen", "c.flac")][1:4] == ("fake", "fake", "gen")
    assert rows[os.path.join(data, "d.wav")][1:4] == ("real", "bonafide", "speakerD")
    assert rows[os.path.join(data, "clips", "e.wav")].label == "real"
    assert rows[os.path.join(data, "clips", "f.wav")].label == "fake"
    assert rows[str(outside)][1:4] == ("fake", "MelGAN", str(outside.parent).replace(os.sep, "/"))
    assert rows[os.path.join(data, "d.wav")].duration_s == 3.0


def test_manifest_paths_do_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    manifest = write_manifest(tmp_path / "set" / "m.csv", "path,label\nx.wav,real\n")
    monkeypatch.chdir(tmp_path)
    first = read_labelled("set/m.csv")
    monkeypatch.chdir(tmp_path / "set")
    second = read_labelled("m.csv")
    assert list(first["path"]) == list(second["path"]) == [str(tmp_path / "set" / "x.wav")]
    assert read_labelled(manifest).equals(first)


def test_public_eval_style_manifest(tmp_path):
    manifest = write_manifest(tmp_path / "MANIFEST.csv", (
        "path,label,system,source_repo,duration_s\n"
        "fake/demo/HiFi-GAN/x.flac,fake,HiFi-GAN,owner/repo,9.9\n"
        'fake/demo/PWG/y.flac,fake,"Parallel WaveGAN, v2",owner/repo,4.5\n'
        "real/demo/z.flac,real,bonafide,owner/repo,3.0\n"
    ))
    table = read_labelled(manifest)
    assert list(table["system"]) == ["HiFi-GAN", "Parallel WaveGAN, v2", "bonafide"]
    assert list(table["group"]) == ["fake/demo/HiFi-GAN", "fake/demo/PWG", "real/demo"]
    assert list(table["source_repo"]) == ["owner/repo"] * 3


def test_bad_label_names_the_line(tmp_path):
    manifest = write_manifest(tmp_path / "m.csv",
                              "path,label\na.wav,real\nb.wav,maybe\n")
    with pytest.raises(ValueError, match=r"line 3 \(.*b\.wav\): unknown label 'maybe'"):
        read_labelled(manifest)


def test_missing_label_is_rejected(tmp_path):
    manifest = write_manifest(tmp_path / "m.csv", "path,label\na.wav,\n")
    with pytest.raises(LabelError, match="line 2"):
        read_labelled(manifest)


@pytest.mark.parametrize("text, message", [
    ("path,kind\na.wav,real\n", "lacks the column"),
    ("path,label\na.wav,real\n./a.wav,fake\n", "more than once"),
    ("", "cannot read manifest"),
])
def test_bad_manifests_are_rejected(tmp_path, text, message):
    with pytest.raises(LabelError, match=message):
        read_labelled(write_manifest(tmp_path / "m.csv", text))


def test_missing_source_is_rejected(tmp_path):
    with pytest.raises(LabelError, match="no such folder or manifest"):
        read_labelled(str(tmp_path / "nothing"))


@pytest.mark.parametrize("value, label", [("real", "real"), ("BONAFIDE", "real"),
                                          (0, "real"), ("spoof", "fake"), (1, "fake"),
                                          (" Synthetic ", "fake")])
def test_parse_label(value, label):
    assert parse_label(value) == label

"""A plain (non-editable) wheel install gives a working fscan with the bundled model."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["forensics_scan", "models", "setup.cfg", "pyproject.toml", "README.md"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Build the wheel from a clean copy of the sources (no build debris in the repo)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(out), str(source)], check=True)
    (built,) = out.glob("fscan-*.whl")
    return built


def test_wheel_contains_model_card_checkpoint_and_templates(wheel):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "forensics_scan/models/lcnn.safetensors" in names
    assert "forensics_scan/models/MODEL_CARD.md" in names
    assert any(name.startswith("forensics_scan/reports/templates/") for name in names)
    assert any(name.endswith("entry_points.txt") for name in names)


def test_fresh_venv_scans_with_the_bundled_model(wheel, tmp_path, speechlike, write_audio):
    # The new venv sees the test environment's packages (torch & co.) through a .pth
    # line, appended after its own site-packages; fscan itself comes only from the wheel
    # (checked below through __file__).
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # install before the .pth exists, or pip would see the test environment's fscan
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([str(python), "-c", purelib],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"  # not the repo, so the source tree cannot be imported
    work.mkdir()
    where = subprocess.run([str(python), "-c",
                            "import forensics_scan; print(forensics_scan.__file__)"],
                           cwd=work, capture_output=True, text=True, check=True).stdout
    assert str(env_dir) in where
    audio = write_audio(work / "clip.wav", speechlike(6.0))
    result = subprocess.run([str(env_dir / "bin" / "fscan"), audio, "--json", "-", "--quiet",
                             "--no-cache", "--jobs", "1", "--fail-on", "never"],
                            cwd=work, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=""))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["scored"] == 1
    assert str(env_dir) in report["model"]["path"]
    assert report["files"][0]["n_segments"] == 2

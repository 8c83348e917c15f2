"""The package installs by its PyPI name: the wheel built from this checkout (offline, through pip's PEP 517 path)
is ``evalkit-embed`` at ``evalkit.__version__``, Apache-2.0 with its license text, and carries ``py.typed``, the model
registry and the built-in task specs -- the files a user's ``pip install evalkit-embed`` would lack otherwise."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import evalkit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling", reason="the build backend (dev extra) builds the wheel offline")
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            str(ROOT),
            "-w",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("*.whl")
    return built


def _metadata(wheel: Path) -> tuple[object, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (meta_name,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(meta_name).decode()), names


def test_wheel_is_evalkit_embed_at_the_package_version(wheel: Path) -> None:
    meta, _ = _metadata(wheel)
    assert meta["Name"] == "evalkit-embed"
    assert meta["Version"] == evalkit.__version__
    assert wheel.name.startswith(f"evalkit_embed-{evalkit.__version__}-")
    assert meta["License-Expression"] == "Apache-2.0"


def test_wheel_carries_types_registry_tasks_license_and_command(wheel: Path) -> None:
    _, names = _metadata(wheel)
    assert "evalkit/py.typed" in names
    assert "evalkit/registry/models.yaml" in names
    assert "evalkit/_builtin_tasks/STSBenchmark.yaml" in names or any(
        name.startswith("evalkit/_builtin_tasks/") for name in names
    )
    license_files = [name for name in names if re.search(r"\.dist-info/licenses/LICENSE$", name)]
    assert license_files
    with zipfile.ZipFile(wheel) as archive:
        assert "Apache License" in archive.read(license_files[0]).decode()
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        assert "evalkit = evalkit.cli:main" in archive.read(entry_points).decode()


def test_version_is_written_once() -> None:
    """pyproject.toml reads the version from evalkit/__init__.py; no second copy to fall out of step."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^dynamic = \["version"\]', pyproject, re.MULTILINE)
    assert not re.search(r"^version\s*=", pyproject, re.MULTILINE)
    assert 'path = "evalkit/__init__.py"' in pyproject
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {evalkit.__version__}" in changelog and "## Unreleased" in changelog


def test_readme_opens_with_the_install_line() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    opening = readme.split("\n## ", 1)[0]
    assert "pip install evalkit-embed" in opening
    assert "evalkit.evaluate(" in opening
    for text in (readme, *(path.read_text(encoding="utf-8") for path in (ROOT / "docs").rglob("*.*"))):
        assert not re.search(r"pip install ['\"]?evalkit(?![-\w])", text)

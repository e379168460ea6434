"""A built package carries everything Conveyor needs at run time.

The test suite runs from an editable install, which reads files from the
source tree; a wheel holds only what the package data rules name, so a
missing rule (the migrations, ``py.typed``) shows up only here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_wheel_contains_every_migration_and_the_typing_marker(tmp_path: Path) -> None:
    # Built from a clean copy: the editable install's egg-info in the source
    # tree would let setuptools find the files whatever the rules say.
    tree = tmp_path / "tree"
    shutil.copytree(
        ROOT / "src",
        tree / "src",
        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--quiet", "--wheel-dir", str(tmp_path), str(tree),
        ],
        check=True,
        cwd=tmp_path,
    )  # fmt: skip
    [wheel] = tmp_path.glob("conveyor-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())

    sources = sorted((ROOT / "src" / "conveyor" / "store" / "sql").glob("*/*.sql"))
    assert sources
    for source in sources:
        relative = source.relative_to(ROOT / "src").as_posix()
        assert relative in names
    assert "conveyor/py.typed" in names

"""A built package carries everything Conveyor needs at run time.

The test suite runs from an editable install, which reads files from the
source tree; a wheel holds only what the package data rules name, so a
missing rule (the migrations, ``py.typed``) shows up only here.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_wheel_contains_every_migration_and_the_typing_marker(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--quiet", "--wheel-dir", str(tmp_path), str(ROOT),
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

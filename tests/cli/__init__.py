"""Tests of the ``conveyor`` command, run as a user runs it: the installed
script in a subprocess, on a SQLite file in a temporary directory.

``cli_tasks`` (in this folder, put on ``PYTHONPATH``) is the ``--app`` the
commands load. Nothing here mocks: each test reads back what the command
wrote, from the same file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conveyor.records import JobRecord
from conveyor.store import open_store

#: The ``conveyor`` script installed next to this interpreter.
CONVEYOR = str(Path(sys.executable).parent / "conveyor")

#: The folder holding ``cli_tasks``, and the repository (for ``examples``).
HERE = Path(__file__).parent
REPO = HERE.parent.parent

#: Seconds a single short command may take before the test fails.
COMMAND_TIMEOUT = 30.0


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell, without Conveyor settings of our own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CONVEYOR_DATABASE_URL", "CONVEYOR_APP", "PYTHONPATH")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO)])

    return {**env, **extra}


def conveyor(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``conveyor ARGS`` in ``cwd``; return what it printed and its status."""
    return subprocess.run(
        [CONVEYOR, *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.02)


def read_jobs(url: str, job_ids: list[int]) -> dict[int, JobRecord]:
    """Read these jobs from the database at ``url``; fail if one is missing."""
    store = open_store(url)
    try:
        found = {job_id: store.get_job(job_id) for job_id in job_ids}
    finally:
        store.close()

    missing = [job_id for job_id, record in found.items() if record is None]
    assert missing == [], f"jobs {missing} are not in {url}"
    return {job_id: record for job_id, record in found.items() if record}

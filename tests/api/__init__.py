"""Tests of the Python API: what a user of ``from conveyor import ...`` sees.

Each test runs on a real SQLite file of its own and runs its jobs in-process
with ``Conveyor.drain``. Time is the ``clock`` fixture of ``tests.conftest``,
handed to the app as its clock, so a test moves time instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conveyor import Conveyor
from tests.conftest import Clock


def migrated_app(tmp_path: Path, clock: Clock, rng: Any = None) -> Iterator[Conveyor]:
    """Yield an app on a fresh, migrated file whose time is ``clock``; close it."""
    app = Conveyor(f"sqlite:///{tmp_path}/c.db", clock=lambda: clock.now, rng=rng)
    app.migrate()

    yield app

    app.close()


class FixedRandom:
    """A random source whose ``random()`` always answers ``value``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value

"""``current_job()``: what a running task learns about its own job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, ConveyorError, Fixed, JobContext, current_job
from tests.api import migrated_app
from tests.conftest import Clock

OUTSIDE = (
    "current_job() was called outside a running job; call it from inside a task "
    "function"
)


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Conveyor]:
    yield from migrated_app(tmp_path, clock)


def describe(job: JobContext) -> dict[str, Any]:
    return {
        "id": job.id,
        "task": job.task,
        "queue": job.queue,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "is_last_attempt": job.is_last_attempt,
    }


def test_current_job_inside_a_task_describes_its_job(app: Conveyor) -> None:
    @app.task(name="api.whoami", queue="inner", max_attempts=4)
    def whoami() -> dict[str, Any]:
        return describe(current_job())

    job = whoami.enqueue()
    app.drain()

    assert job.result(timeout=0) == {
        "id": job.id,
        "task": "api.whoami",
        "queue": "inner",
        "attempt": 1,
        "max_attempts": 4,
        "is_last_attempt": False,
    }


def test_current_job_counts_attempts_up_to_the_last(app: Conveyor) -> None:
    seen: list[tuple[int, bool]] = []

    @app.task(name="api.tries", max_attempts=3, backoff=Fixed(0))
    def tries() -> None:
        seen.append((current_job().attempt, current_job().is_last_attempt))
        raise ConnectionError("again")

    tries.enqueue()
    app.drain()

    assert seen == [(1, False), (2, False), (3, True)]


def test_current_job_inside_an_async_task_describes_its_job(app: Conveyor) -> None:
    @app.task(name="api.async_whoami", queue="aio")
    async def async_whoami() -> dict[str, Any]:
        return describe(current_job())

    job = async_whoami.using(max_attempts=1).enqueue()
    app.drain()

    assert job.result(timeout=0) == {
        "id": job.id,
        "task": "api.async_whoami",
        "queue": "aio",
        "attempt": 1,
        "max_attempts": 1,
        "is_last_attempt": True,
    }


def test_current_job_outside_a_task_raises_conveyor_error() -> None:
    with pytest.raises(ConveyorError) as raised:
        current_job()

    assert str(raised.value) == OUTSIDE


def test_current_job_is_gone_once_the_task_has_returned(app: Conveyor) -> None:
    @app.task(name="api.fails")
    def fails() -> None:
        raise ValueError("boom")

    fails.enqueue()
    app.drain()

    with pytest.raises(ConveyorError) as raised:
        current_job()
    assert str(raised.value) == OUTSIDE


def test_calling_a_task_directly_runs_outside_any_job(app: Conveyor) -> None:
    @app.task(name="api.whoami")
    def whoami() -> dict[str, Any]:
        return describe(current_job())

    with pytest.raises(ConveyorError) as raised:
        whoami()

    assert str(raised.value) == OUTSIDE

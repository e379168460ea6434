"""``async def`` tasks run and return, and ``aenqueue`` works from async code."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, DrainReport, Job, JobFailed, JobState
from conveyor.task import Task
from tests.api import migrated_app
from tests.conftest import Clock


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Conveyor]:
    yield from migrated_app(tmp_path, clock)


@pytest.fixture
def double(app: Conveyor) -> Task[[int], int]:
    @app.task(name="api.double")
    async def double(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    return double


def test_async_task_runs_under_drain_and_returns_its_value(
    app: Conveyor, double: Task[[int], int]
) -> None:
    job = double.enqueue(21)

    assert double.is_async is True
    assert app.drain() == DrainReport(succeeded=1)
    assert job.result(timeout=0) == 42


def test_async_task_that_raises_fails_with_its_error(app: Conveyor) -> None:
    @app.task(name="api.async_fails", retry_on=(ConnectionError,))
    async def async_fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("not async-safe")

    job = async_fails.enqueue()

    assert app.drain() == DrainReport(failed=1)
    with pytest.raises(JobFailed) as raised:
        job.result(timeout=0)
    assert (raised.value.error_type, raised.value.error_message) == (
        "ValueError",
        "not async-safe",
    )


def test_aenqueue_inside_asyncio_run_stores_a_job_drain_runs(
    app: Conveyor, double: Task[[int], int]
) -> None:
    async def enqueue_from_async_code() -> Job:
        return await double.aenqueue(4)

    job = asyncio.run(enqueue_from_async_code())

    record = job.refresh().record
    assert (record.task, record.state, record.args_json) == (
        "api.double",
        JobState.QUEUED,
        "[4]",
    )
    app.drain()
    assert job.result(timeout=0) == 8


def test_app_closes_cleanly_after_aenqueue_wrote_from_another_thread(
    app: Conveyor, double: Task[[int], int]
) -> None:
    async def enqueue_from_async_code() -> Job:
        return await double.aenqueue(4)

    asyncio.run(enqueue_from_async_code())

    app.close()

    # The store reopens on next use, so the app stays usable.
    assert app.store.count_jobs() == {JobState.QUEUED: 1}

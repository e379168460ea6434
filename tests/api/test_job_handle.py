"""``Job``: a handle on one stored job, as last read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, Job, JobNotFound, JobState
from tests.api import migrated_app
from tests.conftest import Clock


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Conveyor]:
    yield from migrated_app(tmp_path, clock)


def test_enqueued_job_reads_back_whole(app: Conveyor, clock: Clock) -> None:
    @app.task(name="api.add", queue="math", priority=3, max_attempts=4, timeout=9)
    def add(a: int, b: int) -> int:
        return a + b

    job = add.enqueue(1, b=2)
    record = job.record

    assert (record.id, record.task, record.queue, record.priority) == (
        job.id,
        "api.add",
        "math",
        3,
    )
    assert (record.state, record.args_json, record.kwargs_json) == (
        JobState.QUEUED,
        "[1]",
        '{"b":2}',
    )
    assert (record.attempts, record.max_attempts, record.timeout) == (0, 4, 9.0)
    assert (record.run_at, record.created_at, record.updated_at) == (
        clock.now,
        clock.now,
        clock.now,
    )
    assert (record.finished_at, record.worker_id, record.lease_expires_at) == (
        None,
        None,
        None,
    )
    assert (record.result_json, record.error_type, record.traceback) == (
        None,
        None,
        None,
    )


def test_job_state_is_as_last_read_until_refreshed(app: Conveyor) -> None:
    @app.task(name="api.noop")
    def noop() -> None: ...

    job = noop.enqueue()
    job.record  # noqa: B018  (reads the job now)
    app.drain()

    assert job.state is JobState.QUEUED
    assert job.refresh() is job
    assert job.state is JobState.SUCCEEDED


def test_repr_shows_the_id_and_the_state_as_last_read(app: Conveyor) -> None:
    @app.task(name="api.noop")
    def noop() -> None: ...

    job_id = noop.enqueue().id
    unread = Job(app.store, job_id)

    assert repr(unread) == f"<Job {job_id} unread>"
    assert repr(unread.refresh()) == f"<Job {job_id} queued>"


def test_refresh_of_a_missing_job_raises_job_not_found(app: Conveyor) -> None:
    with pytest.raises(JobNotFound) as raised:
        Job(app.store, 404).refresh()

    assert str(raised.value) == "job 404 does not exist (it may have been pruned)"

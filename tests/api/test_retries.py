"""Retries: which errors are retried, how many attempts a job gets, what
``Job.result`` raises, and the history a retried job leaves behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import (
    Conveyor,
    DrainReport,
    Fixed,
    JobFailed,
    JobNotFound,
    JobState,
    ResultTimeout,
    current_job,
)
from conveyor.records import AttemptOutcome
from conveyor.task import Task
from tests.api import migrated_app
from tests.conftest import Clock

ERRORS: dict[str, type[Exception]] = {
    "connection": ConnectionError,
    "refused": ConnectionRefusedError,
    "value": ValueError,
}


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Conveyor]:
    yield from migrated_app(tmp_path, clock)


@pytest.fixture
def fail_with(app: Conveyor) -> Task[[str], None]:
    @app.task(
        name="api.fail_with",
        max_attempts=3,
        backoff=Fixed(0),
        retry_on=(ConnectionError,),
    )
    def fail_with(kind: str) -> None:
        raise ERRORS[kind](f"{kind} trouble")

    return fail_with


def test_error_in_retry_on_is_retried_until_max_attempts(
    app: Conveyor, fail_with: Task[[str], None]
) -> None:
    job = fail_with.enqueue("connection")

    # Fixed(0) makes each retry due at once, so one drain runs every attempt.
    assert app.drain() == DrainReport(retried=2, failed=1)
    assert (job.refresh().state, job.attempts) == (JobState.FAILED, 3)
    assert [
        (a.attempt, a.outcome, a.error_type) for a in app.store.list_attempts(job.id)
    ] == [
        (1, AttemptOutcome.FAILED, "ConnectionError"),
        (2, AttemptOutcome.FAILED, "ConnectionError"),
        (3, AttemptOutcome.FAILED, "ConnectionError"),
    ]


def test_subclass_of_a_retry_on_type_is_retried(
    app: Conveyor, fail_with: Task[[str], None]
) -> None:
    job = fail_with.enqueue("refused")

    assert app.drain() == DrainReport(retried=2, failed=1)
    assert job.refresh().record.error_type == "ConnectionRefusedError"


def test_error_outside_retry_on_fails_the_job_at_once(
    app: Conveyor, fail_with: Task[[str], None]
) -> None:
    job = fail_with.enqueue("value")

    assert app.drain() == DrainReport(failed=1)
    assert (job.refresh().state, job.attempts) == (JobState.FAILED, 1)


def test_max_attempts_one_fails_on_the_first_retryable_error(
    app: Conveyor, fail_with: Task[[str], None]
) -> None:
    job = fail_with.using(max_attempts=1).enqueue("connection")

    assert app.drain() == DrainReport(failed=1)
    assert (job.refresh().state, job.attempts) == (JobState.FAILED, 1)


def test_result_of_a_failed_job_raises_job_failed_with_the_stored_error(
    app: Conveyor, fail_with: Task[[str], None]
) -> None:
    job = fail_with.enqueue("value")
    app.drain()

    with pytest.raises(JobFailed) as raised:
        job.result(timeout=0)

    error = raised.value
    assert (error.job_id, error.error_type, error.error_message) == (
        job.id,
        "ValueError",
        "value trouble",
    )
    assert str(error) == f"job {job.id} failed: ValueError: value trouble"
    assert error.traceback is not None
    assert error.traceback.startswith("Traceback (most recent call last):\n")
    assert error.traceback.endswith("\nValueError: value trouble\n")
    assert 'raise ERRORS[kind](f"{kind} trouble")' in error.traceback
    assert error.traceback == job.record.traceback


def test_result_of_a_succeeded_job_returns_its_value(
    app: Conveyor, clock: Clock
) -> None:
    @app.task(name="api.make_report")
    def make_report(name: str) -> dict[str, object]:
        return {"name": name, "rows": [1, 2, 3]}

    job = make_report.enqueue("weekly")
    app.drain()

    assert job.result(timeout=0) == {"name": "weekly", "rows": [1, 2, 3]}
    assert (job.state, job.attempts, job.record.finished_at) == (
        JobState.SUCCEEDED,
        1,
        clock.now,
    )


def test_result_of_a_job_that_returned_none_is_none(app: Conveyor) -> None:
    @app.task(name="api.nothing")
    def nothing() -> None:
        return None

    job = nothing.enqueue()
    app.drain()

    assert job.result(timeout=0) is None


def test_result_raises_result_timeout_while_the_job_is_not_final(
    app: Conveyor, fail_with: Task[[str], None]
) -> None:
    job = fail_with.enqueue("value")

    with pytest.raises(ResultTimeout) as raised:
        job.result(timeout=0)

    assert str(raised.value) == f"job {job.id} is still queued after 0 s"


def test_result_raises_result_timeout_while_a_retry_waits(app: Conveyor) -> None:
    @app.task(name="api.slow_retry", backoff=Fixed(60), retry_on=(ConnectionError,))
    def slow_retry() -> None:
        raise ConnectionError("later")

    job = slow_retry.enqueue()
    app.drain()

    assert (job.refresh().state, job.attempts) == (JobState.QUEUED, 1)
    with pytest.raises(ResultTimeout) as raised:
        job.result(timeout=0)
    assert str(raised.value) == f"job {job.id} is still queued after 0 s"


def test_app_job_reads_a_job_by_id_and_refuses_a_missing_one(
    app: Conveyor, fail_with: Task[[str], None]
) -> None:
    job = fail_with.enqueue("value")

    assert app.job(job.id).record == job.record
    with pytest.raises(JobNotFound) as raised:
        app.job(job.id + 1)
    assert str(raised.value) == (
        f"job {job.id + 1} does not exist (it may have been pruned)"
    )


def test_retried_then_succeeded_job_keeps_its_whole_history(
    app: Conveyor, clock: Clock
) -> None:
    @app.task(name="api.flaky", backoff=Fixed(5), retry_on=(ConnectionError,))
    def flaky() -> str:
        if current_job().attempt == 1:
            raise ConnectionError("first try fails")
        return "second try works"

    job = flaky.enqueue()
    start = clock.now
    assert app.drain() == DrainReport(retried=1)
    retry_at = clock.advance(5)
    assert app.drain() == DrainReport(succeeded=1)

    events = app.store.list_events(job.id)
    drainer = f"drain-{os.getpid()}"
    Q, R, S = JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED
    assert [
        (e.job_id, e.at, e.from_state, e.to_state, e.reason, e.actor) for e in events
    ] == [
        (job.id, start, None, Q, "enqueued", "api"),
        (job.id, start, Q, R, "claimed", drainer),
        (job.id, start, R, Q, "retry", drainer),
        (job.id, retry_at, Q, R, "claimed", drainer),
        (job.id, retry_at, R, S, "succeeded", drainer),
    ]
    assert [e.id for e in events] == sorted(e.id for e in events)
    attempts = app.store.list_attempts(job.id)
    assert [
        (a.attempt, a.worker_id, a.started_at, a.finished_at, a.outcome, a.error_type)
        for a in attempts
    ] == [
        (1, drainer, start, start, AttemptOutcome.FAILED, "ConnectionError"),
        (2, drainer, retry_at, retry_at, AttemptOutcome.SUCCEEDED, None),
    ]
    assert attempts[0].error_message == "first try fails"
    assert job.result(timeout=0) == "second try works"

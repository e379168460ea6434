"""The store contract, proved on every store: SQLite and PostgreSQL alike.

Each test states one behaviour promised by the docstrings of
``conveyor.store.base.Store`` and checks it exactly, on a real database.
Time is passed in as ``now`` from the ``clock`` fixture; no test sleeps to
let time pass. A behaviour only one engine has is skipped on the other with
the reason stated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from psycopg import sql

from conveyor.errors import StoreError
from conveyor.records import (
    AttemptOutcome,
    AttemptRecord,
    ClaimedJob,
    ErrorInfo,
    EventRecord,
    JobFilter,
    JobRecord,
    NewJob,
    Outcome,
    OutcomeKind,
    Rescued,
    WorkerInfo,
)
from conveyor.states import JobState
from conveyor.store import Store
from tests import _pg

if TYPE_CHECKING:
    from tests.conftest import Clock

StoreFactory = Callable[[], Store]

#: Seconds a claim holds its lease in these tests.
LEASE = 30.0

#: How long a test waits on another thread before calling it stuck. Generous:
#: it bounds a failure, it does not measure speed.
PATIENCE = 5.0

QUEUED = JobState.QUEUED
RUNNING = JobState.RUNNING
SUCCEEDED = JobState.SUCCEEDED
FAILED = JobState.FAILED

BOOM = ErrorInfo(type="ValueError", message="boom", traceback="Traceback: boom")


def enqueue_one(store: Store, now: datetime, task: str = "t", **fields: object) -> int:
    """Enqueue one job of ``task`` with the given ``NewJob`` fields; return its id."""
    new = NewJob(task=task, **fields)  # type: ignore[arg-type]
    [job_id] = store.enqueue([new], now)

    return job_id


def claim_one(
    store: Store, now: datetime, worker: str = "w1", queues: list[str] | None = None
) -> ClaimedJob:
    """Claim exactly one job for ``worker``; fail the test if there is none."""
    claimed = store.claim(worker, queues, 1, LEASE, now)
    assert len(claimed) == 1, claimed

    return claimed[0]


def claimed_ids(store: Store, now: datetime, limit: int = 100) -> list[int]:
    """Claim one at a time for worker w1; return the ids in the order claimed."""
    ids = []
    while claimed := store.claim("w1", None, 1, LEASE, now):
        ids.extend(job.id for job in claimed)
        assert len(ids) <= limit

    return ids


def succeed(store: Store, job: ClaimedJob, now: datetime, worker: str = "w1") -> None:
    """Finish ``job`` as succeeded, checking the store accepted it."""
    outcome = Outcome(job.id, job.attempt, OutcomeKind.SUCCEEDED, result_json="1")

    assert store.finish(worker, [outcome], now) == [job.id]


def transitions(store: Store, job_id: int) -> list[tuple[object, ...]]:
    """Return a job's events as (from, to, reason, actor, at) tuples."""
    return [
        (e.from_state, e.to_state, e.reason, e.actor, e.at)
        for e in store.list_events(job_id)
    ]


def snapshot(store: Store, job_id: int) -> tuple[object, ...]:
    """Return everything the store holds about one job."""
    return (
        store.get_job(job_id),
        store.list_attempts(job_id),
        store.list_events(job_id),
    )


def worker_info(worker_id: str, started_at: datetime, **fields: object) -> WorkerInfo:
    """Return a running worker's record, started at ``started_at``."""
    values: dict[str, object] = {
        "id": worker_id,
        "host": "host-1",
        "pid": 4242,
        "queues": ("default", "mail"),
        "concurrency": 8,
        "pool": "thread",
        "started_at": started_at,
        "heartbeat_at": started_at,
        "state": "running",
        "running_jobs": 0,
    } | fields

    return WorkerInfo(**values)  # type: ignore[arg-type]


def run_in_threads(targets: list[Callable[[], object]]) -> None:
    """Run each target in its own thread, started together; re-raise errors."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(targets))

    def run(target: Callable[[], object]) -> None:
        try:
            start.wait(PATIENCE)
            target()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE * 6)

    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    if errors:
        raise errors[0]


def wait_while(store: Store, poke: Callable[[], object]) -> bool | None:
    """Run ``store.wait_for_work(PATIENCE)`` while ``poke`` is called repeatedly.

    Poking until the waiter returns (rather than once) keeps the test free of
    the race between the waiter starting to listen and the first poke.
    Returns what ``wait_for_work`` returned, or None if it never did.
    """
    answer: list[bool] = []
    returned = threading.Event()

    def wait() -> None:
        answer.append(store.wait_for_work(PATIENCE))
        returned.set()

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    for _ in range(int(PATIENCE / 0.05)):
        poke()
        if returned.wait(0.05):
            break
    waiter.join(PATIENCE)

    return answer[0] if answer else None


def callers_connection(store: Store, store_url: str) -> psycopg.Connection[Any]:
    """Open an application's own connection to the store's database."""
    if not store.accepts_connection:
        pytest.skip(f"the {store.dialect} store does not accept a caller's connection")

    [schema] = parse_qs(urlsplit(store_url).query)["schema"]
    connection = psycopg.connect(_pg.base_url())
    connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))

    return connection


# -- the store itself -----------------------------------------------------


def test_dialect_names_the_engine(store: Store, dialect: str) -> None:
    assert store.dialect == dialect


def test_first_migration_applies_versions_up_to_schema_version(
    unmigrated_store: Store,
) -> None:
    assert unmigrated_store.schema_version() == 0

    applied = unmigrated_store.migrate()

    assert applied == list(range(1, unmigrated_store.schema_version() + 1))
    assert applied[0] == 1


def test_second_migration_applies_nothing(unmigrated_store: Store) -> None:
    unmigrated_store.migrate()
    version = unmigrated_store.schema_version()

    assert unmigrated_store.migrate() == []
    assert unmigrated_store.schema_version() == version


def test_migration_from_a_second_store_applies_nothing(
    store: Store, store_factory: StoreFactory
) -> None:
    other = store_factory()

    assert other.migrate() == []
    assert other.schema_version() == store.schema_version()


def test_concurrent_migrations_apply_each_version_once(
    unmigrated_store: Store, store_factory: StoreFactory
) -> None:
    stores = [unmigrated_store, *(store_factory() for _ in range(7))]
    applied: list[list[int]] = []

    run_in_threads([lambda s=s: applied.append(s.migrate()) for s in stores])

    version = unmigrated_store.schema_version()
    every_version = sorted(v for versions in applied for v in versions)
    assert every_version == list(range(1, version + 1))


# -- enqueue --------------------------------------------------------------


def test_enqueue_returns_ids_in_order(store: Store, clock: Clock) -> None:
    jobs = [NewJob(task="a"), NewJob(task="b"), NewJob(task="c")]

    ids = store.enqueue(jobs, clock.now)

    assert len(ids) == 3
    assert ids == sorted(set(ids))
    tasks = [store.get_job(i).task for i in ids]  # type: ignore[union-attr]
    assert tasks == ["a", "b", "c"]


def test_enqueue_of_a_large_batch_returns_each_id_for_its_own_job(
    store: Store, clock: Clock
) -> None:
    jobs = [NewJob(task=f"t{n}", priority=n % 7) for n in range(500)]

    ids = store.enqueue(jobs, clock.now)

    tasks = {job.id: job.task for job in store.list_jobs(JobFilter(limit=1000))}
    assert [tasks[job_id] for job_id in ids] == [f"t{n}" for n in range(500)]


def test_enqueue_that_cannot_commit_raises_store_error(
    unmigrated_store: Store, clock: Clock
) -> None:
    with pytest.raises(StoreError):
        unmigrated_store.enqueue([NewJob(task="t")], clock.now)


def test_enqueue_of_a_batch_with_a_bad_job_writes_none_of_it(
    store: Store, clock: Clock
) -> None:
    jobs = [NewJob(task="good"), NewJob(task="bad", max_attempts=0)]

    with pytest.raises(StoreError):
        store.enqueue(jobs, clock.now)

    assert store.count_jobs() == {}


def test_enqueue_of_no_jobs_returns_no_ids_and_writes_nothing(
    store: Store, clock: Clock
) -> None:
    assert store.enqueue([], clock.now) == []
    assert store.count_jobs() == {}


def test_enqueue_stores_every_field(store: Store, clock: Clock) -> None:
    run_at = clock.after(60)
    new = NewJob(
        task="mail.send",
        args_json='["ada@example.com"]',
        kwargs_json='{"subject": "Hello", "n": [1, 2.5, null]}',
        queue="mail",
        priority=7,
        max_attempts=5,
        timeout=12.5,
        run_at=run_at,
    )

    [job_id] = store.enqueue([new], clock.now)

    assert store.get_job(job_id) == JobRecord(
        id=job_id,
        task="mail.send",
        queue="mail",
        priority=7,
        state=QUEUED,
        args_json='["ada@example.com"]',
        kwargs_json='{"subject": "Hello", "n": [1, 2.5, null]}',
        attempts=0,
        max_attempts=5,
        timeout=12.5,
        run_at=run_at,
        created_at=clock.now,
        updated_at=clock.now,
        finished_at=None,
        worker_id=None,
        lease_expires_at=None,
        result_json=None,
        error_type=None,
        error_message=None,
        traceback=None,
    )


def test_enqueue_keeps_json_text_as_given(store: Store, clock: Clock) -> None:
    args = '[ "é", "\\u00e9", {"b": 1, "a": 2} ]'
    kwargs = '{"z": 1,   "a": "x"}'

    job_id = enqueue_one(store, clock.now, args_json=args, kwargs_json=kwargs)

    job = store.get_job(job_id)
    assert job is not None
    assert (job.args_json, job.kwargs_json) == (args, kwargs)


def test_enqueue_without_run_at_runs_at_now(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)

    job = store.get_job(job_id)
    assert job is not None
    assert job.run_at == clock.now
    assert job.timeout is None


def test_enqueue_writes_an_enqueued_event_by_the_actor(
    store: Store, clock: Clock
) -> None:
    default_actor = enqueue_one(store, clock.now)
    [cli_actor] = store.enqueue([NewJob(task="t")], clock.now, actor="cli")

    assert transitions(store, default_actor) == [
        (None, QUEUED, "enqueued", "api", clock.now)
    ]
    assert transitions(store, cli_actor) == [
        (None, QUEUED, "enqueued", "cli", clock.now)
    ]


def test_enqueued_event_belongs_to_its_job(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)

    [event] = store.list_events(job_id)

    assert isinstance(event, EventRecord)
    assert event.job_id == job_id


def test_enqueue_opens_no_attempt(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)

    assert store.list_attempts(job_id) == []


def test_enqueue_on_the_callers_connection_commits_with_it(
    store: Store, clock: Clock, store_url: str
) -> None:
    connection = callers_connection(store, store_url)

    with connection:
        [job_id] = store.enqueue([NewJob(task="t")], clock.now, connection=connection)

        assert store.get_job(job_id) is None
        connection.commit()

    job = store.get_job(job_id)
    assert job is not None
    assert job.state == QUEUED


def test_enqueue_on_the_callers_connection_rolls_back_with_it(
    store: Store, clock: Clock, store_url: str
) -> None:
    connection = callers_connection(store, store_url)

    with connection:
        [job_id] = store.enqueue([NewJob(task="t")], clock.now, connection=connection)
        connection.rollback()

    assert store.get_job(job_id) is None
    assert store.count_jobs() == {}


# -- claim ----------------------------------------------------------------


def test_job_enqueued_now_is_claimable_at_once(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)

    assert claim_one(store, clock.now).id == job_id


def test_claim_takes_higher_priority_first(store: Store, clock: Clock) -> None:
    low = enqueue_one(store, clock.now, priority=-5)
    middle = enqueue_one(store, clock.now, priority=0)
    high = enqueue_one(store, clock.now, priority=10)

    assert claimed_ids(store, clock.now) == [high, middle, low]


def test_claim_takes_older_run_at_first_within_a_priority(
    store: Store, clock: Clock
) -> None:
    newest = enqueue_one(store, clock.now, run_at=clock.after(-1))
    oldest = enqueue_one(store, clock.now, run_at=clock.after(-3))
    middle = enqueue_one(store, clock.now, run_at=clock.after(-2))

    assert claimed_ids(store, clock.now) == [oldest, middle, newest]


def test_claim_puts_priority_before_run_at(store: Store, clock: Clock) -> None:
    old_low = enqueue_one(store, clock.now, priority=0, run_at=clock.after(-100))
    new_high = enqueue_one(store, clock.now, priority=1, run_at=clock.now)

    assert claimed_ids(store, clock.now) == [new_high, old_low]


def test_claim_takes_lowest_id_first_when_priority_and_run_at_tie(
    store: Store, clock: Clock
) -> None:
    ids = store.enqueue([NewJob(task="t") for _ in range(5)], clock.now)

    assert claimed_ids(store, clock.now) == ids


def test_claim_never_returns_a_job_whose_run_at_is_in_the_future(
    store: Store, clock: Clock
) -> None:
    enqueue_one(store, clock.now, run_at=clock.after(60))

    assert store.claim("w1", None, 10, LEASE, clock.now) == []
    assert store.claim("w1", None, 10, LEASE, clock.after(59)) == []


def test_claim_returns_a_delayed_job_once_its_run_at_is_reached(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now, run_at=clock.after(60))

    assert store.claim("w1", None, 10, LEASE, clock.after(59)) == []
    assert claim_one(store, clock.after(60)).id == job_id


def test_claim_serves_only_the_named_queues(store: Store, clock: Clock) -> None:
    a = enqueue_one(store, clock.now, queue="a")
    enqueue_one(store, clock.now, queue="b")
    c = enqueue_one(store, clock.now, queue="c")

    claimed = store.claim("w1", ["a", "c"], 10, LEASE, clock.now)

    assert sorted(job.id for job in claimed) == [a, c]
    assert store.claim("w1", ["a", "c"], 10, LEASE, clock.now) == []


def test_claim_of_no_queue_filter_serves_every_queue(
    store: Store, clock: Clock
) -> None:
    ids = [enqueue_one(store, clock.now, queue=q) for q in ("a", "b", "default")]

    claimed = store.claim("w1", None, 10, LEASE, clock.now)

    assert sorted(job.id for job in claimed) == ids


def test_claim_returns_the_job_as_claimed(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(
        store,
        clock.now,
        task="mail.send",
        args_json="[1]",
        kwargs_json='{"a": 2}',
        queue="mail",
        max_attempts=4,
        timeout=9.5,
    )

    assert store.claim("w1", ["mail"], 1, LEASE, clock.now) == [
        ClaimedJob(
            id=job_id,
            task="mail.send",
            queue="mail",
            args_json="[1]",
            kwargs_json='{"a": 2}',
            attempt=1,
            max_attempts=4,
            timeout=9.5,
        )
    ]


def test_claim_moves_the_job_to_running_under_a_lease(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    claimed_at = clock.advance(5)

    claim_one(store, claimed_at, worker="w1")

    job = store.get_job(job_id)
    assert job is not None
    assert (job.state, job.attempts, job.worker_id) == (RUNNING, 1, "w1")
    assert job.lease_expires_at == claimed_at + timedelta(seconds=LEASE)
    assert job.updated_at == claimed_at
    assert job.finished_at is None


def test_claim_opens_an_attempt(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)
    claimed_at = clock.advance(5)

    claim_one(store, claimed_at, worker="w1")

    assert store.list_attempts(job_id) == [
        AttemptRecord(
            job_id=job_id,
            attempt=1,
            worker_id="w1",
            started_at=claimed_at,
            finished_at=None,
            outcome=None,
            error_type=None,
            error_message=None,
            traceback=None,
        )
    ]


def test_claim_writes_a_running_event_by_the_worker(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)
    claimed_at = clock.advance(5)

    claim_one(store, claimed_at, worker="w1")

    assert transitions(store, job_id)[1:] == [
        (QUEUED, RUNNING, "claimed", "w1", claimed_at)
    ]


def test_claim_takes_at_most_limit_jobs(store: Store, clock: Clock) -> None:
    ids = store.enqueue([NewJob(task="t") for _ in range(5)], clock.now)

    first = store.claim("w1", None, 2, LEASE, clock.now)
    second = store.claim("w1", None, 2, LEASE, clock.now)
    third = store.claim("w1", None, 2, LEASE, clock.now)

    assert [len(first), len(second), len(third)] == [2, 2, 1]
    assert sorted(job.id for job in first + second + third) == ids


def test_claimed_job_is_not_claimed_again(store: Store, clock: Clock) -> None:
    enqueue_one(store, clock.now)
    claim_one(store, clock.now, worker="w1")

    assert store.claim("w2", None, 10, LEASE, clock.now) == []
    assert store.claim("w1", None, 10, LEASE, clock.after(LEASE - 1)) == []


def test_claim_of_an_empty_store_returns_nothing(store: Store, clock: Clock) -> None:
    assert store.claim("w1", None, 10, LEASE, clock.now) == []


def test_concurrent_claims_never_share_a_job(
    store: Store, store_factory: StoreFactory, clock: Clock
) -> None:
    ids = store.enqueue([NewJob(task="t") for _ in range(60)], clock.now)
    workers = {f"w{n}": store_factory() for n in range(4)}
    claimed: dict[str, list[int]] = {name: [] for name in workers}

    def drain(name: str) -> None:
        while jobs := workers[name].claim(name, None, 3, LEASE, clock.now):
            claimed[name].extend(job.id for job in jobs)

    run_in_threads([lambda n=name: drain(n) for name in workers])

    every_claim = [job_id for got in claimed.values() for job_id in got]
    assert sorted(every_claim) == ids
    for name, got in claimed.items():
        holders = {store.get_job(i).worker_id for i in got}  # type: ignore[union-attr]
        assert holders <= {name}


# -- heartbeat ------------------------------------------------------------


def test_heartbeat_extends_the_lease_and_returns_held_ids(
    store: Store, clock: Clock
) -> None:
    first = enqueue_one(store, clock.now)
    second = enqueue_one(store, clock.now)
    store.claim("w1", None, 2, LEASE, clock.now)
    beat_at = clock.advance(20)

    held = store.heartbeat("w1", [first, second], 45.0, beat_at)

    assert held == {first, second}
    for job_id in (first, second):
        job = store.get_job(job_id)
        assert job is not None
        assert job.lease_expires_at == beat_at + timedelta(seconds=45)


def test_heartbeat_of_no_jobs_holds_nothing(store: Store, clock: Clock) -> None:
    assert store.heartbeat("w1", [], LEASE, clock.now) == set()


def test_heartbeat_omits_jobs_held_by_another_worker(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    claim_one(store, clock.now, worker="w1")
    before = store.get_job(job_id)

    assert store.heartbeat("w2", [job_id], LEASE, clock.advance(10)) == set()
    assert store.get_job(job_id) == before


def test_heartbeat_omits_jobs_taken_back_by_rescue(store: Store, clock: Clock) -> None:
    lost = enqueue_one(store, clock.now)
    kept = enqueue_one(store, clock.now)
    claim_one(store, clock.now, worker="w1")
    clock.advance(LEASE + 1)
    claim_one(store, clock.now, worker="w1")
    store.rescue(clock.advance(1), actor="rescuer")

    assert store.heartbeat("w1", [lost, kept], LEASE, clock.now) == {kept}
    lost_job = store.get_job(lost)
    assert lost_job is not None
    assert lost_job.state == QUEUED


def test_heartbeat_omits_finished_jobs(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)
    succeed(store, claim_one(store, clock.now), clock.now)

    assert store.heartbeat("w1", [job_id], LEASE, clock.advance(1)) == set()


def test_heartbeat_omits_unknown_ids(store: Store, clock: Clock) -> None:
    assert store.heartbeat("w1", [123456], LEASE, clock.now) == set()


# -- finish ---------------------------------------------------------------


def test_finish_succeeded_stores_the_result_and_ends_the_job(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now)
    done_at = clock.advance(3)
    outcome = Outcome(
        job_id, job.attempt, OutcomeKind.SUCCEEDED, result_json='{"x": 1}'
    )

    assert store.finish("w1", [outcome], done_at) == [job_id]

    record = store.get_job(job_id)
    assert record is not None
    assert (record.state, record.result_json) == (SUCCEEDED, '{"x": 1}')
    assert (record.finished_at, record.updated_at) == (done_at, done_at)
    assert record.lease_expires_at is None
    assert record.attempts == 1
    assert (record.error_type, record.error_message, record.traceback) == (
        None,
        None,
        None,
    )


def test_finish_succeeded_closes_the_attempt(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)
    started_at = clock.now
    succeed(store, claim_one(store, started_at), clock.advance(3))

    assert store.list_attempts(job_id) == [
        AttemptRecord(
            job_id=job_id,
            attempt=1,
            worker_id="w1",
            started_at=started_at,
            finished_at=clock.now,
            outcome=AttemptOutcome.SUCCEEDED,
            error_type=None,
            error_message=None,
            traceback=None,
        )
    ]


def test_finish_succeeded_writes_an_event_by_the_worker(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    succeed(store, claim_one(store, clock.now), clock.advance(3))

    assert transitions(store, job_id)[-1] == (
        RUNNING,
        SUCCEEDED,
        "succeeded",
        "w1",
        clock.now,
    )


def test_finish_failed_stores_the_error_on_the_job(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now)
    done_at = clock.advance(3)

    accepted = store.finish(
        "w1", [Outcome(job_id, job.attempt, OutcomeKind.FAILED, error=BOOM)], done_at
    )

    assert accepted == [job_id]
    record = store.get_job(job_id)
    assert record is not None
    assert record.state == FAILED
    assert (record.error_type, record.error_message, record.traceback) == (
        "ValueError",
        "boom",
        "Traceback: boom",
    )
    assert (record.finished_at, record.lease_expires_at) == (done_at, None)
    assert record.result_json is None


def test_finish_failed_stores_the_error_on_the_attempt(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now)
    done_at = clock.advance(3)

    store.finish(
        "w1", [Outcome(job_id, job.attempt, OutcomeKind.FAILED, error=BOOM)], done_at
    )

    [attempt] = store.list_attempts(job_id)
    assert (attempt.finished_at, attempt.outcome) == (done_at, AttemptOutcome.FAILED)
    assert (attempt.error_type, attempt.error_message, attempt.traceback) == (
        "ValueError",
        "boom",
        "Traceback: boom",
    )
    assert transitions(store, job_id)[-1] == (RUNNING, FAILED, "failed", "w1", done_at)


def test_finish_retry_requeues_the_job_at_run_at_with_the_error(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now, max_attempts=3)
    job = claim_one(store, clock.now)
    done_at = clock.advance(3)
    retry_at = clock.after(60)
    outcome = Outcome(
        job_id, job.attempt, OutcomeKind.RETRY, error=BOOM, run_at=retry_at
    )

    assert store.finish("w1", [outcome], done_at) == [job_id]

    record = store.get_job(job_id)
    assert record is not None
    assert (record.state, record.run_at, record.attempts) == (QUEUED, retry_at, 1)
    assert (record.error_type, record.error_message, record.traceback) == (
        "ValueError",
        "boom",
        "Traceback: boom",
    )
    assert (record.finished_at, record.lease_expires_at) == (None, None)
    [attempt] = store.list_attempts(job_id)
    assert (attempt.finished_at, attempt.outcome) == (done_at, AttemptOutcome.FAILED)
    assert attempt.error_type == "ValueError"
    assert transitions(store, job_id)[-1] == (RUNNING, QUEUED, "retry", "w1", done_at)


def test_success_after_a_failed_attempt_clears_the_jobs_error(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now, max_attempts=3)
    first = claim_one(store, clock.now)
    retry = Outcome(job_id, first.attempt, OutcomeKind.RETRY, error=BOOM)
    store.finish("w1", [retry], clock.now)
    second = claim_one(store, clock.now)
    done = Outcome(job_id, second.attempt, OutcomeKind.SUCCEEDED, result_json="1")

    assert store.finish("w1", [done], clock.advance(1)) == [job_id]

    record = store.get_job(job_id)
    assert record is not None
    assert (record.error_type, record.error_message, record.traceback) == (
        None,
        None,
        None,
    )
    assert [a.error_type for a in store.list_attempts(job_id)] == ["ValueError", None]


def test_retried_job_is_claimed_again_only_at_run_at_as_attempt_two(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now, max_attempts=3)
    job = claim_one(store, clock.now)
    retry_at = clock.after(60)
    store.finish(
        "w1",
        [Outcome(job_id, job.attempt, OutcomeKind.RETRY, error=BOOM, run_at=retry_at)],
        clock.now,
    )

    assert store.claim("w2", None, 10, LEASE, clock.after(59)) == []
    again = claim_one(store, retry_at, worker="w2")

    assert (again.id, again.attempt) == (job_id, 2)
    assert [(a.attempt, a.worker_id) for a in store.list_attempts(job_id)] == [
        (1, "w1"),
        (2, "w2"),
    ]


def test_timed_out_error_records_a_timed_out_attempt(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now)
    timed_out = ErrorInfo(type="TimeoutError", message="ran over 10s", timed_out=True)
    outcome = Outcome(
        job_id, job.attempt, OutcomeKind.RETRY, error=timed_out, run_at=clock.now
    )

    store.finish("w1", [outcome], clock.now)

    [attempt] = store.list_attempts(job_id)
    assert attempt.outcome == AttemptOutcome.TIMED_OUT
    assert (attempt.error_type, attempt.error_message) == (
        "TimeoutError",
        "ran over 10s",
    )
    assert transitions(store, job_id)[-1][:3] == (RUNNING, QUEUED, "timed out")


def test_timed_out_final_failure_records_a_timed_out_attempt(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now)
    timed_out = ErrorInfo(type="TimeoutError", message="ran over 10s", timed_out=True)

    store.finish(
        "w1",
        [Outcome(job_id, job.attempt, OutcomeKind.FAILED, error=timed_out)],
        clock.now,
    )

    [attempt] = store.list_attempts(job_id)
    assert attempt.outcome == AttemptOutcome.TIMED_OUT
    job_record = store.get_job(job_id)
    assert job_record is not None
    assert (job_record.state, job_record.error_type) == (FAILED, "TimeoutError")


def test_snoozed_job_is_requeued_at_run_at_without_counting_the_attempt(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now)
    wake_at = clock.after(120)

    accepted = store.finish(
        "w1",
        [Outcome(job_id, job.attempt, OutcomeKind.SNOOZED, run_at=wake_at)],
        clock.now,
    )

    assert accepted == [job_id]
    record = store.get_job(job_id)
    assert record is not None
    assert (record.state, record.run_at, record.attempts) == (QUEUED, wake_at, 0)
    assert (record.lease_expires_at, record.finished_at) == (None, None)
    [attempt] = store.list_attempts(job_id)
    assert (attempt.outcome, attempt.finished_at) == (
        AttemptOutcome.SNOOZED,
        clock.now,
    )
    assert transitions(store, job_id)[-1] == (
        RUNNING,
        QUEUED,
        "snoozed",
        "w1",
        clock.now,
    )


def test_snoozed_job_runs_again_with_the_same_attempt_number(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now)
    wake_at = clock.after(120)
    store.finish(
        "w1",
        [Outcome(job_id, job.attempt, OutcomeKind.SNOOZED, run_at=wake_at)],
        clock.now,
    )

    assert store.claim("w1", None, 1, LEASE, clock.after(119)) == []
    again = claim_one(store, wake_at)

    assert (again.id, again.attempt) == (job_id, job.attempt)


def test_snooze_without_run_at_requeues_the_job_at_now(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now)
    snoozed_at = clock.advance(7)

    store.finish("w1", [Outcome(job_id, job.attempt, OutcomeKind.SNOOZED)], snoozed_at)

    record = store.get_job(job_id)
    assert record is not None
    assert (record.state, record.run_at) == (QUEUED, snoozed_at)


def test_interrupted_job_is_requeued_at_once_without_counting_the_attempt(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now, max_attempts=1)
    job = claim_one(store, clock.now)
    stopped_at = clock.advance(2)

    accepted = store.finish(
        "w1", [Outcome(job_id, job.attempt, OutcomeKind.INTERRUPTED)], stopped_at
    )

    assert accepted == [job_id]
    record = store.get_job(job_id)
    assert record is not None
    assert (record.state, record.run_at, record.attempts) == (QUEUED, stopped_at, 0)
    [attempt] = store.list_attempts(job_id)
    assert (attempt.outcome, attempt.finished_at) == (
        AttemptOutcome.INTERRUPTED,
        stopped_at,
    )
    assert transitions(store, job_id)[-1] == (
        RUNNING,
        QUEUED,
        "interrupted",
        "w1",
        stopped_at,
    )
    again = claim_one(store, stopped_at, worker="w2")
    assert (again.id, again.attempt) == (job_id, 1)


def test_finish_accepts_several_outcomes_at_once_and_refuses_the_rest(
    store: Store, clock: Clock
) -> None:
    ids = store.enqueue([NewJob(task="t") for _ in range(3)], clock.now)
    store.claim("w1", None, 3, LEASE, clock.now)
    outcomes = [
        Outcome(ids[0], 1, OutcomeKind.SUCCEEDED, result_json="0"),
        Outcome(ids[1], 2, OutcomeKind.SUCCEEDED, result_json="1"),  # stale
        Outcome(ids[2], 1, OutcomeKind.FAILED, error=BOOM),
    ]

    accepted = store.finish("w1", outcomes, clock.advance(1))

    assert sorted(accepted) == [ids[0], ids[2]]
    states = [store.get_job(i).state for i in ids]  # type: ignore[union-attr]
    assert states == [SUCCEEDED, RUNNING, FAILED]


def test_finish_after_the_lease_lapsed_but_before_rescue_is_accepted(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now, worker="w1")

    succeed(store, job, clock.advance(LEASE * 2))

    assert store.rescue(clock.advance(1), actor="rescuer") == []
    assert store.get_job(job_id).state == SUCCEEDED  # type: ignore[union-attr]


def test_two_outcomes_for_one_attempt_in_one_call_are_accepted_once(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now)
    outcomes = [
        Outcome(job_id, job.attempt, OutcomeKind.SUCCEEDED, result_json="1"),
        Outcome(job_id, job.attempt, OutcomeKind.FAILED, error=BOOM),
    ]

    accepted = store.finish("w1", outcomes, clock.advance(1))

    assert accepted == [job_id]
    [attempt] = store.list_attempts(job_id)
    assert attempt.outcome is not None
    assert [e.from_state for e in store.list_events(job_id)] == [None, QUEUED, RUNNING]


def test_finish_after_a_snooze_closes_only_the_new_attempt(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    first = claim_one(store, clock.now, worker="w1")
    store.finish(
        "w1", [Outcome(job_id, first.attempt, OutcomeKind.SNOOZED)], clock.advance(1)
    )
    again = claim_one(store, clock.advance(1), worker="w2")

    succeed(store, again, clock.advance(1), worker="w2")

    closed = [(a.attempt, a.worker_id, a.outcome) for a in store.list_attempts(job_id)]
    assert closed == [
        (1, "w1", AttemptOutcome.SNOOZED),
        (1, "w2", AttemptOutcome.SUCCEEDED),
    ]


def test_finish_of_no_outcomes_accepts_nothing(store: Store, clock: Clock) -> None:
    assert store.finish("w1", [], clock.now) == []


# -- the late-result guard ------------------------------------------------


def test_finish_from_a_worker_not_holding_the_job_is_refused(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now, worker="w1")
    before = snapshot(store, job_id)
    outcome = Outcome(job_id, job.attempt, OutcomeKind.SUCCEEDED, result_json="1")

    assert store.finish("w2", [outcome], clock.advance(1)) == []
    assert snapshot(store, job_id) == before


def test_finish_for_a_stale_attempt_number_is_refused(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now, worker="w1")
    before = snapshot(store, job_id)

    for attempt in (job.attempt - 1, job.attempt + 1):
        outcome = Outcome(job_id, attempt, OutcomeKind.FAILED, error=BOOM)
        assert store.finish("w1", [outcome], clock.advance(1)) == []

    assert snapshot(store, job_id) == before


def test_finish_for_a_job_already_final_is_refused(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now, worker="w1")
    succeed(store, job, clock.now)
    before = snapshot(store, job_id)

    for kind in OutcomeKind:
        outcome = Outcome(job_id, job.attempt, kind, error=BOOM, run_at=clock.now)
        assert store.finish("w1", [outcome], clock.advance(1)) == []

    assert snapshot(store, job_id) == before


def test_finish_for_a_job_back_in_the_queue_is_refused(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    job = claim_one(store, clock.now, worker="w1")
    store.finish(
        "w1",
        [Outcome(job_id, job.attempt, OutcomeKind.RETRY, error=BOOM, run_at=clock.now)],
        clock.now,
    )
    before = snapshot(store, job_id)
    outcome = Outcome(job_id, job.attempt, OutcomeKind.SUCCEEDED, result_json="1")

    assert store.finish("w1", [outcome], clock.advance(1)) == []
    assert snapshot(store, job_id) == before


def test_finish_for_an_unknown_job_is_refused(store: Store, clock: Clock) -> None:
    outcome = Outcome(123456, 1, OutcomeKind.SUCCEEDED, result_json="1")

    assert store.finish("w1", [outcome], clock.now) == []
    assert store.count_jobs() == {}


# -- rescue ---------------------------------------------------------------


def test_lapsed_lease_is_requeued_as_a_lost_attempt(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now, max_attempts=3)
    started_at = clock.now
    claim_one(store, started_at, worker="w1")
    rescued_at = clock.advance(LEASE + 1)

    rescued = store.rescue(rescued_at, actor="rescuer-1")

    assert rescued == [Rescued(job_id=job_id, attempt=1, worker_id="w1", state=QUEUED)]
    job = store.get_job(job_id)
    assert job is not None
    assert (job.state, job.run_at, job.attempts) == (QUEUED, rescued_at, 1)
    assert (job.lease_expires_at, job.finished_at) == (None, None)
    [attempt] = store.list_attempts(job_id)
    assert (attempt.worker_id, attempt.started_at) == ("w1", started_at)
    assert (attempt.outcome, attempt.finished_at) == (AttemptOutcome.LOST, rescued_at)
    assert transitions(store, job_id)[-1] == (
        RUNNING,
        QUEUED,
        "lease lapsed",
        "rescuer-1",
        rescued_at,
    )


def test_rescued_job_is_claimed_again_as_the_next_attempt(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now, max_attempts=3)
    claim_one(store, clock.now, worker="w1")
    store.rescue(clock.advance(LEASE + 1), actor="rescuer")

    again = claim_one(store, clock.now, worker="w2")

    assert (again.id, again.attempt) == (job_id, 2)


def test_lapsed_lease_with_no_attempt_left_fails_the_job(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now, max_attempts=1)
    claim_one(store, clock.now, worker="w1")
    rescued_at = clock.advance(LEASE + 1)

    rescued = store.rescue(rescued_at, actor="rescuer-1")

    assert rescued == [Rescued(job_id=job_id, attempt=1, worker_id="w1", state=FAILED)]
    job = store.get_job(job_id)
    assert job is not None
    assert (job.state, job.error_type, job.attempts) == (FAILED, "LeaseExpired", 1)
    assert (job.finished_at, job.lease_expires_at) == (rescued_at, None)
    [attempt] = store.list_attempts(job_id)
    assert (attempt.outcome, attempt.finished_at) == (AttemptOutcome.LOST, rescued_at)
    assert transitions(store, job_id)[-1] == (
        RUNNING,
        FAILED,
        "lease lapsed",
        "rescuer-1",
        rescued_at,
    )
    assert store.claim("w2", None, 10, LEASE, rescued_at) == []


def test_rescue_leaves_leases_that_have_not_lapsed(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)
    claim_one(store, clock.now, worker="w1")
    before = snapshot(store, job_id)

    assert store.rescue(clock.after(LEASE - 1), actor="rescuer") == []
    assert snapshot(store, job_id) == before


def test_rescue_honours_a_lease_extended_by_heartbeat(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    claim_one(store, clock.now, worker="w1")
    store.heartbeat("w1", [job_id], LEASE, clock.advance(LEASE - 1))

    assert store.rescue(clock.advance(LEASE - 1), actor="rescuer") == []
    job = store.get_job(job_id)
    assert job is not None
    assert (job.state, job.worker_id) == (RUNNING, "w1")


def test_rescue_leaves_queued_and_final_jobs(store: Store, clock: Clock) -> None:
    done = enqueue_one(store, clock.now)
    queued = enqueue_one(store, clock.now)
    succeed(store, claim_one(store, clock.now), clock.now)

    assert store.rescue(clock.advance(LEASE * 10), actor="rescuer") == []
    assert store.get_job(done).state == SUCCEEDED  # type: ignore[union-attr]
    assert store.get_job(queued).state == QUEUED  # type: ignore[union-attr]


def test_lapsed_lease_is_rescued_once(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)
    claim_one(store, clock.now, worker="w1")
    rescued_at = clock.advance(LEASE + 1)

    first = store.rescue(rescued_at, actor="rescuer")
    second = store.rescue(clock.advance(1), actor="rescuer")

    assert [r.job_id for r in first] == [job_id]
    assert second == []
    assert len(store.list_attempts(job_id)) == 1


def test_rescue_takes_back_at_most_limit_jobs(store: Store, clock: Clock) -> None:
    ids = store.enqueue([NewJob(task="t") for _ in range(5)], clock.now)
    store.claim("w1", None, 5, LEASE, clock.now)
    rescued_at = clock.advance(LEASE + 1)

    first = store.rescue(rescued_at, actor="rescuer", limit=3)
    second = store.rescue(rescued_at, actor="rescuer", limit=3)

    assert [len(first), len(second)] == [3, 2]
    assert sorted(r.job_id for r in first + second) == ids


def test_concurrent_rescues_take_back_each_job_once(
    store: Store, store_factory: StoreFactory, clock: Clock
) -> None:
    ids = store.enqueue([NewJob(task="t") for _ in range(40)], clock.now)
    store.claim("w1", None, 40, LEASE, clock.now)
    rescued_at = clock.advance(LEASE + 1)
    rescuers = [store_factory() for _ in range(4)]
    rescued: list[Rescued] = []

    def rescue(rescuer: Store, name: str) -> None:
        while batch := rescuer.rescue(rescued_at, actor=name, limit=3):
            rescued.extend(batch)

    run_in_threads(
        [lambda r=r, n=n: rescue(r, f"r{n}") for n, r in enumerate(rescuers)]
    )

    assert sorted(r.job_id for r in rescued) == ids
    assert all(len(store.list_attempts(i)) == 1 for i in ids)


def test_after_rescue_only_the_new_claimer_can_finish(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now, max_attempts=3)
    old = claim_one(store, clock.now, worker="w1")
    store.rescue(clock.advance(LEASE + 1), actor="rescuer")
    new = claim_one(store, clock.now, worker="w2")

    late = store.finish(
        "w1",
        [Outcome(job_id, old.attempt, OutcomeKind.SUCCEEDED, result_json='"old"')],
        clock.advance(1),
    )
    on_time = store.finish(
        "w2",
        [Outcome(job_id, new.attempt, OutcomeKind.SUCCEEDED, result_json='"new"')],
        clock.advance(1),
    )

    assert (late, on_time) == ([], [job_id])
    job = store.get_job(job_id)
    assert job is not None
    assert (job.state, job.result_json) == (SUCCEEDED, '"new"')
    outcomes = [
        (a.attempt, a.worker_id, a.outcome) for a in store.list_attempts(job_id)
    ]
    assert outcomes == [
        (1, "w1", AttemptOutcome.LOST),
        (2, "w2", AttemptOutcome.SUCCEEDED),
    ]


def test_rescue_after_a_snooze_closes_only_the_lost_attempt(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    first = claim_one(store, clock.now, worker="w1")
    store.finish(
        "w1", [Outcome(job_id, first.attempt, OutcomeKind.SNOOZED)], clock.advance(1)
    )
    claim_one(store, clock.now, worker="w2")

    rescued = store.rescue(clock.advance(LEASE + 1), actor="rescuer")

    assert rescued == [Rescued(job_id=job_id, attempt=1, worker_id="w2", state=QUEUED)]
    closed = [(a.attempt, a.worker_id, a.outcome) for a in store.list_attempts(job_id)]
    assert closed == [
        (1, "w1", AttemptOutcome.SNOOZED),
        (1, "w2", AttemptOutcome.LOST),
    ]


# -- reading --------------------------------------------------------------


def test_get_job_of_an_unknown_id_returns_none(store: Store) -> None:
    assert store.get_job(123456) is None


def test_times_read_back_are_aware_utc(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now)
    claim_one(store, clock.now)

    job = store.get_job(job_id)
    assert job is not None
    times = [job.run_at, job.created_at, job.updated_at, job.lease_expires_at]
    times += [e.at for e in store.list_events(job_id)]
    times += [a.started_at for a in store.list_attempts(job_id)]
    assert [t.utcoffset() if t else None for t in times] == [timedelta(0)] * len(times)


def test_times_keep_their_microseconds(store: Store, clock: Clock) -> None:
    run_at = clock.after(1.123457)

    job_id = enqueue_one(store, clock.now, run_at=run_at)

    job = store.get_job(job_id)
    assert job is not None
    assert job.run_at == run_at


def test_list_jobs_returns_newest_first(store: Store, clock: Clock) -> None:
    ids = store.enqueue([NewJob(task="t") for _ in range(3)], clock.now)

    listed = store.list_jobs(JobFilter())

    assert [job.id for job in listed] == ids[::-1]
    assert listed == [store.get_job(i) for i in ids[::-1]]


def test_list_jobs_filters_by_state(store: Store, clock: Clock) -> None:
    queued = enqueue_one(store, clock.now)
    running = enqueue_one(store, clock.now, priority=1)
    claim_one(store, clock.now)

    assert [j.id for j in store.list_jobs(JobFilter(state=QUEUED))] == [queued]
    assert [j.id for j in store.list_jobs(JobFilter(state=RUNNING))] == [running]
    assert store.list_jobs(JobFilter(state=FAILED)) == []


def test_list_jobs_filters_by_queue(store: Store, clock: Clock) -> None:
    mail = [enqueue_one(store, clock.now, queue="mail") for _ in range(2)]
    enqueue_one(store, clock.now, queue="default")

    listed = store.list_jobs(JobFilter(queue="mail"))

    assert [j.id for j in listed] == mail[::-1]


def test_list_jobs_filters_by_task(store: Store, clock: Clock) -> None:
    enqueue_one(store, clock.now, task="a")
    b = enqueue_one(store, clock.now, task="b")

    assert [j.id for j in store.list_jobs(JobFilter(task="b"))] == [b]


def test_list_jobs_combines_its_filters(store: Store, clock: Clock) -> None:
    match = enqueue_one(store, clock.now, task="a", queue="q")
    enqueue_one(store, clock.now, task="a", queue="other")
    enqueue_one(store, clock.now, task="b", queue="q")

    listed = store.list_jobs(JobFilter(state=QUEUED, queue="q", task="a"))

    assert [j.id for j in listed] == [match]


def test_list_jobs_returns_at_most_limit(store: Store, clock: Clock) -> None:
    ids = store.enqueue([NewJob(task="t") for _ in range(5)], clock.now)

    listed = store.list_jobs(JobFilter(limit=2))

    assert [j.id for j in listed] == [ids[4], ids[3]]


def test_list_jobs_pages_with_before_id(store: Store, clock: Clock) -> None:
    ids = store.enqueue([NewJob(task="t") for _ in range(5)], clock.now)
    pages: list[list[int]] = []
    before_id = None

    while page := store.list_jobs(JobFilter(before_id=before_id, limit=2)):
        pages.append([job.id for job in page])
        before_id = page[-1].id

    newest_first = ids[::-1]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]


def test_list_jobs_before_id_combines_with_filters(store: Store, clock: Clock) -> None:
    a1 = enqueue_one(store, clock.now, task="a")
    enqueue_one(store, clock.now, task="b")
    a2 = enqueue_one(store, clock.now, task="a")
    a3 = enqueue_one(store, clock.now, task="a")

    listed = store.list_jobs(JobFilter(task="a", before_id=a3))

    assert [j.id for j in listed] == [a2, a1]


def test_count_jobs_counts_each_state_and_omits_empty_ones(
    store: Store, clock: Clock
) -> None:
    store.enqueue([NewJob(task="t") for _ in range(4)], clock.now)
    store.claim("w1", None, 2, LEASE, clock.now)
    [done] = store.claim("w1", None, 1, LEASE, clock.now)
    succeed(store, done, clock.now)

    assert store.count_jobs() == {QUEUED: 1, RUNNING: 2, SUCCEEDED: 1}


def test_count_jobs_of_one_queue(store: Store, clock: Clock) -> None:
    enqueue_one(store, clock.now, queue="mail")
    enqueue_one(store, clock.now, queue="mail", priority=1)
    enqueue_one(store, clock.now, queue="default")
    claim_one(store, clock.now, queues=["mail"])

    assert store.count_jobs("mail") == {QUEUED: 1, RUNNING: 1}
    assert store.count_jobs("default") == {QUEUED: 1}
    assert store.count_jobs("none") == {}


def test_count_jobs_keys_are_job_states(store: Store, clock: Clock) -> None:
    enqueue_one(store, clock.now)

    [key] = store.count_jobs()

    assert type(key) is JobState


def test_list_attempts_and_events_of_an_unknown_job_are_empty(store: Store) -> None:
    assert store.list_attempts(123456) == []
    assert store.list_events(123456) == []


def test_list_events_tells_the_whole_history_of_a_job_in_order(
    store: Store, clock: Clock
) -> None:
    t0 = clock.now
    job_id = enqueue_one(store, t0, max_attempts=3)
    enqueue_one(store, t0, task="other", queue="elsewhere")
    first = claim_one(store, clock.advance(1), worker="w1", queues=["default"])
    t1 = clock.now
    retry_at = clock.after(10)
    store.finish(
        "w1",
        [
            Outcome(
                job_id, first.attempt, OutcomeKind.RETRY, error=BOOM, run_at=retry_at
            )
        ],
        clock.advance(1),
    )
    t2 = clock.now
    second = claim_one(store, retry_at, worker="w2", queues=["default"])
    succeed(store, second, clock.after(11), worker="w2")

    events = store.list_events(job_id)

    assert [(e.from_state, e.to_state, e.reason, e.actor, e.at) for e in events] == [
        (None, QUEUED, "enqueued", "api", t0),
        (QUEUED, RUNNING, "claimed", "w1", t1),
        (RUNNING, QUEUED, "retry", "w1", t2),
        (QUEUED, RUNNING, "claimed", "w2", retry_at),
        (RUNNING, SUCCEEDED, "succeeded", "w2", clock.after(11)),
    ]
    assert [e.id for e in events] == sorted({e.id for e in events})
    assert {e.job_id for e in events} == {job_id}


def test_list_attempts_returns_oldest_first(store: Store, clock: Clock) -> None:
    job_id = enqueue_one(store, clock.now, max_attempts=5)
    for worker in ("w1", "w2", "w3"):
        job = claim_one(store, clock.now, worker=worker)
        outcome = Outcome(
            job_id, job.attempt, OutcomeKind.RETRY, error=BOOM, run_at=clock.now
        )
        store.finish(worker, [outcome], clock.advance(1))

    attempts = store.list_attempts(job_id)

    assert [(a.attempt, a.worker_id) for a in attempts] == [
        (1, "w1"),
        (2, "w2"),
        (3, "w3"),
    ]


# -- waiting --------------------------------------------------------------


def test_wait_for_work_returns_after_its_timeout_when_idle(store: Store) -> None:
    # Hints may be spurious, so only the return (and its type) is promised.
    woken = store.wait_for_work(0.05)

    assert woken in (True, False)


def test_wait_for_work_is_woken_by_an_enqueue_from_another_store(
    store: Store, store_factory: StoreFactory, clock: Clock
) -> None:
    other = store_factory()

    woken = wait_while(store, poke=lambda: other.enqueue([NewJob(task="t")], clock.now))

    assert woken is True


def test_wait_for_work_sees_a_commit_made_before_it_began_waiting(
    store: Store, store_factory: StoreFactory, clock: Clock
) -> None:
    # A claimer claims, finds nothing, then waits: a job committed by another
    # process between its claim and its wait must still wake it at once.
    other = store_factory()
    store.wait_for_work(0.01)  # whatever hint is pending from start-up
    store.claim("w1", None, 10, LEASE, clock.now)
    other.enqueue([NewJob(task="t")], clock.now)

    woken = store.wait_for_work(PATIENCE)

    assert woken is True


def test_wait_for_work_is_woken_by_wake(store: Store) -> None:
    woken = wait_while(store, poke=store.wake)

    assert woken is True


# -- workers --------------------------------------------------------------


def test_registered_worker_is_listed_as_given(store: Store, clock: Clock) -> None:
    worker = worker_info("w1", clock.now)

    store.register_worker(worker)

    assert store.list_workers() == [worker]


def test_worker_queues_round_trip_as_a_tuple(store: Store, clock: Clock) -> None:
    store.register_worker(worker_info("all", clock.now, queues=()))
    store.register_worker(worker_info("one", clock.after(1), queues=("mail",)))

    queues = {w.id: w.queues for w in store.list_workers()}

    assert queues == {"all": (), "one": ("mail",)}


def test_registering_a_worker_again_replaces_its_record(
    store: Store, clock: Clock
) -> None:
    store.register_worker(worker_info("w1", clock.now))
    again = worker_info("w1", clock.after(60), pid=99, queues=("other",))

    store.register_worker(again)

    assert store.list_workers() == [again]


def test_beat_worker_records_heartbeat_and_running_jobs(
    store: Store, clock: Clock
) -> None:
    store.register_worker(worker_info("w1", clock.now))

    store.beat_worker("w1", 5, clock.advance(10))

    [worker] = store.list_workers()
    assert (worker.heartbeat_at, worker.running_jobs) == (clock.now, 5)
    assert (worker.state, worker.started_at) == ("running", clock.start)


def test_stop_worker_marks_it_stopped(store: Store, clock: Clock) -> None:
    store.register_worker(worker_info("w1", clock.now))
    store.register_worker(worker_info("w2", clock.now))

    store.stop_worker("w1", clock.advance(10))

    states = {w.id: w.state for w in store.list_workers()}
    assert states == {"w1": "stopped", "w2": "running"}


def test_list_workers_returns_most_recently_started_first(
    store: Store, clock: Clock
) -> None:
    for n, offset in enumerate((10, 30, 20)):
        store.register_worker(worker_info(f"w{n}", clock.after(offset)))

    assert [w.id for w in store.list_workers()] == ["w1", "w2", "w0"]


def test_mark_dead_workers_marks_only_stale_running_workers(
    store: Store, clock: Clock
) -> None:
    for worker_id in ("fresh", "stale", "stopped"):
        store.register_worker(worker_info(worker_id, clock.now))
    store.stop_worker("stopped", clock.now)
    store.beat_worker("fresh", 0, clock.advance(60))

    dead = store.mark_dead_workers(stale_before=clock.after(-30))

    assert dead == ["stale"]
    states = {w.id: w.state for w in store.list_workers()}
    assert states == {"fresh": "running", "stale": "dead", "stopped": "stopped"}
    assert store.mark_dead_workers(stale_before=clock.after(-30)) == []


def test_mark_dead_workers_spares_a_heartbeat_exactly_at_the_cutoff(
    store: Store, clock: Clock
) -> None:
    store.register_worker(worker_info("w1", clock.now))

    assert store.mark_dead_workers(stale_before=clock.now) == []
    assert [w.state for w in store.list_workers()] == ["running"]


def test_list_workers_of_an_empty_registry_is_empty(store: Store) -> None:
    assert store.list_workers() == []


# -- prune ----------------------------------------------------------------


def test_prune_deletes_only_final_jobs_finished_before_the_cutoff(
    store: Store, clock: Clock
) -> None:
    succeeded_old, failed_old, succeeded_new, running, queued = store.enqueue(
        [NewJob(task="t", priority=p) for p in (5, 4, 3, 2, 1)], clock.now
    )
    succeed(store, claim_one(store, clock.now), clock.after(10))
    failed = claim_one(store, clock.now)
    store.finish(
        "w1", [Outcome(failed.id, 1, OutcomeKind.FAILED, error=BOOM)], clock.after(20)
    )
    succeed(store, claim_one(store, clock.now), clock.after(40))
    claim_one(store, clock.now)

    deleted = store.prune(clock.after(30))

    assert deleted == 2
    for gone in (succeeded_old, failed_old):
        assert snapshot(store, gone) == (None, [], [])
    left = [j.id for j in store.list_jobs(JobFilter())]
    assert left == [queued, running, succeeded_new]
    assert len(store.list_events(succeeded_new)) == 3
    assert len(store.list_attempts(succeeded_new)) == 1


def test_prune_spares_a_job_finished_exactly_at_the_cutoff(
    store: Store, clock: Clock
) -> None:
    job_id = enqueue_one(store, clock.now)
    succeed(store, claim_one(store, clock.now), clock.after(10))

    assert store.prune(clock.after(10)) == 0
    assert store.get_job(job_id) is not None


def test_prune_deletes_at_most_limit_jobs(store: Store, clock: Clock) -> None:
    ids = store.enqueue([NewJob(task="t") for _ in range(3)], clock.now)
    for _ in ids:
        succeed(store, claim_one(store, clock.now), clock.now)
    cutoff = clock.after(1)

    deleted = [store.prune(cutoff, limit=2) for _ in range(3)]

    assert deleted == [2, 1, 0]
    assert store.count_jobs() == {}

"""Conveyor's own figures: enqueue, drain, latency, worker memory, claim speed.

Each function takes a target store and the run's sizes, works on fresh
databases of its own, and returns plain numbers (jobs per second,
milliseconds, bytes) for ``report``. Enqueueing and the claim comparison
run in this process; drains, latency and memory run real workers started
with the CLI (see ``workers``). Every time is wall-clock time, worker
start-up included.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psutil
import psycopg
from psycopg import sql

from conveyor import Conveyor
from conveyor.records import Outcome, OutcomeKind
from conveyor.states import JobState
from conveyor.store import Store

from . import bench_tasks
from .bench_tasks import noop, sleep10ms, stamp
from .sizes import Sizes
from .targets import Database, Target
from .workers import Workers

#: Jobs per enqueue_many call when a benchmark fills its queue beforehand.
FILL_BATCH = 10_000

#: Seconds a drain may take before the run is called stuck, per 1,000 jobs
#: (plus ``WAIT_BASE``), so a broken worker fails the run instead of hanging.
WAIT_PER_1000 = 10.0
WAIT_BASE = 60.0

#: The lease the in-process claim comparison takes, in seconds.
CLAIM_LEASE = 30.0

#: Seconds the memory worker gets to settle before each RSS reading.
SETTLE = 0.5


def _wait_limit(jobs: int) -> float:
    return WAIT_BASE + WAIT_PER_1000 * jobs / 1000


@contextmanager
def _app_on(target: Target) -> Iterator[tuple[Conveyor, Database]]:
    """The benchmark app on a fresh, migrated database, closed afterwards."""
    app = bench_tasks.app
    with target.fresh() as db:
        app.use_database(db.url)
        try:
            app.migrate()
            yield app, db
        finally:
            app.close()


def _succeeded(store: Store) -> int:
    counts = store.count_jobs()
    failed = counts.get(JobState.FAILED, 0)
    if failed:
        raise RuntimeError(f"{failed} benchmark jobs failed; see the workers' logs")
    return counts.get(JobState.SUCCEEDED, 0)


def _fill(app: Conveyor, task: Any, count: int) -> None:
    for start in range(0, count, FILL_BATCH):
        size = min(FILL_BATCH, count - start)
        app.enqueue_many(task.call() for _ in range(size))


# -- enqueue -----------------------------------------------------------------


def enqueue_single(target: Target, sizes: Sizes) -> float:
    """Jobs per second of ``task.enqueue()`` in a loop, one transaction each."""
    rates = []
    for _ in range(sizes.repeats):
        with _app_on(target):
            noop.enqueue()  # opens the connection outside the timing
            started = time.perf_counter()
            for _ in range(sizes.single_enqueue):
                noop.enqueue()
            rates.append(sizes.single_enqueue / (time.perf_counter() - started))
    return statistics.median(rates)


def enqueue_bulk(target: Target, sizes: Sizes) -> float:
    """Jobs per second of one ``enqueue_many`` call of ``bulk_enqueue`` jobs."""
    rates = []
    for _ in range(sizes.repeats):
        with _app_on(target) as (app, _):
            noop.enqueue()
            started = time.perf_counter()
            app.enqueue_many(noop.call() for _ in range(sizes.bulk_enqueue))
            rates.append(sizes.bulk_enqueue / (time.perf_counter() - started))
    return statistics.median(rates)


# -- drain -------------------------------------------------------------------


def drain(
    target: Target, jobs: int, task: Any, processes: int, concurrency: int
) -> dict[str, float]:
    """Queue ``jobs`` jobs, start the workers, time until the last succeeds."""
    with _app_on(target) as (app, db):
        _fill(app, task, jobs)
        first: list[float] = []

        def done() -> bool:
            finished = _succeeded(app.store)
            if finished and not first:
                first.append(time.perf_counter())
            return finished >= jobs

        started = time.perf_counter()
        with Workers(db.url, processes=processes, concurrency=concurrency) as crew:
            crew.wait(done, _wait_limit(jobs))
            seconds = time.perf_counter() - started

        return {
            "jobs_per_s": jobs / seconds,
            "seconds": seconds,
            "first_done_s": first[0] - started,
            **_batch_sizes(db),
        }


def _batch_sizes(db: Database) -> dict[str, float]:
    """Mean jobs per claim and per finish transaction, read from the events.

    Every job claimed (or finished) in one store call shares that call's
    ``at``, so counting distinct times counts transactions.
    """
    statement = """
        SELECT reason, count(*), count(DISTINCT at) FROM job_events
        WHERE reason IN ('claimed', 'succeeded') GROUP BY reason
    """
    rows = _query(db, statement)
    return {f"{reason}_per_txn": count / txns for reason, count, txns in rows}


def _query(db: Database, statement: str) -> list[tuple[Any, ...]]:
    """Run one raw SQL statement on ``db``; return its rows."""
    if db.dialect == "sqlite":
        assert db.path is not None
        with sqlite3.connect(db.path) as conn:
            return conn.execute(statement).fetchall()

    assert db.conninfo is not None and db.schema is not None
    with psycopg.connect(db.conninfo) as conn:
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(db.schema)))
        return conn.execute(statement).fetchall()


def drain_sleepers(target: Target, sizes: Sizes) -> dict[str, float]:
    """Drain 10 ms jobs on one worker; ``ideal`` is concurrency / 10 ms."""
    found = drain(target, sizes.sleep_jobs, sleep10ms, 1, sizes.sleep_concurrency)
    found["ideal_jobs_per_s"] = sizes.sleep_concurrency / bench_tasks.SLEEP
    return found


# -- latency -----------------------------------------------------------------


def latency(target: Target, sizes: Sizes) -> dict[str, float]:
    """Enqueue-to-start times on an idle worker, in milliseconds."""
    with _app_on(target) as (app, db):
        concurrency = sizes.latency_concurrency
        with Workers(db.url, processes=1, concurrency=concurrency) as crew:
            stamp.enqueue()  # the worker is ready once this one has run
            crew.wait(lambda: _succeeded(app.store) >= 1, WAIT_BASE)

            sent = _enqueue_spaced(sizes.latency_jobs, sizes.latency_spacing)
            total = sizes.latency_jobs + 1
            crew.wait(lambda: _succeeded(app.store) >= total, WAIT_BASE)

        delays = [_started(app.store, job_id) - at for job_id, at in sent]
    return _percentiles([delay * 1000 for delay in delays])


def _enqueue_spaced(count: int, spacing: float) -> list[tuple[int, float]]:
    """Enqueue ``count`` stamp jobs ``spacing`` seconds apart; (id, time) each."""
    sent = []
    due = time.perf_counter()
    for _ in range(count):
        at = time.time()
        sent.append((stamp.enqueue().id, at))
        due += spacing
        time.sleep(max(0.0, due - time.perf_counter()))
    return sent


def _started(store: Store, job_id: int) -> float:
    record = store.get_job(job_id)
    assert record is not None and record.result_json is not None
    return float(record.result_json)


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50_ms": statistics.median(ordered),
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
        "max_ms": ordered[-1],
    }


# -- memory ------------------------------------------------------------------


def memory(target: Target, sizes: Sizes, concurrency: int) -> dict[str, float]:
    """RSS of one worker after ``memory_first`` and after ``memory_total`` jobs."""
    with (
        _app_on(target) as (app, db),
        Workers(db.url, processes=1, concurrency=concurrency) as crew,
    ):
        worker = psutil.Process(crew.pids[0])
        started = time.perf_counter()

        _fill(app, noop, sizes.memory_first)
        crew.wait(lambda: _succeeded(app.store) >= sizes.memory_first, WAIT_BASE)
        time.sleep(SETTLE)
        first = worker.memory_info().rss

        peak = _feed(app, crew, worker, sizes)
        time.sleep(SETTLE)
        last = worker.memory_info().rss
        seconds = time.perf_counter() - started

    return {
        "rss_first_mb": first / 2**20,
        "rss_last_mb": last / 2**20,
        "rss_peak_mb": max(peak, last) / 2**20,
        "growth_mb": (last - first) / 2**20,
        "jobs": sizes.memory_total,
        "seconds": seconds,
    }


def _feed(app: Conveyor, crew: Workers, worker: psutil.Process, sizes: Sizes) -> int:
    """Enqueue the rest in batches, a batch ahead of the worker; return peak RSS."""
    enqueued = sizes.memory_first
    peak = 0

    def caught_up(target: int) -> bool:
        nonlocal peak
        peak = max(peak, worker.memory_info().rss)
        return _succeeded(app.store) >= target

    while enqueued < sizes.memory_total:
        batch = min(sizes.memory_batch, sizes.memory_total - enqueued)
        _fill(app, noop, batch)
        enqueued += batch
        behind = max(sizes.memory_first, enqueued - sizes.memory_batch)
        crew.wait(partial(caught_up, behind), _wait_limit(sizes.memory_batch * 2))

    crew.wait(partial(caught_up, enqueued), _wait_limit(sizes.memory_batch))
    return peak


# -- claim speed with many finished jobs -----------------------------------------


def claim_speed(target: Target, sizes: Sizes) -> dict[str, float]:
    """Claim-and-finish rate among ``finished_rows`` finished jobs vs none."""
    empty, _ = _claim_rate(target, sizes, 0)
    full, fill_seconds = _claim_rate(target, sizes, sizes.finished_rows)
    return {
        "empty_jobs_per_s": empty,
        "full_jobs_per_s": full,
        "ratio": full / empty,
        "finished_rows": sizes.finished_rows,
        "fill_seconds": fill_seconds,
    }


def _claim_rate(target: Target, sizes: Sizes, finished: int) -> tuple[float, float]:
    """Median jobs per second of claim+finish, and the seconds the fill took."""
    with _app_on(target) as (app, db):
        started = time.perf_counter()
        if finished:
            _insert_finished(db, finished)
        fill_seconds = time.perf_counter() - started

        rates = []
        for _ in range(sizes.repeats):
            _fill(app, noop, sizes.claim_jobs)
            rates.append(_claim_all(app, sizes))
    return statistics.median(rates), fill_seconds


def _claim_all(app: Conveyor, sizes: Sizes) -> float:
    """Claim and finish every queued job, a batch per call; jobs per second."""
    store = app.store
    done = 0
    started = time.perf_counter()
    while claimed := store.claim(
        "bench", None, sizes.claim_batch, CLAIM_LEASE, app.clock()
    ):
        outcomes = [
            Outcome(job.id, job.attempt, OutcomeKind.SUCCEEDED, result_json="null")
            for job in claimed
        ]
        done += len(store.finish("bench", outcomes, app.clock()))
    seconds = time.perf_counter() - started

    assert done == sizes.claim_jobs, f"finished {done} of {sizes.claim_jobs} jobs"
    return done / seconds


_SQLITE_FINISHED = """
INSERT INTO jobs (task, queue, priority, state, args, kwargs, attempts,
                  max_attempts, run_at, created_at, updated_at, finished_at,
                  result)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
SELECT ?, 'default', 0, 'succeeded', '[]', '{}', 1, 3,
       ? + i * 0.01, ? + i * 0.01, ? + i * 0.01 + 0.001, ? + i * 0.01 + 0.001,
       'null'
FROM n
"""

_PG_FINISHED = """
INSERT INTO jobs (task, queue, priority, state, args, kwargs, attempts,
                  max_attempts, run_at, created_at, updated_at, finished_at,
                  result)
SELECT %(task)s, 'default', 0, 'succeeded', '[]', '{}', 1, 3, t, t,
       t + interval '1 ms', t + interval '1 ms', 'null'
FROM generate_series(1, %(count)s) AS g(i),
     LATERAL (SELECT %(start)s::timestamptz + g.i * interval '10 ms') AS x(t)
"""


def _insert_finished(db: Database, count: int) -> None:
    """Insert ``count`` succeeded jobs, finished in the past, in one statement.

    Only ``jobs`` is filled: the claim and finish touch attempts and events
    of their own jobs alone, by index.
    """
    start = time.time() - count * 0.01 - 60
    if db.dialect == "sqlite":
        assert db.path is not None
        with sqlite3.connect(db.path) as conn:
            conn.execute(_SQLITE_FINISHED, (count, noop.name, *[start] * 4))
        return

    assert db.conninfo is not None and db.schema is not None
    with psycopg.connect(db.conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(db.schema)))
        conn.execute(
            _PG_FINISHED,
            {
                "task": noop.name,
                "count": count,
                "start": datetime.fromtimestamp(start, UTC),
            },
        )
        # What autovacuum would have done long before a table held so many.
        conn.execute("VACUUM ANALYZE jobs")

"""Conveyor's own figures: enqueue, drain, latency, worker memory, claim speed.

Each function takes a target store and the run's sizes, works on fresh
databases of its own, and returns plain numbers (jobs per second,
milliseconds, megabytes) for ``report``. Enqueueing and the claim
comparison run in this process; drains, latency and memory run real
workers started with the CLI (see ``workers``). Times are wall-clock, worker
start-up included; ``tables`` watches the database for the end.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from typing import Any

import psutil

from conveyor import Conveyor
from conveyor.records import NewJob, Outcome, OutcomeKind
from conveyor.states import JobState
from conveyor.store import Store, open_store

from . import bench_tasks
from .bench_tasks import noop, sleep10ms, stamp
from .sizes import Sizes
from .tables import Tables
from .targets import Database, Target
from .workers import Workers

#: Jobs per enqueue_many call when a benchmark fills its queue beforehand.
FILL_BATCH = 10_000

#: Seconds a drain may take before the run is called stuck, per 1,000 jobs
#: (plus ``WAIT_BASE``), so a broken worker fails the run instead of hanging.
WAIT_PER_1000 = 10.0
WAIT_BASE = 60.0

#: Seconds between looks at the backlog while feeding the memory worker;
#: coarser than a drain's, as no time is measured there.
FEED_POLL = 0.1

#: Seconds the memory worker gets to settle before each RSS reading.
SETTLE = 0.5

#: The lease the in-process claim comparison takes, in seconds.
CLAIM_LEASE = 30.0


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


def _fill(app: Conveyor, task: Any, count: int) -> None:
    for start in range(0, count, FILL_BATCH):
        size = min(FILL_BATCH, count - start)
        app.enqueue_many(task.call() for _ in range(size))


def _check_succeeded(store: Store, expected: int) -> None:
    counts = store.count_jobs()
    if counts.get(JobState.SUCCEEDED, 0) != expected:
        shown = {state.value: count for state, count in counts.items()}
        raise RuntimeError(f"expected {expected} succeeded jobs, found {shown}")


# -- enqueue -----------------------------------------------------------------


def enqueue_single(target: Target, sizes: Sizes) -> float:
    """Jobs per second of ``task.enqueue()`` in a loop, one transaction each."""
    with _app_on(target):
        noop.enqueue()  # opens the connection outside the timing
        started = time.perf_counter()
        for _ in range(sizes.single_enqueue):
            noop.enqueue()
        return sizes.single_enqueue / (time.perf_counter() - started)


def enqueue_bulk(target: Target, sizes: Sizes) -> float:
    """Jobs per second of one ``enqueue_many`` call of ``bulk_enqueue`` jobs."""
    with _app_on(target) as (app, _):
        noop.enqueue()
        started = time.perf_counter()
        app.enqueue_many(noop.call() for _ in range(sizes.bulk_enqueue))
        return sizes.bulk_enqueue / (time.perf_counter() - started)


# -- drain -------------------------------------------------------------------


def drain(
    target: Target,
    jobs: int,
    task: Any,
    processes: int,
    concurrency: int,
    prefetch: int = 0,
) -> dict[str, float]:
    """Queue ``jobs`` jobs, start the workers, time until none is left."""
    with _app_on(target) as (app, db), Tables(db) as tables:
        _fill(app, task, jobs)

        wall = time.time()
        started = time.perf_counter()
        crew = Workers(
            db.url, processes=processes, concurrency=concurrency, prefetch=prefetch
        )
        with crew:
            crew.wait(tables.drained, _wait_limit(jobs))
            seconds = time.perf_counter() - started

        _check_succeeded(app.store, jobs)
        first, last = tables.finish_times()
        return {
            "jobs_per_s": jobs / seconds,
            "seconds": seconds,
            "first_done_s": first - wall,
            "last_done_s": last - wall,
            **tables.batch_sizes(),
        }


def drain_sleepers(target: Target, sizes: Sizes) -> dict[str, float]:
    """Drain 10 ms jobs on one worker; ``ideal`` is concurrency / 10 ms."""
    found = drain(target, sizes.sleep_jobs, sleep10ms, 1, sizes.sleep_concurrency)
    found["ideal_jobs_per_s"] = sizes.sleep_concurrency / bench_tasks.SLEEP
    return found


# -- latency -----------------------------------------------------------------


def latency(target: Target, sizes: Sizes) -> dict[str, float]:
    """Enqueue-to-start times on an idle worker, in milliseconds."""
    concurrency = sizes.latency_concurrency
    with (
        _app_on(target) as (app, db),
        Tables(db) as tables,
        Workers(db.url, processes=1, concurrency=concurrency) as crew,
    ):
        stamp.enqueue()  # the worker is ready once this one has run
        crew.wait(tables.drained, WAIT_BASE)

        sent = _enqueue_spaced(sizes.latency_jobs, sizes.latency_spacing)
        crew.wait(tables.drained, WAIT_BASE)

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


def memory(
    target: Target, sizes: Sizes, concurrency: int, prefetch: int = 0
) -> dict[str, float]:
    """RSS of one worker after ``memory_first``, half and all ``memory_total`` jobs.

    Jobs are fed in batches, at most two batches ahead of the worker.
    """
    with (
        _app_on(target) as (app, db),
        Tables(db) as tables,
        Workers(
            db.url, processes=1, concurrency=concurrency, prefetch=prefetch
        ) as crew,
    ):
        worker = psutil.Process(crew.pids[0])
        started = time.perf_counter()
        readings = []
        enqueued = 0
        for goal in (sizes.memory_first, sizes.memory_total // 2, sizes.memory_total):
            enqueued = _feed(app, crew, tables, enqueued, goal, sizes.memory_batch)
            crew.wait(tables.drained, _wait_limit(sizes.memory_batch), FEED_POLL)
            time.sleep(SETTLE)
            readings.append(worker.memory_info().rss / 2**20)
        seconds = time.perf_counter() - started

    first, half, last = readings
    return {
        "rss_first_mb": first,
        "rss_half_mb": half,
        "rss_last_mb": last,
        "growth_mb": last - first,
        "growth_second_half_mb": last - half,
        "seconds": seconds,
    }


def _feed(
    app: Conveyor, crew: Workers, tables: Tables, enqueued: int, goal: int, batch: int
) -> int:
    """Enqueue up to ``goal`` jobs in batches, keeping the backlog under two."""
    while enqueued < goal:
        size = min(batch, goal - enqueued)
        _fill(app, noop, size)
        enqueued += size
        crew.wait(lambda: tables.pending() <= batch, _wait_limit(batch), FEED_POLL)
    return enqueued


# -- claim speed with many finished jobs ---------------------------------------


def claim_speed(target: Target, sizes: Sizes) -> dict[str, float]:
    """Claim-and-finish rate among ``finished_rows`` finished jobs vs none.

    Both databases are open side by side and measured in turn, so a burst
    of load on the machine hits both alike.
    """
    with ExitStack() as stack:
        empty_db = stack.enter_context(target.fresh())
        full_db = stack.enter_context(target.fresh())
        empty = _open(stack, empty_db)
        full = _open(stack, full_db)
        with Tables(full_db) as tables:
            fill_seconds = tables.insert_finished(sizes.finished_rows, noop.name)

        rates: dict[str, list[float]] = {"empty": [], "full": []}
        for _ in range(sizes.repeats):
            for name, store in (("empty", empty), ("full", full)):
                rates[name].append(_claim_all(store, sizes))

    empty_rate = statistics.median(rates["empty"])
    full_rate = statistics.median(rates["full"])
    return {
        "empty_jobs_per_s": empty_rate,
        "full_jobs_per_s": full_rate,
        "ratio": full_rate / empty_rate,
        "finished_rows": sizes.finished_rows,
        "fill_seconds": fill_seconds,
    }


def _open(stack: ExitStack, db: Database) -> Store:
    store = open_store(db.url)
    stack.callback(store.close)
    store.migrate()
    return store


def _claim_all(store: Store, sizes: Sizes) -> float:
    """Queue ``claim_jobs`` jobs, then claim and finish them all; jobs per second."""
    count = sizes.claim_jobs
    store.enqueue([NewJob(noop.name)] * count, datetime.now(UTC))

    done = 0
    started = time.perf_counter()
    while claimed := store.claim(
        "bench", None, sizes.claim_batch, CLAIM_LEASE, datetime.now(UTC)
    ):
        outcomes = [
            Outcome(job.id, job.attempt, OutcomeKind.SUCCEEDED, result_json="null")
            for job in claimed
        ]
        done += len(store.finish("bench", outcomes, datetime.now(UTC)))
    seconds = time.perf_counter() - started

    if done != count:
        raise RuntimeError(f"claimed and finished {done} of {count} jobs")
    return done / seconds

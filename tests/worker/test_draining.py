"""Several worker processes draining one database, and one of them killed.

Each worker is the real ``conveyor worker`` command in a process of its own.
The tasks write a ledger (see ``tasks_for_tests``) that says which process
ran each job and how often; the tests compare it with what the store says.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from conveyor import Conveyor, JobState
from conveyor.records import AttemptOutcome, JobFilter
from conveyor.store import Store
from tests.worker.conftest import (
    PATIENCE,
    Ledger,
    WorkerProcess,
    wait_for,
    wait_until_registered,
    worker_pid,
)
from tests.worker.tasks_for_tests import touch

SpawnWorker = Callable[..., WorkerProcess]

#: Jobs the three workers drain in the first test.
MANY_JOBS = 5_000

#: Jobs drained while one worker is killed; each sleeps ``KILL_PAUSE`` s so
#: the killed worker always holds some.
KILL_JOBS = 400
KILL_PAUSE = 0.05

#: Ended jobs the victim must show in the ledger before it is killed.
VICTIM_PROGRESS = 20

#: Seconds a whole drain may take before the test calls it stuck.
DRAIN_PATIENCE = 90.0


def drained(store: Store, total: int, processes: list[WorkerProcess]) -> bool:
    """True once ``total`` jobs succeeded; fails at once if a worker exited."""
    for process in processes:
        if process.popen.poll() is not None:
            raise AssertionError(
                f"worker {process.pid} exited with {process.popen.returncode} "
                f"during the drain:\n{process.log()}"
            )
    return store.count_jobs() == {JobState.SUCCEEDED: total}


@pytest.mark.timeout(180)
def test_three_worker_processes_run_every_job_exactly_once(
    app: Conveyor, store: Store, ledger: Ledger, spawn_worker: SpawnWorker
) -> None:
    workers = [spawn_worker("--concurrency", "8") for _ in range(3)]
    for process in workers:
        wait_until_registered(store, process)
    ids = {job.id for job in app.enqueue_many(touch.call() for _ in range(MANY_JOBS))}

    wait_for(
        lambda: drained(store, MANY_JOBS, workers),
        DRAIN_PATIENCE,
        f"{MANY_JOBS} jobs to succeed",
    )
    for process in workers:
        process.send(signal.SIGTERM)

    assert [process.wait_exit(PATIENCE) for process in workers] == [0, 0, 0]
    ends = ledger.ends()
    assert len(ids) == MANY_JOBS
    assert set(ends) == ids
    assert {job: pids for job, pids in ends.items() if len(pids) != 1} == {}
    assert {job: pids for job, pids in ledger.starts().items() if len(pids) != 1} == {}
    assert {pids[0] for pids in ends.values()} == {p.pid for p in workers}
    records = store.list_jobs(JobFilter(limit=MANY_JOBS + 1))
    assert len(records) == MANY_JOBS
    assert {(r.state, r.attempts) for r in records} == {(JobState.SUCCEEDED, 1)}


@pytest.mark.timeout(120)
def test_jobs_of_a_killed_worker_are_rescued_and_each_succeeds_once(
    app: Conveyor, store: Store, ledger: Ledger, spawn_worker: SpawnWorker
) -> None:
    # A 2 s lease makes the survivors' rescuers look every second.
    workers = [spawn_worker("--concurrency", "4", "--lease", "2") for _ in range(3)]
    for process in workers:
        wait_until_registered(store, process)
    jobs = app.enqueue_many(touch.call(KILL_PAUSE) for _ in range(KILL_JOBS))
    ids = {job.id for job in jobs}
    victim, survivors = workers[0], workers[1:]

    def victim_busy_after_progress() -> bool:
        ended = ledger.count("end", victim.pid)
        return ended >= VICTIM_PROGRESS and ledger.count("start", victim.pid) > ended

    wait_for(victim_busy_after_progress, PATIENCE, "the victim to be mid-drain")
    victim.send(signal.SIGKILL)
    assert victim.wait_exit(PATIENCE) == -signal.SIGKILL

    wait_for(
        lambda: drained(store, KILL_JOBS, survivors),
        DRAIN_PATIENCE,
        f"{KILL_JOBS} jobs to succeed after the kill",
    )
    for process in survivors:
        process.send(signal.SIGTERM)
    assert [process.wait_exit(PATIENCE) for process in survivors] == [0, 0]

    starts = ledger.starts()
    assert set(starts) == ids
    twice = {job: pids for job, pids in starts.items() if len(pids) > 1}
    assert twice, "no job of the killed worker was run again"
    assert {len(pids) for pids in twice.values()} == {2}
    assert {job: pids[0] for job, pids in twice.items()} == dict.fromkeys(
        twice, victim.pid
    )

    attempts = {job_id: store.list_attempts(job_id) for job_id in sorted(ids)}
    successes = {
        job_id: [a.outcome for a in rows].count(AttemptOutcome.SUCCEEDED)
        for job_id, rows in attempts.items()
    }
    assert set(successes.values()) == {1}
    lost = [
        a
        for rows in attempts.values()
        for a in rows
        if a.outcome is AttemptOutcome.LOST
    ]
    assert {worker_pid(a.worker_id) for a in lost} == {victim.pid}
    assert set(twice) <= {a.job_id for a in lost}

"""Workers that die or freeze mid-job: no job is lost, none succeeds twice.

Real ``conveyor worker`` processes on a real PostgreSQL server, killed with
SIGKILL or frozen with SIGSTOP while they run jobs. The store's record is
checked against the ledger the task keeps outside the queue's tables,
which says which process really started each attempt.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from conveyor import Conveyor, JobState
from conveyor.records import AttemptOutcome
from conveyor.store import Store
from tests.chaos import chaos_tasks
from tests.chaos.conftest import (
    PATIENCE,
    ChaosDatabase,
    Fleet,
    Ledger,
    Start,
    accepted_but_said_dropped,
    poll,
    wait_for,
    wait_until_registered,
)

pytestmark = pytest.mark.postgres

#: Jobs the kill test drains, and how many it enqueues per transaction.
JOBS = 20_000
BATCH = 1_000

#: Worker processes alive at any moment in the kill test.
WORKERS = 4

#: Seconds between two SIGKILLs in the kill test.
KILL_EVERY = 2.0

#: How long the whole drain may take on a loaded two-core machine.
DRAIN_DEADLINE = 150.0

#: Seconds between two counts of the 20,000 jobs: often enough to notice
#: the end, rarely enough not to slow the drain down.
COUNT_INTERVAL = 0.2

#: The lease of the freeze test's workers, in seconds.
SHORT_LEASE = 2.0


def worker_pid(worker_id: str | None) -> int:
    """The pid in a worker id (``host:pid:token``)."""
    assert worker_id is not None
    return int(worker_id.split(":")[1])


def test_kill_9_every_two_seconds_loses_no_job_and_runs_none_twice_to_success(
    app: Conveyor, store: Store, chaos_db: ChaosDatabase, fleet: Fleet, ledger: Ledger
) -> None:
    began = time.monotonic()
    job_ids: list[int] = []
    for _ in range(JOBS // BATCH):
        jobs = app.enqueue_many(chaos_tasks.record.call() for _ in range(BATCH))
        job_ids.extend(job.id for job in jobs)
    rng = random.Random(JOBS)
    killed: set[int] = set()

    def drained() -> bool:
        return store.count_jobs() == {JobState.SUCCEEDED: JOBS}

    for _ in range(WORKERS):
        fleet.spawn()
    deadline = time.monotonic() + DRAIN_DEADLINE
    while not poll(drained, KILL_EVERY, COUNT_INTERVAL):
        assert time.monotonic() < deadline, f"drain stuck at {store.count_jobs()}"
        victim = rng.choice(fleet.alive())
        victim.kill()
        killed.add(victim.pid)
        fleet.spawn()
    drained_in = time.monotonic() - began
    survivors = fleet.alive()
    exit_codes = [process.stop(PATIENCE) for process in survivors]

    assert len(killed) >= 3, f"only {len(killed)} kills in {drained_in:.1f} s"
    assert exit_codes == [0] * WORKERS
    assert len(set(job_ids)) == JOBS
    succeeded = chaos_db.query(
        "SELECT job_id, attempt, worker_id FROM job_attempts "
        "WHERE outcome = 'succeeded'"
    )
    assert len(succeeded) == JOBS
    assert {job_id for job_id, _, _ in succeeded} == set(job_ids)
    others = chaos_db.query(
        "SELECT worker_id, outcome FROM job_attempts "
        "WHERE outcome IS DISTINCT FROM 'succeeded'"
    )
    assert {outcome for _, outcome in others} <= {AttemptOutcome.LOST.value}
    assert {worker_pid(worker_id) for worker_id, _ in others} <= killed
    starts = ledger.runs("start")
    assert set(starts) == set(job_ids)
    restarted = {job_id: runs for job_id, runs in starts.items() if len(runs) > 1}
    print(
        f"drained {JOBS} jobs in {drained_in:.1f} s; {len(killed)} kills; "
        f"{len(restarted)} jobs started more than once"
    )
    assert restarted, "no job was started twice: the kills hit nothing"
    for job_id, runs in restarted.items():
        assert {run.pid for run in runs[:-1]} <= killed, (job_id, runs, killed)
    assert accepted_but_said_dropped(chaos_db, survivors) == set()
    last_starts = {job_id: runs[-1] for job_id, runs in starts.items()}
    assert last_starts == {
        job_id: Start(attempt, worker_pid(worker_id))
        for job_id, attempt, worker_id in succeeded
    }


def test_frozen_worker_loses_its_job_to_a_rescue_and_its_late_result_is_refused(
    store: Store, fleet: Fleet, ledger: Ledger
) -> None:
    frozen = fleet.spawn("--lease", str(SHORT_LEASE))
    wait_until_registered(store, frozen)
    job = chaos_tasks.record.enqueue(1.0)
    wait_for(
        lambda: ledger.has("start", job.id, frozen.pid),
        PATIENCE,
        f"worker {frozen.pid} to start job {job.id}",
    )

    frozen.send(signal.SIGSTOP)
    frozen_at = time.monotonic()
    rescuer = fleet.spawn("--lease", str(SHORT_LEASE))
    wait_for(
        lambda: job.refresh().state is JobState.SUCCEEDED,
        PATIENCE,
        f"another worker to rescue and complete job {job.id}",
    )
    frozen_for = time.monotonic() - frozen_at
    frozen.send(signal.SIGCONT)
    wait_for(
        lambda: ledger.has("end", job.id, frozen.pid),
        PATIENCE,
        f"the thawed worker {frozen.pid} to finish its own run of job {job.id}",
    )
    exit_codes = (frozen.stop(PATIENCE), rescuer.stop(PATIENCE))

    assert frozen_for > SHORT_LEASE
    assert exit_codes == (0, 0)
    assert ledger.runs("start")[job.id] == [Start(1, frozen.pid), Start(2, rescuer.pid)]
    assert ledger.runs("end")[job.id] == [Start(2, rescuer.pid), Start(1, frozen.pid)]
    attempts = [
        (attempt.attempt, worker_pid(attempt.worker_id), attempt.outcome)
        for attempt in store.list_attempts(job.id)
    ]
    assert attempts == [
        (1, frozen.pid, AttemptOutcome.LOST),
        (2, rescuer.pid, AttemptOutcome.SUCCEEDED),
    ]
    record = store.get_job(job.id)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.SUCCEEDED, 2)
    successes = [
        worker_pid(event.actor)
        for event in store.list_events(job.id)
        if event.to_state is JobState.SUCCEEDED
    ]
    assert successes == [rescuer.pid]
    # The thawed worker drops its result one of two ways, depending on which
    # of its threads runs first: the heartbeat finds the lease gone, or the
    # completer's write is refused by the store. Both leave the job alone.
    log = frozen.log()
    assert (
        f"Result of job {job.id} attempt 1 refused" in log
        or f"Lost the lease on job {job.id} attempt 1" in log
    ), log

"""Lost connections: workers ride them out, and enqueue fails loudly.

Workers' server sessions are terminated under them in mid-drain; they
log the outage, reconnect and finish the drain without losing a job or
exiting. An enqueue against a server that cannot be reached raises
``StoreError`` naming the cause, never returning an id.
"""

from __future__ import annotations

import time

import pytest

from conveyor import Conveyor, JobState, StoreError
from conveyor.records import AttemptOutcome
from conveyor.store import Store
from conveyor.store.postgres import POOL_TIMEOUT, PROBE_TIMEOUT
from tests.chaos import chaos_tasks
from tests.chaos.conftest import (
    PATIENCE,
    ChaosDatabase,
    Fleet,
    accepted_but_said_dropped,
    wait_for,
)

#: Jobs the termination test drains, each sleeping ``PAUSE`` seconds, so
#: that the drain outlasts two outages and the recovery between them.
JOBS = 3_000
PAUSE = 0.01

#: Worker processes in the termination test.
WORKERS = 2

#: Jobs that must succeed after an outage to count as recovered.
PROGRESS = 200

#: How long the drain may take, outages included.
DRAIN_DEADLINE = 90.0

#: A port nothing listens on.
CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:1/test?schema=conveyor_t_down"

#: What a worker logs when its LISTEN session is cut.
LISTEN_LOST = "Lost the connection that listens for new jobs; reconnecting"


def succeeded(store: Store) -> int:
    """How many jobs have succeeded so far."""
    return store.count_jobs().get(JobState.SUCCEEDED, 0)


@pytest.mark.postgres
def test_workers_ride_out_two_terminations_of_all_their_sessions(
    app: Conveyor, store: Store, chaos_db: ChaosDatabase, fleet: Fleet
) -> None:
    workers = [fleet.spawn() for _ in range(WORKERS)]
    wait_for(
        lambda: chaos_db.listening_workers() == WORKERS,
        PATIENCE,
        f"{WORKERS} idle workers to listen for new jobs",
    )
    job_ids = [
        job.id
        for job in app.enqueue_many(chaos_tasks.record.call(PAUSE) for _ in range(JOBS))
    ]
    terminated: list[int] = []
    done_at_outage: list[int] = []

    for outage in range(2):
        floor = done_at_outage[-1] + PROGRESS if done_at_outage else PROGRESS
        wait_for(
            lambda floor=floor: succeeded(store) >= floor,
            PATIENCE,
            f"{floor} jobs to succeed before outage {outage + 1}",
        )
        wait_for(
            lambda: chaos_db.listening_workers() == WORKERS,
            PATIENCE,
            f"every worker to listen again before outage {outage + 1}",
        )
        terminated.append(chaos_db.terminate_workers())
        done_at_outage.append(succeeded(store))
    wait_for(
        lambda: store.count_jobs() == {JobState.SUCCEEDED: JOBS},
        DRAIN_DEADLINE,
        f"all {JOBS} jobs to succeed",
    )
    alive = [worker.alive() for worker in workers]
    exit_codes = [worker.stop(PATIENCE) for worker in workers]

    assert min(terminated) >= 2 * WORKERS, terminated
    assert done_at_outage[-1] < JOBS, "the drain ended before the second outage"
    assert alive == [True] * WORKERS
    assert exit_codes == [0] * WORKERS
    outcomes = chaos_db.query(
        "SELECT job_id, outcome FROM job_attempts WHERE outcome = %(outcome)s",
        outcome=AttemptOutcome.SUCCEEDED.value,
    )
    assert sorted(job_id for job_id, _ in outcomes) == sorted(job_ids)
    for worker in workers:
        assert worker.log().count(LISTEN_LOST) == 2, worker.log()
    assert accepted_but_said_dropped(chaos_db, workers) == set()


def test_enqueue_with_the_server_unreachable_raises_store_error_naming_why() -> None:
    app = Conveyor(CLOSED_PORT_URL)
    task = app.task(chaos_tasks.record.fn)
    began = time.monotonic()
    outcome: object = None

    try:
        with pytest.raises(StoreError) as raised:
            outcome = task.enqueue()
    finally:
        app.close()
    waited = time.monotonic() - began

    assert outcome is None
    message = str(raised.value)
    assert message.startswith(
        "cannot enqueue jobs: PostgreSQL accepted no connection in 10 s: "
    ), message
    assert 'connection to server at "127.0.0.1", port 1 failed' in message
    assert "Connection refused" in message
    assert POOL_TIMEOUT <= waited < POOL_TIMEOUT + PROBE_TIMEOUT

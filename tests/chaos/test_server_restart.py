"""A PostgreSQL restart in mid-drain: the worker survives and loses nothing.

The server is restarted with ``pg_ctlcluster`` while a worker process
drains jobs; every session on the server is cut, the worker's included.
The test runs last in the session (it is marked ``restarts_server``) and
waits for the server to answer again before it ends, whatever happened.

Restarting the server cuts every other session on it too, so the test
runs only when ``CONVEYOR_TEST_RESTART_POSTGRES=1`` says the server is
this run's alone, as it is in CI; it is skipped, with that reason, on a
shared machine.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conveyor import Conveyor, JobState
from conveyor.records import AttemptOutcome
from conveyor.store import Store
from tests.chaos import chaos_tasks
from tests.chaos.conftest import PATIENCE, ChaosDatabase, Fleet, poll, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.restarts_server]

#: Jobs drained across the restart, each sleeping ``PAUSE`` seconds, so the
#: drain is still going when the server comes back.
JOBS = 3_000
PAUSE = 0.01

#: Jobs that succeed before the restart.
BEFORE_RESTART = 200

#: How long the drain may take, restart included.
DRAIN_DEADLINE = 90.0

#: Where Debian keeps one directory per installed PostgreSQL version.
VERSIONS_DIR = Path("/etc/postgresql")

#: The cluster the tests' server runs as.
CLUSTER = "main"

#: How long the restart command and the wait for the server may take.
RESTART_DEADLINE = 60.0

#: What a worker logs when its LISTEN session is cut.
LISTEN_LOST = "Lost the connection that listens for new jobs; reconnecting"


def cluster_version() -> str:
    """The installed PostgreSQL version's directory name (e.g. ``15``)."""
    versions = sorted(path.name for path in VERSIONS_DIR.iterdir())
    assert versions, f"no PostgreSQL version under {VERSIONS_DIR}"

    return versions[-1]


def server_ready(server: str) -> bool:
    """True when ``pg_isready`` says the server accepts connections."""
    parts = urlsplit(server)
    answer = subprocess.run(
        ["pg_isready", "-q", "-h", parts.hostname or "", "-p", str(parts.port or 5432)],
        check=False,
    )

    return answer.returncode == 0


def restart_server() -> None:
    """Restart the cluster; returns once ``pg_ctlcluster`` says it started."""
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            cluster_version(),
            CLUSTER,
            "restart",
        ],
        check=True,
        timeout=RESTART_DEADLINE,
    )


@pytest.fixture
def restartable_server(chaos_db: ChaosDatabase) -> Iterator[str]:
    """The server, if this run may restart it; afterwards, it answers again.

    It takes ``chaos_db`` so that the server is up again before the test's
    schema is dropped.
    """
    postgres_server = chaos_db.server
    if os.environ.get("CONVEYOR_TEST_RESTART_POSTGRES") != "1":
        pytest.skip(
            "restarting PostgreSQL cuts every session on it; set "
            "CONVEYOR_TEST_RESTART_POSTGRES=1 where this run has it alone"
        )
    host = urlsplit(postgres_server).hostname
    if host not in ("127.0.0.1", "localhost") or not VERSIONS_DIR.is_dir():
        pytest.skip(f"the server at {host} is not a local Debian cluster")

    yield postgres_server

    if poll(lambda: server_ready(postgres_server), RESTART_DEADLINE, 0.2):
        return
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            cluster_version(),
            CLUSTER,
            "start",
        ],
        check=False,
        timeout=RESTART_DEADLINE,
    )
    wait_for(
        lambda: server_ready(postgres_server),
        RESTART_DEADLINE,
        "the server to answer after the test",
    )


def test_worker_survives_a_server_restart_mid_drain_and_loses_no_job(
    restartable_server: str,
    app: Conveyor,
    store: Store,
    chaos_db: ChaosDatabase,
    fleet: Fleet,
) -> None:
    worker = fleet.spawn()
    wait_for(
        lambda: chaos_db.listening_workers() == 1,
        PATIENCE,
        "the idle worker to listen for new jobs",
    )
    job_ids = [
        job.id
        for job in app.enqueue_many(chaos_tasks.record.call(PAUSE) for _ in range(JOBS))
    ]
    wait_for(
        lambda: store.count_jobs().get(JobState.SUCCEEDED, 0) >= BEFORE_RESTART,
        PATIENCE,
        f"{BEFORE_RESTART} jobs to succeed before the restart",
    )

    restart_server()
    done_at_restart = store.count_jobs().get(JobState.SUCCEEDED, 0)
    wait_for(
        lambda: server_ready(restartable_server),
        RESTART_DEADLINE,
        "the server to answer after the restart",
    )
    wait_for(
        lambda: store.count_jobs() == {JobState.SUCCEEDED: JOBS},
        DRAIN_DEADLINE,
        f"all {JOBS} jobs to succeed after the restart",
    )
    alive = worker.alive()
    exit_code = worker.stop(PATIENCE)

    assert done_at_restart < JOBS, "the drain ended before the restart"
    assert (alive, exit_code) == (True, 0)
    outcomes = chaos_db.query(
        "SELECT job_id FROM job_attempts WHERE outcome = %(outcome)s",
        outcome=AttemptOutcome.SUCCEEDED.value,
    )
    assert sorted(job_id for (job_id,) in outcomes) == sorted(job_ids)
    log = worker.log()
    assert LISTEN_LOST in log, log

"""PostgreSQL-only behaviour of the store, beyond the shared contract.

What only PostgreSQL has: schemas, an application's own connection and
transaction, LISTEN/NOTIFY, a server that can cut connections, and several
processes racing on one database. Every test runs in a schema of its own,
dropped afterwards, and every store here has an ``application_name`` of
its own so a test can find (and kill) exactly that store's connections.

The whole module is marked ``postgres``: ``tests/conftest.py`` skips it,
with one line naming the URL, when no server answers.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import psycopg
import pytest
from psycopg import sql

from conveyor.errors import ConfigurationError, StoreError
from conveyor.records import NewJob
from conveyor.states import JobState
from conveyor.store import postgres as postgres_module
from conveyor.store.postgres import PostgresStore
from tests import _pg

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

    from tests.conftest import Clock

pytestmark = pytest.mark.postgres

#: How long a test waits for something another thread, process or the
#: server does before calling it stuck. It bounds a failure; it measures
#: no speed.
PATIENCE = 30.0

#: Seconds a claim holds its lease in these tests.
LEASE = 60.0

#: Every table ``migrate`` creates.
TABLES = {"conveyor_migrations", "jobs", "job_attempts", "job_events", "workers"}

#: Spawned, not forked: a child must not inherit the parent's pool threads.
SPAWN = multiprocessing.get_context("spawn")


class Database:
    """One test's schema on the server, and the stores opened on it."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.schema = _pg.new_schema_name()
        self.app_name = f"conveyor_t_{uuid.uuid4().hex[:12]}"
        self.stores: list[PostgresStore] = []

    def url(self, **extra: str) -> str:
        """The URL of a store in this schema, tagged with ``app_name``."""
        query = {"application_name": self.app_name, **extra}
        return f"{_pg.store_url(self.server, self.schema)}&{urlencode(query)}"

    def open(self, **extra: str) -> PostgresStore:
        """Open a store on this schema, closed when the test ends."""
        store = PostgresStore(self.url(**extra))
        self.stores.append(store)
        return store

    def admin(self) -> psycopg.Connection[Any]:
        """An autocommit connection that is none of the stores'."""
        return psycopg.connect(self.server, autocommit=True)

    def close(self) -> None:
        """Close every store opened here, then drop the schema."""
        try:
            for store in reversed(self.stores):
                store.close()
        finally:
            _pg.drop_schema(self.server, self.schema)


@pytest.fixture
def db(postgres_server: str) -> Iterator[Database]:
    """A fresh schema on the test server; stores closed and schema dropped after."""
    database = Database(postgres_server)
    yield database
    database.close()


@pytest.fixture
def store(db: Database) -> PostgresStore:
    """A migrated store in the test's schema."""
    store = db.open()
    store.migrate()
    return store


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after PATIENCE."""
    deadline = time.monotonic() + PATIENCE

    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def backends(admin: psycopg.Connection[Any], app_name: str) -> list[int]:
    """The server pids of every connection with this ``application_name``."""
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app_name,)
    ).fetchall()
    return [pid for (pid,) in rows]


def terminate(admin: psycopg.Connection[Any], pids: list[int]) -> None:
    """Kill these backends and wait until the server has let them go."""
    for pid in pids:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def all_gone() -> bool:
        rows = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
        ).fetchone()
        return rows is not None and rows[0] == 0

    wait_for(all_gone, f"backends {pids} to exit")


def listen_then_settle(store: PostgresStore) -> None:
    """Start the store listening and consume the hint its connecting gives."""
    assert store.wait_for_work(PATIENCE) is True


def wait_in_thread(store: PostgresStore) -> tuple[threading.Thread, list[bool]]:
    """Wait for work in a new thread; its answer lands in the list returned."""
    answer: list[bool] = []
    thread = threading.Thread(
        target=lambda: answer.append(store.wait_for_work(PATIENCE)), daemon=True
    )
    thread.start()
    return thread, answer


# -- schemas and migrations -------------------------------------------------


def test_tables_live_in_the_schema_the_url_names(
    db: Database, postgres_server: str, clock: Clock
) -> None:
    other = Database(postgres_server)
    try:
        mine, theirs = db.open(), other.open()
        mine.migrate()
        theirs.migrate()

        mine.enqueue([NewJob(task="t")], clock.now)

        with db.admin() as admin:
            rows = admin.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s",
                (db.schema,),
            ).fetchall()
        assert {name for (name,) in rows} == TABLES
        assert mine.count_jobs() == {JobState.QUEUED: 1}
        assert theirs.count_jobs() == {}
    finally:
        other.close()


def test_migrating_twice_applies_the_schema_once(db: Database) -> None:
    store = db.open()

    assert store.migrate() == [1]
    assert store.migrate() == []
    assert store.schema_version() == 1

    with db.admin() as admin:
        rows = admin.execute(
            sql.SQL("SELECT version FROM {}.conveyor_migrations").format(
                sql.Identifier(db.schema)
            )
        ).fetchall()
    assert rows == [(1,)]


def _migrate_in_child(url: str, start: Barrier, answers: Queue[Any]) -> None:
    store = PostgresStore(url)
    try:
        start.wait(PATIENCE)
        answers.put(store.migrate())
    except Exception as error:
        answers.put(repr(error))
    finally:
        store.close()


def test_two_processes_migrating_at_once_apply_the_schema_once(db: Database) -> None:
    start = SPAWN.Barrier(2)
    answers = SPAWN.Queue()
    children = [
        SPAWN.Process(target=_migrate_in_child, args=(db.url(), start, answers))
        for _ in range(2)
    ]

    for child in children:
        child.start()
    results = [answers.get(timeout=PATIENCE * 2) for _ in children]
    for child in children:
        child.join(PATIENCE)

    assert sorted(results, key=len) == [[], [1]]
    assert db.open().schema_version() == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("schema=Bad-Name", "schema='Bad-Name'"),
        ("schema=x&pool_min=some", "pool_min='some'"),
        ("schema=x&pool_min=5&pool_max=2", "pool maximum size 2"),
    ],
)
def test_bad_url_parameters_are_refused_by_name(query: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        PostgresStore(f"postgresql://nobody@127.0.0.1:1/none?{query}")


# -- enqueue ------------------------------------------------------------------


def test_a_large_batch_gets_ids_in_input_order(
    store: PostgresStore, db: Database, clock: Clock
) -> None:
    jobs = [NewJob(task="t", args_json=f"[{n}]") for n in range(1000)]

    ids = store.enqueue(jobs, clock.now)

    with db.admin() as admin:
        rows = admin.execute(
            sql.SQL("SELECT id, args FROM {}.jobs ORDER BY id").format(
                sql.Identifier(db.schema)
            )
        ).fetchall()
    assert rows == [(job_id, f"[{n}]") for n, job_id in enumerate(ids)]


def test_enqueue_in_a_rolled_back_application_transaction_leaves_no_job(
    store: PostgresStore, db: Database, clock: Clock
) -> None:
    # The application's connection has no search_path for Conveyor's schema:
    # the store must find its tables by itself.
    with psycopg.connect(db.server) as app, app.transaction():
        [job_id] = store.enqueue([NewJob(task="t")], clock.now, connection=app)
        raise psycopg.Rollback

    assert store.get_job(job_id) is None
    assert store.list_events(job_id) == []
    assert store.count_jobs() == {}


def test_enqueue_in_a_committed_application_transaction_keeps_the_job(
    store: PostgresStore, db: Database, clock: Clock
) -> None:
    with psycopg.connect(db.server) as app, app.transaction():
        [job_id] = store.enqueue(
            [NewJob(task="t")], clock.now, actor="app", connection=app
        )

    job = store.get_job(job_id)
    assert job is not None
    assert (job.task, job.state, job.run_at) == ("t", JobState.QUEUED, clock.now)
    assert [(e.to_state, e.reason, e.actor) for e in store.list_events(job_id)] == [
        (JobState.QUEUED, "enqueued", "app")
    ]


def test_enqueue_on_something_not_a_psycopg_connection_is_refused(
    store: PostgresStore, clock: Clock
) -> None:
    with pytest.raises(ConfigurationError, match="connection=42 is not usable"):
        store.enqueue([NewJob(task="t")], clock.now, connection=42)


# -- wake-ups -----------------------------------------------------------------


def test_a_committed_enqueue_wakes_a_waiting_store(
    store: PostgresStore, db: Database, clock: Clock
) -> None:
    listen_then_settle(store)
    waiter, answer = wait_in_thread(store)

    db.open().enqueue([NewJob(task="t")], clock.now)

    waiter.join(PATIENCE)
    assert answer == [True]


def test_an_enqueue_wakes_nobody_until_its_transaction_commits(
    store: PostgresStore, db: Database, clock: Clock
) -> None:
    listen_then_settle(store)

    with psycopg.connect(db.server) as app:
        with app.transaction():
            store.enqueue([NewJob(task="t")], clock.now, connection=app)
            woken_before_commit = store.wait_for_work(0.2)

        woken_after_commit = store.wait_for_work(PATIENCE)

    assert (woken_before_commit, woken_after_commit) == (False, True)


def test_an_enqueue_in_another_schema_wakes_nobody_here(
    store: PostgresStore, db: Database, postgres_server: str, clock: Clock
) -> None:
    other = Database(postgres_server)
    try:
        theirs = other.open()
        theirs.migrate()
        listen_then_settle(store)

        theirs.enqueue([NewJob(task="t")], clock.now)
        woken_by_theirs = store.wait_for_work(0.2)
        db.open().enqueue([NewJob(task="t")], clock.now)
        woken_by_mine = store.wait_for_work(PATIENCE)
    finally:
        other.close()

    assert (woken_by_theirs, woken_by_mine) == (False, True)


def test_wake_from_another_thread_ends_a_wait(store: PostgresStore) -> None:
    listen_then_settle(store)
    waiter, answer = wait_in_thread(store)

    store.wake()

    waiter.join(PATIENCE)
    assert answer == [True]


def test_a_killed_listen_connection_is_replaced_with_one_warning(
    store: PostgresStore,
    db: Database,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="conveyor.store._pg_listen")
    listen_then_settle(store)

    with db.admin() as admin:
        listening = backends(admin, f"{db.app_name} listen")
        assert len(listening) == 1
        terminate(admin, listening)
    reconnected = store.wait_for_work(PATIENCE)
    waiter, answer = wait_in_thread(store)
    db.open().enqueue([NewJob(task="t")], clock.now)
    waiter.join(PATIENCE)

    assert (reconnected, answer) == (True, [True])
    mine = [r for r in caplog.records if r.name == "conveyor.store._pg_listen"]
    assert [r.levelname for r in mine] == ["WARNING"]


# -- database faults ----------------------------------------------------------


def test_a_statement_cut_off_by_the_server_raises_store_error_then_recovers(
    store: PostgresStore, db: Database, clock: Clock
) -> None:
    [job_id] = store.enqueue([NewJob(task="t")], clock.now)
    errors: list[BaseException] = []

    def read_blocked() -> None:
        try:
            store.get_job(job_id)
        except BaseException as error:
            errors.append(error)

    with db.admin() as admin, psycopg.connect(db.server) as locker:
        locker.execute(
            sql.SQL("LOCK TABLE {}.jobs IN ACCESS EXCLUSIVE MODE").format(
                sql.Identifier(db.schema)
            )
        )
        reader = threading.Thread(target=read_blocked, daemon=True)
        reader.start()

        blocked: list[int] = []

        def read_is_blocked() -> bool:
            blocked[:] = blocked_by(admin, locker.info.backend_pid)
            return bool(blocked)

        wait_for(read_is_blocked, "the store's read to wait on the lock")
        terminate(admin, blocked)
        reader.join(PATIENCE)
        locker.rollback()

    assert len(errors) == 1 and isinstance(errors[0], StoreError)
    assert isinstance(errors[0].__cause__, psycopg.OperationalError)
    job = store.get_job(job_id)
    assert job is not None and job.state is JobState.QUEUED


def blocked_by(admin: psycopg.Connection[Any], pid: int) -> list[int]:
    """The backends waiting on a lock that backend ``pid`` holds."""
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
        (pid,),
    ).fetchall()
    return [blocked for (blocked,) in rows]


def test_idle_connections_killed_by_the_server_are_replaced(
    db: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Connections used within TRUST_RECENT seconds are lent unchecked (a
    # failure there is a StoreError, as the mid-statement test shows); with
    # the window closed, every lent connection is checked first.
    monkeypatch.setattr(postgres_module, "TRUST_RECENT", 0.0)
    store = db.open(pool_min="3", pool_max="3")
    store.migrate()
    [job_id] = store.enqueue([NewJob(task="t")], clock.now)

    with db.admin() as admin:
        wait_for(lambda: len(backends(admin, db.app_name)) == 3, "a full pool")
        terminate(admin, backends(admin, db.app_name))

    claimed = store.claim("w1", None, 10, LEASE, clock.now)
    assert [job.id for job in claimed] == [job_id]


# -- processes racing ---------------------------------------------------------


def _claim_in_child(
    url: str, worker_id: str, now: datetime, start: Barrier, answers: Queue[Any]
) -> None:
    store = PostgresStore(url, min_size=1, max_size=1)
    claimed: list[int] = []
    try:
        start.wait(PATIENCE)
        while batch := store.claim(worker_id, None, 7, LEASE, now):
            claimed.extend(job.id for job in batch)
        answers.put((worker_id, claimed))
    except Exception as error:
        answers.put((worker_id, repr(error)))
    finally:
        store.close()


def test_three_processes_racing_claims_never_share_a_job(
    store: PostgresStore, db: Database, clock: Clock
) -> None:
    ids = store.enqueue([NewJob(task="t") for _ in range(1000)], clock.now)
    start = SPAWN.Barrier(3)
    answers = SPAWN.Queue()
    children = [
        SPAWN.Process(
            target=_claim_in_child,
            args=(db.url(), f"w{n}", clock.now, start, answers),
        )
        for n in range(3)
    ]

    for child in children:
        child.start()
    claims = dict(answers.get(timeout=PATIENCE * 4) for _ in children)
    for child in children:
        child.join(PATIENCE)

    assert all(isinstance(claimed, list) for claimed in claims.values()), claims
    every_claim = sorted(job_id for claimed in claims.values() for job_id in claimed)
    assert every_claim == ids
    assert store.count_jobs() == {JobState.RUNNING: 1000}
    with db.admin() as admin:
        held = admin.execute(
            sql.SQL(
                "SELECT worker_id, array_agg(id ORDER BY id) FROM {}.jobs "
                "WHERE attempts = 1 GROUP BY worker_id"
            ).format(sql.Identifier(db.schema))
        ).fetchall()
        attempts = admin.execute(
            sql.SQL(
                "SELECT count(DISTINCT job_id), count(*) FROM {}.job_attempts"
            ).format(sql.Identifier(db.schema))
        ).fetchone()
    assert dict(held) == {
        worker: sorted(claimed) for worker, claimed in claims.items() if claimed
    }
    assert attempts == (1000, 1000)

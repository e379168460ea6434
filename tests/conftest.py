"""Fixtures shared by every test: stores on both engines, and a clock tests move.

``store`` is parametrised over SQLite and PostgreSQL, so a test written once
runs on both. SQLite gets a fresh file per test; PostgreSQL gets a fresh
schema per test, dropped afterwards. PostgreSQL runs are marked
``postgres`` (deselect them with ``-m "not postgres"``) and are skipped, with
one reason, when no server answers, unless ``CONVEYOR_REQUIRE_POSTGRES=1``
(as in CI), which turns the skip into a failure.

Tests never read the wall clock: they pass ``clock.now`` to every store call
and move it with ``clock.advance``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conveyor.store import Store, open_store
from tests import _pg

#: Where every test's clock starts: a fixed, timezone-aware UTC instant.
CLOCK_START = datetime(2030, 1, 1, tzinfo=UTC)

STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "postgres: needs a PostgreSQL server (CONVEYOR_TEST_DATABASE_URL, "
        f"default {_pg.DEFAULT_URL})",
    )


class Clock:
    """Test time: starts at ``CLOCK_START`` and moves only when a test moves it.

    >>> clock = Clock(CLOCK_START)
    >>> clock.advance(30) - CLOCK_START
    datetime.timedelta(seconds=30)
    """

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.now = start

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds``; return the new time."""
        self.now += timedelta(seconds=seconds)

        return self.now

    def after(self, seconds: float) -> datetime:
        """Return the time ``seconds`` from now, without moving the clock."""
        return self.now + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    """A clock at 2030-01-01T00:00:00Z that moves only when told to."""
    return Clock(CLOCK_START)


@functools.cache
def postgres_problem() -> str | None:
    """Why the PostgreSQL tests cannot run, in one line; ``None`` when they can."""
    url = _pg.base_url()
    error = _pg.reachability_error(url)
    if error is None:
        return None

    return f"PostgreSQL not reachable at {_pg.shown_url(url)}: {error}"


def postgres_required() -> bool:
    """True where PostgreSQL must run (CI): a missing server fails the tests."""
    return os.environ.get("CONVEYOR_REQUIRE_POSTGRES") == "1"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Runs after ``-m`` deselection, so ``-m "not postgres"`` never connects.
    # A skip mark (rather than a skip in a fixture) lets ``-ra`` fold every
    # skipped PostgreSQL test into one summary line.
    wanted = [item for item in items if item.get_closest_marker("postgres")]
    if not wanted or postgres_required():
        return

    problem = postgres_problem()
    if problem is None:
        return

    for item in wanted:
        item.add_marker(pytest.mark.skip(reason=problem))


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server's URL; fails when it is unreachable."""
    problem = postgres_problem()
    if problem is not None:
        pytest.fail(f"{problem} (CONVEYOR_REQUIRE_POSTGRES=1)", pytrace=False)

    return _pg.base_url()


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL naming an empty database: a new SQLite file or PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/conveyor.db"
        return

    server: str = request.getfixturevalue("postgres_server")
    schema = _pg.new_schema_name()

    yield _pg.store_url(server, schema)

    _pg.drop_schema(server, schema)


@pytest.fixture
def dialect(store_url: str) -> str:
    """The engine this run of the test uses: "sqlite" or "postgresql"."""
    return store_url.split(":", 1)[0]


@pytest.fixture
def store_factory(store_url: str) -> Iterator[Callable[[], Store]]:
    """Opens more stores on the test's database; closes them all afterwards."""
    opened: list[Store] = []

    def open_another() -> Store:
        store = open_store(store_url)
        opened.append(store)

        return store

    yield open_another

    # Every store is closed even if one fails to, so none holds the database.
    errors: list[Exception] = []
    for store in reversed(opened):
        try:
            store.close()
        except Exception as error:
            errors.append(error)
    if errors:
        raise errors[0]


@pytest.fixture
def unmigrated_store(store_factory: Callable[[], Store]) -> Store:
    """A store on an empty database whose schema was never created."""
    return store_factory()


@pytest.fixture
def store(store_factory: Callable[[], Store]) -> Store:
    """A store on a fresh, migrated database."""
    store = store_factory()
    store.migrate()

    return store

"""Exit status: 0 on success, 2 with one line for a usage mistake, 1 with one
line for a failure at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

import conveyor as package
from conveyor import Conveyor
from tests.cli import conveyor

STATES = "'waiting', 'queued', 'held', 'running', 'succeeded', 'failed', 'cancelled'"


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A migrated database file in the test's directory."""
    url = f"sqlite:///{tmp_path}/c.db"
    app = Conveyor(url)
    app.migrate()
    app.close()

    return url


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    done = conveyor("--version", cwd=tmp_path)

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"conveyor, version {package.__version__}\n"


USAGE_MISTAKES = [
    pytest.param(
        ["enqueue", "cli.add", "--args", "[1,", "--app", "cli_tasks"],
        "--args is not valid JSON (Expecting value): '[1,'",
        id="args-not-json",
    ),
    pytest.param(
        ["enqueue", "cli.add", "--args", '{"a": 1}', "--app", "cli_tasks"],
        "--args must be a JSON list, got '{\"a\": 1}'",
        id="args-not-a-list",
    ),
    pytest.param(
        ["enqueue", "cli.add", "--kwargs", "[1]", "--app", "cli_tasks"],
        "--kwargs must be a JSON object, got '[1]'",
        id="kwargs-not-an-object",
    ),
    pytest.param(
        ["enqueue", "nope", "--app", "cli_tasks"],
        "no task is named 'nope'; known tasks: cli.add, cli.fail, cli.greet",
        id="unknown-task",
    ),
    pytest.param(
        ["jobs", "list", "--colour", "red"],
        "No such option '--colour'.",
        id="unknown-option",
    ),
    pytest.param(
        ["frobnicate"],
        "No such command 'frobnicate'.",
        id="unknown-command",
    ),
    pytest.param(
        ["jobs", "list", "--state", "bogus"],
        f"Invalid value for '--state': 'bogus' is not one of {STATES}.",
        id="bad-state-choice",
    ),
    pytest.param(
        ["enqueue", "cli.add", "--priority", "5000", "--app", "cli_tasks"],
        "Invalid value for '--priority': 5000 is not in the range -1000<=x<=1000.",
        id="priority-out-of-range",
    ),
    pytest.param(
        ["enqueue", "cli.add", "--delay", "-1", "--app", "cli_tasks"],
        "Invalid value for '--delay': -1.0 is not in the range x>=0.",
        id="negative-delay",
    ),
    pytest.param(
        ["jobs", "list", "--limit", "0"],
        "Invalid value for '--limit': 0 is not in the range 1<=x<=10000.",
        id="limit-out-of-range",
    ),
    pytest.param(
        ["enqueue", "cli.add", "--args", "[1, 2]"],
        "enqueue needs --app (or CONVEYOR_APP) to check the task name",
        id="enqueue-without-app",
    ),
    pytest.param(
        ["worker"],
        "worker needs --app (or CONVEYOR_APP) naming the tasks module",
        id="worker-without-app",
    ),
    pytest.param(
        ["enqueue"],
        "Missing argument 'TASK'.",
        id="missing-task",
    ),
    pytest.param(
        ["jobs", "show", "999"],
        "no job has id 999",
        id="missing-job",
    ),
    pytest.param(
        ["jobs", "show", "abc"],
        "Invalid value for 'JOB_ID': 'abc' is not a valid integer.",
        id="job-id-not-a-number",
    ),
    pytest.param(
        ["jobs", "list", "--app", "no_such_module"],
        "cannot import app module 'no_such_module': No module named 'no_such_module'",
        id="app-not-importable",
    ),
    pytest.param(
        ["jobs", "list", "--app", "cli_tasks:add"],
        "'cli_tasks:add' is not a Conveyor instance; name the attribute that "
        "holds your app, as module:attribute",
        id="app-attribute-not-an-app",
    ),
]


@pytest.mark.parametrize(("args", "message"), USAGE_MISTAKES)
def test_usage_mistake_exits_2_with_one_line_naming_it(
    tmp_path: Path, url: str, args: list[str], message: str
) -> None:
    done = conveyor(*args, "--database-url", url, cwd=tmp_path)

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"conveyor: error: {message}\n"


@pytest.mark.parametrize(
    ("database_url", "message"),
    [
        pytest.param(
            "mysql://db/jobs",
            "database URL 'mysql://db/jobs' has an unknown scheme 'mysql'; use "
            "sqlite:///path/to/file.db or postgresql://user@host/dbname",
            id="unknown-scheme",
        ),
        pytest.param(
            "sqlite:///:memory:",
            "database URL 'sqlite:///:memory:' names no file; Conveyor shares the "
            "database between threads and processes, so use a file such as "
            "sqlite:///conveyor.db",
            id="in-memory-sqlite",
        ),
    ],
)
def test_database_url_conveyor_cannot_use_is_a_usage_mistake(
    tmp_path: Path, database_url: str, message: str
) -> None:
    done = conveyor("jobs", "list", "--database-url", database_url, cwd=tmp_path)

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"conveyor: error: {message}\n"


def test_database_in_a_missing_directory_fails_at_run_time_with_1(
    tmp_path: Path,
) -> None:
    path = tmp_path / "missing" / "c.db"

    done = conveyor("migrate", "--database-url", f"sqlite:///{path}", cwd=tmp_path)

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"conveyor: failed: cannot open SQLite database '{path}': unable to open "
        "database file\n"
    )


def test_database_never_migrated_fails_at_run_time_with_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"

    done = conveyor("jobs", "list", "--database-url", url, cwd=tmp_path)

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "conveyor: failed: SQLite read failed: no such table: jobs\n"

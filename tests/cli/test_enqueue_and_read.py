"""``conveyor enqueue`` writes exactly the job asked for; ``jobs list`` and
``jobs show`` read it back, as JSON or as text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.records import NewJob
from conveyor.store import open_store
from tests.cli import conveyor

NO_ERROR = {"error_type": None, "error_message": None, "traceback": None}


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A migrated database file in the test's directory."""
    url = f"sqlite:///{tmp_path}/c.db"
    app = Conveyor(url)
    app.migrate()
    app.close()

    return url


def run_json(*args: str, cwd: Path) -> Any:
    done = conveyor(*args, "--json", cwd=cwd)
    assert (done.returncode, done.stderr) == (0, "")

    return json.loads(done.stdout)


def test_enqueue_with_every_option_writes_exactly_that_job(
    tmp_path: Path, url: str
) -> None:
    before = datetime.now(UTC)
    job = run_json(
        "enqueue", "cli.add", "--args", "[1,2]", "--kwargs", "{}", "--queue", "q",
        "--priority", "5", "--delay", "60", "--app", "cli_tasks",
        "--database-url", url, cwd=tmp_path,
    )  # fmt: skip
    after = datetime.now(UTC)

    created = datetime.fromisoformat(job["created_at"])
    assert before <= created <= after
    assert job == {
        "id": 1,
        "task": "cli.add",
        "queue": "q",
        "priority": 5,
        "state": "queued",
        "args": [1, 2],
        "kwargs": {},
        "attempts": 0,
        "max_attempts": 3,
        "timeout": None,
        "run_at": (created + timedelta(seconds=60)).isoformat(),
        "created_at": created.isoformat(),
        "updated_at": created.isoformat(),
        "finished_at": None,
        "worker_id": None,
        "lease_expires_at": None,
        "result": None,
        **NO_ERROR,
    }
    listed = run_json("jobs", "list", "--database-url", url, cwd=tmp_path)
    assert listed == [job]
    shown = run_json("jobs", "show", "1", "--database-url", url, cwd=tmp_path)
    assert shown == {
        **job,
        "attempt_history": [],
        "events": [
            {
                "id": 1,
                "job_id": 1,
                "at": created.isoformat(),
                "from_state": None,
                "to_state": "queued",
                "reason": "enqueued",
                "actor": "cli",
            }
        ],
    }


def test_enqueue_without_options_uses_the_tasks_own(tmp_path: Path, url: str) -> None:
    job = run_json(
        "enqueue", "cli.greet", "--kwargs", '{"name": "Ada"}', "--app", "cli_tasks",
        "--database-url", url, cwd=tmp_path,
    )  # fmt: skip

    assert (job["queue"], job["priority"], job["args"], job["kwargs"]) == (
        "greetings",
        0,
        [],
        {"name": "Ada"},
    )
    assert job["run_at"] == job["created_at"]


def test_enqueue_says_which_job_it_wrote(tmp_path: Path, url: str) -> None:
    done = conveyor(
        "enqueue", "cli.add", "--args", "[2, 3]", "--app", "cli_tasks",
        "--database-url", url, cwd=tmp_path,
    )  # fmt: skip

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "Enqueued job 1 (cli.add) on queue default.\n"


@pytest.fixture
def mixed(tmp_path: Path, url: str) -> str:
    """Six jobs: 1 add/q, 2 greet/q, 3 add/q, 4 add/other (running), 5 add/q,
    6 add/other."""
    store = open_store(url)
    now = datetime.now(UTC)
    store.enqueue(
        [
            NewJob("cli.add", queue="q"),
            NewJob("cli.greet", queue="q"),
            NewJob("cli.add", queue="q"),
            NewJob("cli.add", queue="other"),
            NewJob("cli.add", queue="q"),
            NewJob("cli.add", queue="other"),
        ],
        now,
    )
    [claimed] = store.claim("test-worker", ["other"], 1, 60.0, now)
    assert claimed.id == 4
    store.close()

    return url


@pytest.mark.parametrize(
    ("filters", "ids"),
    [
        pytest.param([], [6, 5, 4, 3, 2, 1], id="all-newest-first"),
        pytest.param(
            ["--state", "queued", "--queue", "q", "--task", "cli.add"],
            [5, 3, 1],
            id="state-queue-task",
        ),
        pytest.param(
            ["--state", "queued", "--queue", "q", "--task", "cli.add", "--limit", "2"],
            [5, 3],
            id="with-limit",
        ),
        pytest.param(["--state", "running"], [4], id="running"),
        pytest.param(["--queue", "other"], [6, 4], id="queue"),
        pytest.param(["--task", "cli.greet"], [2], id="task"),
        pytest.param(["--state", "failed"], [], id="none-match"),
    ],
)
def test_jobs_list_filters_by_state_queue_task_and_limit(
    tmp_path: Path, mixed: str, filters: list[str], ids: list[int]
) -> None:
    listed = run_json("jobs", "list", *filters, "--database-url", mixed, cwd=tmp_path)

    assert [job["id"] for job in listed] == ids


def test_jobs_list_as_text_shows_one_row_per_job(tmp_path: Path, mixed: str) -> None:
    done = conveyor(
        "jobs", "list", "--queue", "other", "--database-url", mixed, cwd=tmp_path
    )

    assert (done.returncode, done.stderr) == (0, "")
    header, *rows = done.stdout.splitlines()
    assert header.split() == [
        "ID",
        "STATE",
        "TASK",
        "QUEUE",
        "PRI",
        "ATTEMPTS",
        "RUN",
        "AT",
    ]
    assert [row.split()[:6] for row in rows] == [
        ["6", "queued", "cli.add", "other", "0", "0/3"],
        ["4", "running", "cli.add", "other", "0", "1/3"],
    ]


def test_jobs_list_as_text_says_when_nothing_matches(tmp_path: Path, url: str) -> None:
    done = conveyor("jobs", "list", "--database-url", url, cwd=tmp_path)

    assert (done.returncode, done.stdout, done.stderr) == (0, "No rows.\n", "")


def test_jobs_show_of_a_claimed_job_lists_its_attempt(
    tmp_path: Path, mixed: str
) -> None:
    shown = run_json("jobs", "show", "4", "--database-url", mixed, cwd=tmp_path)

    assert (shown["state"], shown["worker_id"], shown["attempts"]) == (
        "running",
        "test-worker",
        1,
    )
    [attempt] = shown["attempt_history"]
    assert (attempt["attempt"], attempt["worker_id"], attempt["outcome"]) == (
        1,
        "test-worker",
        None,
    )
    assert [(e["from_state"], e["to_state"], e["reason"]) for e in shown["events"]] == [
        (None, "queued", "enqueued"),
        ("queued", "running", "claimed"),
    ]

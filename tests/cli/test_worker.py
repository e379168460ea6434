"""``conveyor worker``: started as a user starts it, it runs jobs enqueued
before and after it started, logs one JSON object per line, records itself in
the registry, and exits 0 on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import conveyor as package
from conveyor import JobState
from tests.cli import CONVEYOR, cli_env, conveyor, read_jobs, wait_for

#: Seconds a worker gets to start, run the jobs, or stop, before the test fails.
WORKER_DEADLINE = 20.0


@dataclass(frozen=True)
class WorkerRun:
    """What one worker run left behind."""

    directory: Path
    url: str
    pid: int
    returncode: int
    log: list[dict[str, Any]]
    before: int  # the job enqueued before the worker started
    after: int  # the job enqueued while it ran
    failing: int  # a job whose task always fails


def enqueue(directory: Path, url: str, *args: str) -> int:
    done = conveyor(
        "enqueue", *args, "--app", "cli_tasks", "--database-url", url, "--json",
        cwd=directory,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")

    return int(json.loads(done.stdout)["id"])


def all_final(url: str, job_ids: list[int]) -> bool:
    return all(job.state.is_final for job in read_jobs(url, job_ids).values())


@pytest.fixture(scope="module")
def worker_run(tmp_path_factory: pytest.TempPathFactory) -> WorkerRun:
    """Run one worker for the whole module: start, three jobs, SIGTERM."""
    directory = tmp_path_factory.mktemp("worker")
    url = f"sqlite:///{directory}/c.db"
    assert conveyor("migrate", "--database-url", url, cwd=directory).returncode == 0
    before = enqueue(directory, url, "cli.add", "--args", "[2, 3]")
    log_path = directory / "worker.log"

    with log_path.open("w") as log_file:
        worker = subprocess.Popen(
            [
                CONVEYOR, "worker", "--app", "cli_tasks", "--database-url", url,
                "--log-format", "json", "--concurrency", "2", "--queues",
                "default,greetings",
            ],
            cwd=directory,
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )  # fmt: skip
        try:
            wait_for(lambda: all_final(url, [before]), WORKER_DEADLINE, "job 1")
            # The worker is surely running now: these arrive while it waits.
            after = enqueue(directory, url, "cli.greet", "--args", '["Ada"]')
            failing = enqueue(directory, url, "cli.fail")
            wait_for(
                lambda: all_final(url, [after, failing]),
                WORKER_DEADLINE,
                "the jobs enqueued while the worker ran",
            )
            worker.send_signal(signal.SIGTERM)
            returncode = worker.wait(WORKER_DEADLINE)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    log = [json.loads(line) for line in log_path.read_text().splitlines()]
    return WorkerRun(
        directory, url, worker.pid, returncode, log, before, after, failing
    )


def test_worker_exits_0_on_sigterm(worker_run: WorkerRun) -> None:
    assert worker_run.returncode == 0


def test_worker_runs_jobs_enqueued_before_and_while_it_runs(
    worker_run: WorkerRun,
) -> None:
    jobs = read_jobs(
        worker_run.url, [worker_run.before, worker_run.after, worker_run.failing]
    )

    before, after, failing = jobs.values()
    assert (before.state, before.result_json) == (JobState.SUCCEEDED, "5")
    assert (after.state, after.result_json) == (JobState.SUCCEEDED, '"Hello, Ada!"')
    assert (failing.state, failing.attempts, failing.error_type) == (
        JobState.FAILED,
        1,
        "ValueError",
    )


def test_json_log_is_one_object_per_line_with_job_fields_on_job_lines(
    worker_run: WorkerRun,
) -> None:
    job_lines = {line["job_id"]: line for line in worker_run.log if "job_id" in line}

    assert sorted(job_lines) == sorted(
        [worker_run.before, worker_run.after, worker_run.failing]
    )
    succeeded = job_lines[worker_run.before]
    assert {key: succeeded[key] for key in ("level", "logger", "task", "queue")} == {
        "level": "INFO",
        "logger": "conveyor.worker._completer",
        "task": "cli.add",
        "queue": "default",
    }
    assert (succeeded["attempt"], succeeded["outcome"]) == (1, "succeeded")
    assert succeeded["message"].startswith(
        f"Job {worker_run.before} (cli.add) attempt 1 succeeded in "
    )
    assert isinstance(succeeded["duration"], float) and succeeded["duration"] >= 0
    failed = job_lines[worker_run.failing]
    assert (failed["level"], failed["task"], failed["attempt"]) == (
        "ERROR",
        "cli.fail",
        1,
    )
    assert failed["outcome"] == "failed"
    assert failed["message"].startswith(
        f"Job {worker_run.failing} (cli.fail) failed for good on attempt 1: "
        "ValueError: cli.fail always fails\nTraceback (most recent call last):\n"
    )


def start_line(run: WorkerRun) -> dict[str, Any]:
    # Found by its text, not its place: the start line is written after the
    # loops start, so a job finished at once may be logged before it.
    [line] = [line for line in run.log if " started: pid " in line["message"]]
    return line


def test_json_log_has_one_start_line_with_version_pid_queues_and_pool(
    worker_run: WorkerRun,
) -> None:
    line = start_line(worker_run)
    worker_id = line["worker_id"]

    assert (line["level"], line["logger"]) == ("INFO", "conveyor.worker._worker")
    assert line["message"].startswith(
        f"Conveyor {package.__version__} worker {worker_id} started: pid "
        f"{worker_run.pid}, queues default,greetings, concurrency 2, pool thread, "
        "database "
    )


def test_json_log_ends_with_the_shutdown_lines(worker_run: WorkerRun) -> None:
    worker_id = start_line(worker_run)["worker_id"]

    assert [line["message"] for line in worker_run.log[-3:]] == [
        "Received SIGTERM: shutting down gracefully (again to exit now)",
        "Stopping: waiting up to 30.0 s for 0 running jobs",
        f"Worker {worker_id} stopped",
    ]


def test_workers_list_shows_the_stopped_worker(worker_run: WorkerRun) -> None:
    done = conveyor(
        "workers", "list", "--json", "--database-url", worker_run.url,
        cwd=worker_run.directory,
    )  # fmt: skip

    assert (done.returncode, done.stderr) == (0, "")
    [found] = json.loads(done.stdout)
    assert set(found) == {
        "id",
        "host",
        "pid",
        "queues",
        "concurrency",
        "pool",
        "started_at",
        "heartbeat_at",
        "state",
        "running_jobs",
    }
    assert found["id"] == start_line(worker_run)["worker_id"]
    assert (found["pid"], found["queues"], found["concurrency"]) == (
        worker_run.pid,
        ["default", "greetings"],
        2,
    )
    assert (found["pool"], found["state"], found["running_jobs"]) == (
        "thread",
        "stopped",
        0,
    )
    assert found["started_at"] <= found["heartbeat_at"]

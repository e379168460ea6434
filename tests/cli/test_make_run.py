"""``make run``, piece by piece: ``python -m examples.demo`` enqueues the demo
jobs in the working directory's ``conveyor.db``, and ``conveyor run --app
examples.tasks`` runs them."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from conveyor import JobState
from tests.cli import COMMAND_TIMEOUT, CONVEYOR, cli_env, read_jobs, wait_for

#: The demo's jobs in the order it enqueues them.
DEMO_TASKS = [
    "examples.tasks.add",
    "examples.tasks.add",
    "examples.tasks.send_email",
    "examples.tasks.flaky_fetch",
    "examples.tasks.parse_report",
    "examples.tasks.slow_export",
    "examples.tasks.add",
]

#: Seconds ``conveyor run`` gets to finish the quick demo jobs, or to stop.
RUN_DEADLINE = 20.0


def run_demo(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examples.demo"],
        cwd=directory,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def test_demo_enqueues_seven_jobs_in_the_working_directory(tmp_path: Path) -> None:
    done = run_demo(tmp_path)

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "Enqueued demo jobs 1, 2, 3, 4, 5, 6, 7 (job 7 runs in 5 s) in "
        "sqlite:///conveyor.db\n"
    )
    jobs = read_jobs(f"sqlite:///{tmp_path}/conveyor.db", list(range(1, 8)))
    assert [job.task for job in jobs.values()] == DEMO_TASKS
    assert {job.state for job in jobs.values()} == {JobState.QUEUED}
    delayed = jobs[7]
    assert delayed.run_at - delayed.created_at == timedelta(seconds=5)


def test_run_migrates_and_runs_the_demo_jobs_then_exits_0_on_sigterm(
    tmp_path: Path,
) -> None:
    assert run_demo(tmp_path).returncode == 0
    url = f"sqlite:///{tmp_path}/conveyor.db"
    quick = [1, 2, 3, 5]

    with (tmp_path / "run.log").open("w") as log_file:
        runner = subprocess.Popen(
            [CONVEYOR, "run", "--app", "examples.tasks", "--grace", "0"],
            cwd=tmp_path,
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        try:
            wait_for(
                lambda: all(
                    job.state.is_final for job in read_jobs(url, quick).values()
                ),
                RUN_DEADLINE,
                "the quick demo jobs to end",
            )
            runner.send_signal(signal.SIGTERM)
            returncode = runner.wait(RUN_DEADLINE)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()

    assert returncode == 0
    jobs = read_jobs(url, quick)
    assert {job_id: (job.state, job.result_json) for job_id, job in jobs.items()} == {
        1: (JobState.SUCCEEDED, "5"),
        2: (JobState.SUCCEEDED, "42"),
        3: (
            JobState.SUCCEEDED,
            '{"to":"ada@example.com","subject":"Welcome","status":"sent"}',
        ),
        5: (JobState.FAILED, None),
    }
    assert (jobs[5].error_type, jobs[5].attempts) == ("ValueError", 1)

"""Tasks the worker tests run, importable by worker processes and their children.

A subprocess worker loads this module with ``--app tests.worker.tasks_for_tests``;
the app reads its database from ``CONVEYOR_DATABASE_URL`` like any app. Every
task writes to a ledger kept outside the queue's tables, the file named by
``CONVEYOR_TEST_LEDGER``: a line ``start <job_id> <pid>`` when its function
begins and ``end <job_id> <pid>`` when it returns. Each line is one
``os.write`` on a file opened with ``O_APPEND``, so lines written at once by
many processes never interleave. Without the variable nothing is written.

The ledger is what the tests compare with the store: it says which process
really ran a job, and how many times, whatever the store recorded.
"""

from __future__ import annotations

import os
import sys
import time

from conveyor import Conveyor, Fixed, current_job

app = Conveyor()

#: How long a task meant to outlive its test sleeps, in seconds. Longer than
#: any test waits, so a job that finishes early shows a bug.
FOREVER = 30.0


def write_ledger(word: str) -> None:
    """Append ``<word> <job_id> <pid>`` to the ledger, in one write."""
    path = os.environ.get("CONVEYOR_TEST_LEDGER")
    if not path:
        return

    line = f"{word} {current_job().id} {os.getpid()}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@app.task
def touch(pause: float = 0.0) -> int:
    """Record its run, pausing ``pause`` seconds in between; return the job id."""
    write_ledger("start")
    time.sleep(pause)
    write_ledger("end")

    return current_job().id


@app.task(max_attempts=3, backoff=Fixed(0))
def sleep_on_first_attempt(seconds: float = FOREVER) -> int:
    """Sleep ``seconds`` on the first attempt only; return the attempt number.

    A shutdown that puts the job back does not count its attempt, so the
    next run is attempt 1 again; a rescue does count it.
    """
    write_ledger("start")
    attempt = current_job().attempt
    if attempt == 1:
        time.sleep(seconds)
    write_ledger("end")

    return attempt


@app.task(timeout=1.0, max_attempts=2, backoff=Fixed(0))
def hang_on_first_attempt() -> int:
    """Outlive its 1 s timeout on the first attempt; return the attempt number."""
    write_ledger("start")
    attempt = current_job().attempt
    if attempt == 1:
        time.sleep(FOREVER)
    write_ledger("end")

    return attempt


@app.task(timeout=0.3, max_attempts=2, backoff=Fixed(0))
def outlive_timeout(seconds: float = 1.5) -> str:
    """Always sleep past its 0.3 s timeout (the thread pool cannot kill it)."""
    write_ledger("start")
    time.sleep(seconds)
    write_ledger("end")

    return "too late"


@app.task(max_attempts=3, backoff=Fixed(1.5))
def fail_first_attempt() -> int:
    """Raise on the first attempt, succeed on the next; return the attempt."""
    write_ledger("start")
    attempt = current_job().attempt
    if attempt == 1:
        raise ConnectionError("the first attempt always fails")
    write_ledger("end")

    return attempt


@app.task
def echo(value: int) -> int:
    """Return ``value``."""
    write_ledger("start")
    write_ledger("end")

    return value


@app.task(max_attempts=3)
def exit_the_thread(code: int = 3) -> None:
    """Call ``sys.exit``, which raises SystemExit, not an Exception."""
    sys.exit(code)


@app.task(max_attempts=3, backoff=lambda attempt, rng: float("nan"))
def fail_with_a_broken_back_off() -> None:
    """Fail, with a back-off policy that answers NaN."""
    raise ConnectionError("the first attempt fails")

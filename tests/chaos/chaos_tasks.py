"""The task the fault tests run, importable by ``conveyor worker`` processes.

A worker process loads this module with ``--app tests.chaos.chaos_tasks``;
the app reads its database from ``CONVEYOR_DATABASE_URL`` like any app.

The task keeps a ledger outside the queue's tables, in the file named by
``CONVEYOR_TEST_LEDGER``: ``start <job_id> <attempt> <pid>`` when the
function begins and ``end <job_id> <attempt> <pid>`` when it returns. Each
line is one ``os.write`` on a file opened with ``O_APPEND``, so lines
written at once by many processes never interleave. Without the variable
nothing is written.

The ledger is the witness the tests hold the store to: it says which
process really ran which attempt, whatever the store recorded.
"""

from __future__ import annotations

import os
import time

from conveyor import Conveyor, current_job

app = Conveyor()

#: Attempts a job gets. A job whose worker is killed under it loses an
#: attempt each time; the tests kill often, and a job that runs out of
#: attempts would be failed, which is not what they are about.
MAX_ATTEMPTS = 25


def write_ledger(word: str) -> None:
    """Append ``<word> <job_id> <attempt> <pid>`` to the ledger, in one write."""
    path = os.environ.get("CONVEYOR_TEST_LEDGER")
    if not path:
        return

    job = current_job()
    line = f"{word} {job.id} {job.attempt} {os.getpid()}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@app.task(max_attempts=MAX_ATTEMPTS)
def record(pause: float = 0.0) -> None:
    """Write ``start``, sleep ``pause`` seconds if asked, then write ``end``."""
    write_ledger("start")
    if pause:
        time.sleep(pause)
    write_ledger("end")

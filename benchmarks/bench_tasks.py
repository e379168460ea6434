"""The tasks the benchmarks enqueue, and the app their workers load.

Workers start as ``conveyor worker --app benchmarks.bench_tasks``; the app
reads its database from ``CONVEYOR_DATABASE_URL``, which the benchmark sets
for each run. The bench process itself points the same app at each
database with ``app.use_database``.
"""

from __future__ import annotations

import time

from conveyor import Conveyor

app = Conveyor()

#: How long ``sleep10ms`` sleeps, in seconds.
SLEEP = 0.010


@app.task
def noop() -> None:
    """Do nothing: what is left to time is Conveyor itself."""


@app.task
def sleep10ms() -> None:
    """Sleep 10 ms, as an I/O-bound job would wait on the network."""
    time.sleep(SLEEP)


@app.task
def stamp() -> float:
    """Return the wall-clock time at which the job started (epoch seconds)."""
    return time.time()

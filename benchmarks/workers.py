"""Worker processes for the benchmarks: started with the real CLI, always ended.

``Workers`` starts ``conveyor worker --app benchmarks.bench_tasks`` one or
more times, as a user would, and ends every process it started when its
``with`` block exits, however it exits: SIGTERM first, SIGKILL for any that
has not exited after ``STOP_WAIT``. An ``atexit`` hook does the same for a
run interrupted before the blocks could unwind.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

#: The repository root: workers import ``benchmarks.bench_tasks`` from here.
ROOT = Path(__file__).resolve().parent.parent

#: The CLI installed beside the interpreter running the benchmarks.
CONVEYOR = Path(sys.executable).parent / "conveyor"

#: The app module every benchmark worker loads.
APP = "benchmarks.bench_tasks"

#: Seconds a worker gets to exit after SIGTERM before it is killed.
STOP_WAIT = 15.0

#: Seconds between two looks at the store while waiting for jobs to finish.
POLL_INTERVAL = 0.02

_live: set[subprocess.Popen[bytes]] = set()


class WorkerDied(RuntimeError):
    """A benchmark worker exited while it still had work to do."""


class Workers:
    """``processes`` worker processes of ``concurrency`` threads each.

    Each claims up to ``prefetch`` jobs beyond its threads (``--prefetch``).

    >>> with Workers(url, processes=1, concurrency=10) as workers:
    ...     workers.wait(lambda: done() >= 1000, timeout=60)
    """

    def __init__(
        self, url: str, *, processes: int, concurrency: int, prefetch: int = 0
    ) -> None:
        self.url = url
        self.processes = processes
        self.concurrency = concurrency
        self.prefetch = prefetch
        self._procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[Path] = []

    def __enter__(self) -> Workers:
        env = {**os.environ, "CONVEYOR_DATABASE_URL": self.url}
        command = [
            str(CONVEYOR),
            "worker",
            "--app",
            APP,
            "--concurrency",
            str(self.concurrency),
            "--prefetch",
            str(self.prefetch),
            "--pool",
            "thread",
            "--log-level",
            "WARNING",
        ]
        for _ in range(self.processes):
            log = Path(tempfile.mkstemp(prefix="conveyor-bench-worker-")[1])
            self._logs.append(log)
            with log.open("wb") as stderr:
                proc = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            self._procs.append(proc)
            _live.add(proc)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for proc in self._procs:
            _stop(proc)
        for log in self._logs:
            log.unlink(missing_ok=True)

    @property
    def pids(self) -> list[int]:
        """The process ids of the workers."""
        return [proc.pid for proc in self._procs]

    def wait(
        self,
        done: Callable[[], bool],
        timeout: float,
        interval: float = POLL_INTERVAL,
    ) -> None:
        """Poll ``done`` until it holds; raise if a worker dies or time runs out."""
        deadline = time.monotonic() + timeout
        while not done():
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the workers did not finish within {timeout} s")
            time.sleep(interval)

    def _check_alive(self) -> None:
        for proc, log in zip(self._procs, self._logs, strict=True):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise WorkerDied(
                    f"worker {proc.pid} exited with status {proc.returncode}:\n{tail}"
                )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End one worker: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _live.discard(proc)


@atexit.register
def _stop_all() -> None:
    for proc in list(_live):
        _stop(proc)

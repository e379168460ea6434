"""Slots: where a claimed job's function actually runs.

A worker has ``concurrency`` slots, each a thread that takes the next
claimed job from a shared hand-off queue. In the thread pool the slot thread
calls the function itself. In the process pool it hands the job to a child
process of its own and waits, so a job over its timeout can be killed: the
child is ended with SIGKILL and replaced, and the slot serves on.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from .. import _runner
from ..records import ClaimedJob, ErrorInfo
from . import _child
from ._inflight import InFlight, Running

if TYPE_CHECKING:
    from ..app import Conveyor

logger = logging.getLogger(__name__)

Report = Callable[[Running, _runner.CallResult], None]

#: How long a stopping slot waits for its child to exit before killing it, s.
CHILD_EXIT_WAIT = 2.0


class Pool:
    """``concurrency`` slot threads fed from one hand-off queue."""

    def __init__(
        self,
        app: Conveyor,
        inflight: InFlight,
        report: Report,
        *,
        processes: bool,
        app_spec: str | None,
    ) -> None:
        self._app = app
        self._inflight = inflight
        self._report = report
        self._handoff: queue.SimpleQueue[Running | None] = queue.SimpleQueue()
        self._slots = [
            _ProcessSlot(app_spec) if processes else None
            for _ in range(inflight.capacity)
        ]
        self._threads = [
            threading.Thread(
                target=self._serve, args=(slot,), name=f"conveyor-slot-{i}", daemon=True
            )
            for i, slot in enumerate(self._slots)
        ]

    def start(self) -> None:
        for slot in self._slots:
            if slot is not None:
                slot.spawn()
        for thread in self._threads:
            thread.start()

    def submit(self, entry: Running) -> None:
        self._handoff.put(entry)

    def stop(self) -> None:
        """Let each slot thread end after its current job; end the children."""
        for _ in self._threads:
            self._handoff.put(None)
        for slot in self._slots:
            if slot is not None:
                slot.stop()

    def kill_children(self) -> None:
        """SIGKILL every child process now, without waiting: for an exit at once.

        A child left running after its worker exits would run on a job that
        another worker rescues and runs again.
        """
        for slot in self._slots:
            if slot is not None:
                slot.kill_at_once()

    def _serve(self, slot: _ProcessSlot | None) -> None:
        while (entry := self._handoff.get()) is not None:
            if slot is None:
                result = _runner.run_call(self._app, entry.job)
            else:
                result = slot.run(entry)

            if self._inflight.end(entry):
                self._report(entry, result)


class _ProcessSlot:
    """One child process, replaced whenever it is killed or dies."""

    def __init__(self, app_spec: str | None) -> None:
        if app_spec is None:
            raise ValueError("the process pool needs the app's import path")
        self._app_spec = app_spec
        self._context = multiprocessing.get_context("forkserver")
        self._process: Any = None
        self._conn: Connection | None = None
        self._stopped = False

    def spawn(self) -> None:
        if self._stopped:
            return
        parent, child = self._context.Pipe()
        self._process = self._context.Process(
            target=_child.main, args=(self._app_spec, child), daemon=True
        )
        self._process.start()
        child.close()
        self._conn = parent

    def run(self, entry: Running) -> _runner.CallResult:
        job = entry.job
        if self._conn is None:
            return self._replace_after_death(job, None)
        try:
            self._conn.send(job)
            if self._conn.poll(job.timeout):
                result: _runner.CallResult = self._conn.recv()
                return result
        except (EOFError, OSError, BrokenPipeError) as error:
            return self._replace_after_death(job, error)

        logger.warning(
            "Job %s ran past its timeout of %s s; killing its process",
            job.id,
            job.timeout,
            extra={"job_id": job.id, "task": job.task, "attempt": job.attempt},
        )
        self.kill()
        self.spawn()
        return _runner.timed_out(job)

    def _replace_after_death(
        self, job: ClaimedJob, error: BaseException | None
    ) -> _runner.CallResult:
        code = self._process.exitcode if self._process is not None else None
        logger.warning("The process running job %s died (exit code %s)", job.id, code)
        self.kill()
        self.spawn()
        return _runner.CallResult(
            error=ErrorInfo(
                "WorkerProcessDied",
                f"the child process running the job died with exit code {code}",
            ),
            retryable=True,
        )

    def stop(self) -> None:
        self._stopped = True
        self.kill()

    def kill_at_once(self) -> None:
        process = self._process
        if process is not None:
            process.kill()

    def kill(self) -> None:
        if self._process is None:
            return
        if self._process.is_alive():
            self._process.kill()
        self._process.join(CHILD_EXIT_WAIT)
        if self._conn is not None:
            self._conn.close()
        self._process = None
        self._conn = None

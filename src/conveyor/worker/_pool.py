"""Slots: where a claimed job's function actually runs.

A worker has ``concurrency`` slots, each a thread that takes the next
claimed job from a shared hand-off queue. In the thread pool the slot thread
calls the function itself. In the process pool it hands the job to a child
process of its own and waits, so a job over its timeout can be killed: the
child is ended with SIGKILL and replaced, and the slot serves on.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import queue
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from .. import _runner
from ..errors import ConfigurationError
from ..records import ClaimedJob, ErrorInfo
from . import _child
from ._inflight import InFlight, Running

if TYPE_CHECKING:
    from ..app import Conveyor
    from ._completer import Finished

logger = logging.getLogger(__name__)

Prepare = Callable[[Running, _runner.CallResult], "Finished"]
Submit = Callable[["Finished"], None]

#: How long a stopping slot waits for its child to exit before killing it, s.
CHILD_EXIT_WAIT = 2.0


class Pool:
    """``concurrency`` slot threads fed from one hand-off queue."""

    def __init__(
        self,
        app: Conveyor,
        inflight: InFlight,
        prepare: Prepare,
        submit: Submit,
        *,
        processes: bool,
        app_spec: str | None,
        slots: int,
    ) -> None:
        self._app = app
        self._inflight = inflight
        self._prepare = prepare
        self._submit = submit
        self._handoff: queue.SimpleQueue[Running | None] = queue.SimpleQueue()
        self._slots = [
            _ProcessSlot(app_spec) if processes else None for _ in range(slots)
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

    def take_waiting(self) -> list[Running]:
        """Remove and return the claimed jobs no slot has started yet."""
        waiting: list[Running] = []
        while True:
            try:
                entry = self._handoff.get_nowait()
            except queue.Empty:
                return waiting
            if entry is None:
                self._handoff.put(None)
                return waiting
            waiting.append(entry)

    def _serve(self, slot: _ProcessSlot | None) -> None:
        while (entry := self._handoff.get()) is not None:
            if entry.abandoned:
                self._inflight.end(entry)
                continue
            entry.start()
            finished = self._prepare(entry, self._call(slot, entry))

            self._inflight.end(entry, then=functools.partial(self._submit, finished))

    def _call(self, slot: _ProcessSlot | None, entry: Running) -> _runner.CallResult:
        try:
            if slot is None:
                return _runner.run_call(self._app, entry.job)
            return slot.run(entry)
        except Exception as error:
            # A fault of Conveyor's own, not of the task: the attempt fails
            # with it, and the slot serves on.
            logger.exception("The slot running job %s failed", entry.job.id)
            return _runner.CallResult(error=_runner.error_info(error))


class _ProcessSlot:
    """One child process, replaced whenever it is killed or dies."""

    def __init__(self, app_spec: str | None) -> None:
        if app_spec is None:
            raise ConfigurationError(
                "app_spec=None: the process pool needs the import path of the "
                "app (module or module:attribute), which its children import"
            )
        self._app_spec = app_spec
        self._context = multiprocessing.get_context("forkserver")
        self._process: Any = None
        self._conn: Connection | None = None
        self._stopped = False
        # The slot's thread replaces a dead or timed-out child while the
        # stopping thread may be killing it: one kills, the other finds none.
        self._lock = threading.Lock()
        # Only this process holds the lifeline's write end, and never writes:
        # however the worker dies, its children read end-of-file and exit.
        self._lifeline, self._lifeline_held = self._context.Pipe(duplex=False)

    def spawn(self) -> None:
        with self._lock:
            if self._stopped:
                return
            parent, child = self._context.Pipe()
            self._process = self._context.Process(
                target=_child.main,
                args=(self._app_spec, child, self._lifeline),
                daemon=True,
            )
            self._process.start()
            child.close()
            self._conn = parent

    def run(self, entry: Running) -> _runner.CallResult:
        job = entry.job
        conn = self._conn
        if conn is None:
            return self._replace_after_death(job, None)
        try:
            conn.send(job)
            if conn.poll(job.timeout):
                result: _runner.CallResult = conn.recv()
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
        process = self._process
        code = process.exitcode if process is not None else None
        if not self._stopped:  # at shutdown, the stopping thread killed it
            logger.warning(
                "The process running job %s died (exit code %s)", job.id, code
            )
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
        with self._lock:
            self._stopped = True
        self.kill()
        self._lifeline.close()
        self._lifeline_held.close()

    def kill(self) -> None:
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
        if process is None:
            return

        if process.is_alive():
            process.kill()
        process.join(CHILD_EXIT_WAIT)
        if conn is not None:
            conn.close()

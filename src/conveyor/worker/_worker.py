"""The worker: claims jobs, runs them in a pool, and looks after them.

A worker is one process with a few threads, each a loop of its own module:
the claimer, the completer, the heartbeat, the rescuer and (thread pool
only) the watchdog, plus one thread per slot. ``Worker.run`` starts them,
waits for SIGTERM or SIGINT, and shuts down gracefully; a second signal
exits at once.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING

from .._version import __version__
from ..records import WorkerInfo
from . import _claimer, _heartbeat, _pruner, _rescuer, _watchdog
from ._completer import Completer, Finished
from ._faults import FaultBackoff
from ._inflight import InFlight, Running
from ._pool import Pool
from ._settings import WorkerSettings

if TYPE_CHECKING:
    from ..app import Conveyor

logger = logging.getLogger(__name__)

#: Seconds between two looks for a stop request while the worker runs.
SIGNAL_POLL = 0.1

#: Seconds the completer gets to write the last outcomes at shutdown.
FINAL_WRITE_WAIT = 10.0


class Worker:
    """Runs an app's jobs until stopped.

    >>> settings = WorkerSettings(queues=("mail",), concurrency=4)
    >>> Worker(app, settings).run()  # doctest: +SKIP

    ``app_spec`` (``module`` or ``module:attribute``) is needed by the
    process pool, whose children import the app themselves.
    """

    def __init__(
        self,
        app: Conveyor,
        settings: WorkerSettings | None = None,
        *,
        app_spec: str | None = None,
    ) -> None:
        self.app = app
        self.store = app.store
        self.settings = settings or WorkerSettings()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.inflight = InFlight(self.settings.concurrency, self.settings.prefetch)
        self.backoff = FaultBackoff()
        self.completer = Completer(self)
        self.pool = Pool(
            app,
            self.inflight,
            self.completer.prepare,
            self.completer.submit,
            processes=self.settings.pool == "process",
            app_spec=app_spec,
            slots=self.settings.concurrency,
        )
        self.stopping = threading.Event()  # no more claims
        self.stopped = threading.Event()  # everything has ended
        self.abandon_writes = threading.Event()  # give up unwritten outcomes
        self._finished = 0
        self._finished_changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._completer_thread: threading.Thread | None = None
        self._claimer_thread: threading.Thread | None = None
        self._stop_requested = threading.Event()
        self._signals: list[str] = []  # appended by the signal handler

    # -- lifecycle --------------------------------------------------------

    def start(self) -> None:
        """Register the worker and start every loop; returns at once."""
        now = self.app.clock()
        self.store.register_worker(self._info(now))
        self._log_start()
        self.pool.start()
        self._completer_thread = self._spawn("completer", self.completer.run)
        self._claimer_thread = self._spawn(
            "claimer", functools.partial(_claimer.run, self)
        )
        loops: list[tuple[str, Callable[[Worker], None]]] = [
            ("heartbeat", _heartbeat.run),
            ("rescuer", _rescuer.run),
            ("pruner", _pruner.run),
        ]
        if self.settings.pool == "thread":
            loops.append(("watchdog", _watchdog.run))
        for name, loop in loops:
            self._threads.append(self._spawn(name, functools.partial(loop, self)))

    def run(self) -> None:
        """Start, run until SIGTERM or SIGINT, then shut down gracefully."""
        self._install_signal_handlers()
        self.start()

        # The signal handler only appends to ``_signals``: it may interrupt
        # this thread while it holds any lock, so it takes none.
        while not self._signals and not self._stop_requested.is_set():
            time.sleep(SIGNAL_POLL)
        if self._signals:
            logger.info(
                "Received %s: shutting down gracefully (again to exit now)",
                self._signals[0],
            )

        self.stop()

    def request_stop(self) -> None:
        """Ask ``run`` to shut down (safe from any thread)."""
        self._stop_requested.set()

    def stop(self, grace: float | None = None) -> None:
        """Stop claiming, give running jobs ``grace`` seconds, put back the rest."""
        grace = self.settings.grace if grace is None else grace
        logger.info(
            "Stopping: waiting up to %s s for %d running jobs",
            grace,
            len(self.inflight),
        )
        self.stopping.set()
        self.store.wake()
        # The claimer may be handing over a batch it just claimed; once it
        # has returned, nothing more reaches the hand-off queue.
        if self._claimer_thread is not None:
            # A claim in flight may take a while (a busy database); what it
            # brings back is put back by the claimer itself.
            self._claimer_thread.join(self.settings.lease)
        waiting = self.pool.take_waiting()
        self.put_back(waiting, "was claimed ahead and not started", taken=True)

        if not self.inflight.wait_until_idle(grace):
            self._interrupt_running()

        self.pool.stop()
        self.completer.close()
        if self._completer_thread is not None:
            self._completer_thread.join(FINAL_WRITE_WAIT)
        self.abandon_writes.set()
        self._record_stop()
        self.stopped.set()
        for thread in self._threads:
            thread.join(FINAL_WRITE_WAIT)
        logger.info("Worker %s stopped", self.id)

    def _interrupt_running(self) -> None:
        """Put back what still runs after the grace period.

        In the process pool the children are killed first, so that no job
        is queued again while its old run still goes on.
        """
        running = self.inflight.snapshot()
        if self.settings.pool == "process":
            held = [entry for entry in running if self.inflight.abandon(entry)]
            self.pool.stop()
            for entry in held:
                self._log_put_back(entry, "did not finish within the grace period")
                self.completer.submit(self.completer.interrupted(entry))
            return
        self.put_back(running, "did not finish within the grace period")

    def put_back(
        self, entries: list[Running], why: str, *, taken: bool = False
    ) -> None:
        """Report ``entries`` as interrupted: queued again, not counted.

        ``taken`` entries never reached a slot (the claimer or ``stop`` holds
        them), so no slot will free their place: it is freed here.
        """
        for entry in entries:
            back = functools.partial(
                self.completer.submit, self.completer.interrupted(entry)
            )
            if self.inflight.abandon(entry, then=back):
                self._log_put_back(entry, why)
            if taken:
                self.inflight.end(entry)

    def _log_put_back(self, entry: Running, why: str) -> None:
        job = entry.job
        logger.warning(
            "Job %s %s; putting it back",
            job.id,
            why,
            extra={"job_id": job.id, "task": job.task, "attempt": job.attempt},
        )

    def _record_stop(self) -> None:
        try:
            self.store.stop_worker(self.id, self.app.clock())
        except Exception as error:  # the database may be gone at shutdown
            logger.warning("Could not record the worker's stop: %s", error)

    # -- signals ----------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self._signals:
            # Not through logging: its locks may be held by the thread this
            # handler interrupted.
            os.write(2, f"Second {name}: exiting now; jobs will be rescued\n".encode())
            os._exit(1)
        self._signals.append(name)

    # -- signals for tests and callers ------------------------------------

    def count_finished(self, items: Sequence[Finished], accepted: set[int]) -> None:
        """Called by the completer after each write."""
        with self._finished_changed:
            self._finished += sum(
                1 for item in items if item.outcome.job_id in accepted
            )
            self._finished_changed.notify_all()

    @property
    def finished(self) -> int:
        """How many outcomes this worker has written so far."""
        return self._finished

    def wait_finished(self, count: int, timeout: float) -> bool:
        """Block until ``count`` outcomes are written or ``timeout`` passes."""
        with self._finished_changed:
            return self._finished_changed.wait_for(
                lambda: self._finished >= count, timeout
            )

    # -- helpers ----------------------------------------------------------

    def _spawn(self, name: str, target: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=target, name=f"conveyor-{name}", daemon=True)
        thread.start()
        return thread

    def _info(self, now: datetime) -> WorkerInfo:
        return WorkerInfo(
            id=self.id,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self.settings.queues or (),
            concurrency=self.settings.concurrency,
            pool=self.settings.pool,
            started_at=now,
            heartbeat_at=now,
            state="running",
        )

    def _log_start(self) -> None:
        settings = self.settings
        logger.info(
            "Conveyor %s worker %s started: pid %s, queues %s, concurrency %s, "
            "pool %s, database %s",
            __version__,
            self.id,
            os.getpid(),
            ",".join(settings.queues) if settings.queues else "all",
            settings.concurrency,
            settings.pool,
            _redacted(self.store.url),
            extra={"worker_id": self.id},
        )


def _redacted(url: str) -> str:
    """A database URL without its password."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"

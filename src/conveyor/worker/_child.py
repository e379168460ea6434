"""The loop of a process-pool child: receive a job, run it, send back the result.

A child never touches the store. It imports the application module itself,
so it works the same under ``fork``, ``forkserver`` and ``spawn``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from multiprocessing.connection import Connection

from .. import _runner
from ..loading import load_app


def main(app_spec: str, conn: Connection, lifeline: Connection) -> None:
    """Serve jobs from ``conn`` until the parent closes it or dies."""
    # The parent decides when a child stops; a Ctrl-C reaching the whole
    # process group must not kill jobs in the middle.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _exit_with_parent(lifeline)
    app = load_app(app_spec)

    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(_runner.run_call(app, job))


def _exit_with_parent(lifeline: Connection) -> None:
    """End this process as soon as the worker dies, even in the middle of a job.

    A worker killed outright (SIGKILL, the OOM killer) cannot stop its
    children, and one left running would carry on with a job that another
    worker rescues and runs again. Nothing is ever written on ``lifeline``;
    it reaches end-of-file when the last process holding its write end, the
    worker, is gone. (A child made by ``fork`` would hold that end too; the
    pool starts its children from a forkserver, which does not.)
    """

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv_bytes()
        os._exit(1)

    threading.Thread(target=watch, name="conveyor-lifeline", daemon=True).start()

"""The loop of a process-pool child: receive a job, run it, send back the result.

A child never touches the store. It imports the application module itself,
so it works the same under ``fork``, ``forkserver`` and ``spawn``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from multiprocessing.connection import Connection

from .. import _runner
from ..loading import load_app

#: How often a child looks whether its parent still lives, in seconds.
ORPHAN_CHECK_INTERVAL = 0.2


def main(app_spec: str, conn: Connection) -> None:
    """Serve jobs from ``conn`` until the parent closes it."""
    # The parent decides when a child stops; a Ctrl-C reaching the whole
    # process group must not kill jobs in the middle.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _exit_when_orphaned(os.getppid())
    app = load_app(app_spec)

    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(_runner.run_call(app, job))


def _exit_when_orphaned(parent: int) -> None:
    """End this process soon after its parent dies, even mid-job.

    A worker killed outright (SIGKILL, the OOM killer) cannot stop its
    children; one left running would carry on with a job that another
    worker rescues and runs again. The parent is the worker itself, or the
    forkserver, which exits as soon as the worker does.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_INTERVAL)
        os._exit(1)

    threading.Thread(target=watch, name="conveyor-orphan-watch", daemon=True).start()

"""The loop of a process-pool child: receive a job, run it, send back the result.

A child never touches the store. It imports the application module itself,
so it works the same under ``fork``, ``forkserver`` and ``spawn``.
"""

from __future__ import annotations

import signal
from multiprocessing.connection import Connection

from .. import _runner
from ..loading import load_app


def main(app_spec: str, conn: Connection) -> None:
    """Serve jobs from ``conn`` until the parent closes it."""
    # The parent decides when a child stops; a Ctrl-C reaching the whole
    # process group must not kill jobs in the middle.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    app = load_app(app_spec)

    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(_runner.run_call(app, job))

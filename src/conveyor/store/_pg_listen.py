"""Wake-up hints for the PostgreSQL store: LISTEN on one dedicated connection.

``enqueue`` and ``rescue`` notify the channel in their own transaction, so
PostgreSQL delivers the hint only once the jobs are committed. A
``Listener`` keeps one autocommit connection, outside the pool, listening
on that channel from a daemon thread, and counts the hints it receives.
Each thread that calls ``wait`` returns as soon as the count moves past
what that thread last saw, so:

- no hint is lost between two waits (it is counted even if nobody waits);
- every waiting thread is woken, not just one;
- ``wake`` from any thread is as prompt as a notification.

When the connection breaks, one warning is logged and the thread reconnects
with back-off. Connecting counts as a hint: jobs may have been committed
while nobody listened, so waiting callers claim at once.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from typing import Any

import psycopg
from psycopg import pq, sql

logger = logging.getLogger(__name__)

#: Seconds before the first reconnection attempt after one failed; doubled
#: after each further failure, up to ``RECONNECT_DELAY_MAX`` seconds, so a
#: restarting server is not hammered.
RECONNECT_DELAY_FIRST = 0.5
RECONNECT_DELAY_MAX = 30.0

#: Seconds ``close`` waits for the listening thread to finish.
CLOSE_WAIT = 5.0

#: TCP keepalives (seconds, count), so a server that vanished without
#: closing the connection is noticed in about a minute, not hours.
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class Listener:
    """Counts the hints on ``channel``; ``wait`` blocks until one comes.

    The thread and its connection start on the first ``wait``, so a store
    that never waits (a CLI command, the web layer) never opens them.
    """

    def __init__(self, conninfo: str, channel: str, **connect_kwargs: Any) -> None:
        self._conninfo = conninfo
        self._listen_sql = sql.SQL("LISTEN {}").format(sql.Identifier(channel))
        self._connect_kwargs = {**KEEPALIVES, **connect_kwargs}
        self._cond = threading.Condition()
        self._hints = 0
        self._seen = threading.local()
        self._closed = False
        self._broken = False
        self._thread: threading.Thread | None = None
        self._stop_r, self._stop_w = socket.socketpair()

    def wait(self, timeout: float) -> bool:
        """Block until a hint newer than this thread last saw, or ``timeout``."""
        self._start()
        seen = getattr(self._seen, "hints", 0)

        with self._cond:
            self._cond.wait_for(lambda: self._hints != seen or self._closed, timeout)
            self._seen.hints = self._hints
            return self._hints != seen and not self._closed

    def wake(self) -> None:
        """Count a hint, waking every thread in ``wait``."""
        with self._cond:
            self._hints += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the thread and close the connection; safe to call twice."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            thread = self._thread

        self._stop_w.send(b"\0")
        if thread is not None:
            thread.join(CLOSE_WAIT)

        self._stop_r.close()
        self._stop_w.close()

    # -- the listening thread --------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(
                target=self._run, name="conveyor-listen", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        delay = RECONNECT_DELAY_FIRST

        while not self._closed:
            conn = self._connect()
            if conn is None:
                self._pause(delay)
                delay = min(delay * 2, RECONNECT_DELAY_MAX)
                continue

            delay = RECONNECT_DELAY_FIRST
            try:
                self._listen(conn)
            finally:
                conn.close()

    def _connect(self) -> psycopg.Connection[Any] | None:
        try:
            conn = psycopg.Connection.connect(
                self._conninfo, autocommit=True, **self._connect_kwargs
            )
        except psycopg.Error as exc:
            self._report_broken(exc)
            return None

        try:
            conn.execute(self._listen_sql, prepare=False)
        except psycopg.Error as exc:
            conn.close()
            self._report_broken(exc)
            return None

        if self._broken:
            logger.info("Listening for new jobs again.")
        self._broken = False
        self.wake()
        return conn

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        while not self._closed:
            try:
                notified = self._read(conn.pgconn)
            except (psycopg.OperationalError, OSError) as exc:
                self._report_broken(exc)
                return

            if notified:
                self.wake()

    def _read(self, pgconn: pq.abc.PGconn) -> bool:
        """Block until the server or ``close`` speaks; True if jobs were announced."""
        sock = pgconn.socket
        readable, _, _ = select.select([sock, self._stop_r.fileno()], [], [])
        if sock not in readable:
            return False

        pgconn.consume_input()
        notified = False
        while pgconn.notifies() is not None:
            notified = True

        if pgconn.status != pq.ConnStatus.OK:
            raise psycopg.OperationalError("the server closed the listen connection")
        return notified

    def _pause(self, delay: float) -> None:
        if not self._closed:
            select.select([self._stop_r], [], [], delay)

    def _report_broken(self, exc: Exception) -> None:
        if self._broken or self._closed:
            logger.debug("Still cannot listen for new jobs: %s", exc)
            return

        self._broken = True
        logger.warning(
            "Lost the connection that listens for new jobs; reconnecting: %s",
            exc,
        )

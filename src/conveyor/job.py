"""``Job``: a handle on one stored job, to read its state and wait for its result."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._json import decode
from .errors import JobCancelled, JobFailed, JobNotFound, ResultTimeout
from .records import JobRecord
from .states import JobState

if TYPE_CHECKING:
    from .store import Store

#: How often ``Job.result`` reads the job again while it waits, in seconds.
RESULT_POLL_INTERVAL = 0.05


class Job:
    """A job in the store, as last read.

    >>> job = add.enqueue(1, 2)  # doctest: +SKIP
    >>> job.result(timeout=10)  # doctest: +SKIP
    3
    """

    def __init__(
        self, store: Store, job_id: int, record: JobRecord | None = None
    ) -> None:
        self._store = store
        self.id = job_id
        self._record = record

    def __repr__(self) -> str:
        state = self._record.state.value if self._record else "unread"
        return f"<Job {self.id} {state}>"

    @property
    def record(self) -> JobRecord:
        """The whole stored row as last read (read now if never read)."""
        if self._record is None:
            self.refresh()
        assert self._record is not None
        return self._record

    @property
    def state(self) -> JobState:
        """The state as last read; call ``refresh()`` to read it again."""
        return self.record.state

    @property
    def attempts(self) -> int:
        """How many attempts have counted so far, as last read."""
        return self.record.attempts

    def refresh(self) -> Job:
        """Read the job again from the store; return self."""
        record = self._store.get_job(self.id)
        if record is None:
            raise JobNotFound(f"job {self.id} does not exist (it may have been pruned)")
        self._record = record
        return self

    def result(self, timeout: float | None = None) -> Any:
        """Wait for a final state; return the result or raise the job's error.

        Raises ``JobFailed`` (with the stored error type, message and
        traceback), ``JobCancelled``, or ``ResultTimeout`` after ``timeout``
        seconds (``None`` waits for ever).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.refresh().state.is_final:
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(
                    f"job {self.id} is still {self.state.value} after {timeout} s"
                )
            time.sleep(RESULT_POLL_INTERVAL)

        return self._final_value()

    def _final_value(self) -> Any:
        record = self.record
        if record.state is JobState.SUCCEEDED:
            return decode(record.result_json)

        error = JobCancelled if record.state is JobState.CANCELLED else JobFailed
        raise error(self.id, record.error_type, record.error_message, record.traceback)

"""Conveyor's exceptions: one base, a shallow tree.

::

    ConveyorError
    ├── ConfigurationError      bad settings: a database URL, a task option
    ├── SerializationError      an argument or result that is not JSON
    ├── UnknownTaskError        a task name no registered task answers to
    ├── StoreError              the database refused or lost a write
    │   └── MigrationError      the schema could not be brought up to date
    ├── JobNotFound             no job has that id
    ├── JobFailed               ``Job.result()`` on a job that failed
    │   └── JobCancelled        ``Job.result()`` on a job that was cancelled
    └── ResultTimeout           ``Job.result()`` waited longer than its timeout

Every message names what was wrong and what is allowed.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """The base of every exception Conveyor raises."""


class ConfigurationError(ConveyorError, ValueError):
    """A setting or an option has a value Conveyor cannot use."""


class SerializationError(ConveyorError, TypeError):
    """A value that must be stored as JSON is not JSON."""


class UnknownTaskError(ConveyorError, LookupError):
    """No task is registered under the given name."""


class StoreError(ConveyorError):
    """The store could not carry out an operation; nothing was half-written."""


class MigrationError(StoreError):
    """The schema could not be created or upgraded."""


class JobNotFound(ConveyorError, LookupError):
    """No job has the given id."""


class JobFailed(ConveyorError):
    """A job ended in ``failed``; carries the stored error of its last attempt."""

    def __init__(
        self,
        job_id: int,
        error_type: str | None,
        message: str | None,
        traceback: str | None,
    ) -> None:
        self.job_id = job_id
        self.error_type = error_type
        self.error_message = message
        self.traceback = traceback
        super().__init__(f"job {job_id} failed: {error_type}: {message}")


class JobCancelled(JobFailed):
    """A job ended in ``cancelled`` before it produced a result."""


class ResultTimeout(ConveyorError, TimeoutError):
    """``Job.result()`` gave up waiting before the job reached a final state."""

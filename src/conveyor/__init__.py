"""Conveyor: a durable task queue and scheduler for Python.

Users import from here alone::

    from conveyor import Conveyor

    app = Conveyor()

    @app.task(max_attempts=5)
    def send_email(to: str) -> None: ...

    send_email.enqueue("ada@example.com")
"""

from ._version import __version__
from .app import Conveyor, DrainReport
from .backoff import Exponential, Fixed
from .context import JobContext, Snooze, current_job
from .errors import (
    ConfigurationError,
    ConveyorError,
    JobCancelled,
    JobFailed,
    JobNotFound,
    ResultTimeout,
    SerializationError,
    StoreError,
    UnknownTaskError,
)
from .job import Job
from .states import JobState
from .task import Task

__all__ = [
    "ConfigurationError",
    "Conveyor",
    "ConveyorError",
    "DrainReport",
    "Exponential",
    "Fixed",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobFailed",
    "JobNotFound",
    "JobState",
    "ResultTimeout",
    "SerializationError",
    "Snooze",
    "StoreError",
    "Task",
    "UnknownTaskError",
    "__version__",
    "current_job",
]

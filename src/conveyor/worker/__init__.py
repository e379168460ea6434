"""The worker: claims jobs from the store and runs them. See ``_worker``."""

from ._settings import POOLS, WorkerSettings
from ._worker import Worker

__all__ = ["POOLS", "Worker", "WorkerSettings"]

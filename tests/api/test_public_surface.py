"""The package root is the whole public surface, and it is exactly this."""

from __future__ import annotations

import importlib.metadata
import types

import conveyor

EXPECTED_ALL = {
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
}


def test_all_lists_exactly_the_expected_names_once() -> None:
    assert sorted(conveyor.__all__) == sorted(EXPECTED_ALL)
    assert len(conveyor.__all__) == len(set(conveyor.__all__))


def test_star_import_brings_every_name_in_all() -> None:
    namespace: dict[str, object] = {}

    exec("from conveyor import *", namespace)

    assert set(namespace) - {"__builtins__"} == EXPECTED_ALL


def test_no_public_name_is_bound_at_the_root_without_being_in_all() -> None:
    bound = {
        name
        for name, value in vars(conveyor).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }

    assert bound == EXPECTED_ALL - {"__version__"}


def test_every_exception_in_all_derives_from_conveyor_error() -> None:
    exceptions = {
        name
        for name in conveyor.__all__
        if isinstance(getattr(conveyor, name), type)
        and issubclass(getattr(conveyor, name), BaseException)
    }

    assert exceptions == {
        "ConfigurationError",
        "ConveyorError",
        "JobCancelled",
        "JobFailed",
        "JobNotFound",
        "ResultTimeout",
        "SerializationError",
        "Snooze",
        "StoreError",
        "UnknownTaskError",
    }
    # Snooze is a request from a task, not an error of Conveyor's.
    assert [
        name
        for name in sorted(exceptions)
        if not issubclass(getattr(conveyor, name), conveyor.ConveyorError)
    ] == ["Snooze"]


def test_version_is_the_installed_distribution_version() -> None:
    assert conveyor.__version__ == importlib.metadata.version("conveyor")

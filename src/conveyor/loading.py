"""Finding the application a command or a child process should use.

``--app`` names a module (``examples.tasks``) or a module and an attribute
(``examples.tasks:app``). Without an attribute, the module's single
``Conveyor`` instance is used.
"""

from __future__ import annotations

import importlib
import os
import sys

from .app import Conveyor
from .errors import ConfigurationError


def load_app(spec: str) -> Conveyor:
    """Import ``spec`` and return its ``Conveyor``.

    >>> app = load_app("examples.tasks")  # doctest: +SKIP
    """
    module_name, _, attribute = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())

    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigurationError(f"cannot import app module {module_name!r}: {error}")

    if attribute:
        found = getattr(module, attribute, None)
        if not isinstance(found, Conveyor):
            raise ConfigurationError(
                f"{spec!r} is not a Conveyor instance; name the attribute that "
                "holds your app, as module:attribute"
            )
        return found

    apps = [value for value in vars(module).values() if isinstance(value, Conveyor)]
    if len(apps) != 1:
        raise ConfigurationError(
            f"module {module_name!r} holds {len(apps)} Conveyor instances; "
            "name one as module:attribute"
        )
    return apps[0]

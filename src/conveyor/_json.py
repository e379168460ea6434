"""JSON encoding of arguments and results, with errors that point at the value.

Conveyor stores only JSON, never pickle: what a job carries can be read by
any process, any language and any person, and loading it runs no code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import SerializationError

_SCALARS = (str, int, float, bool, type(None))


def _find_bad(value: Any, path: str) -> tuple[str, Any] | None:
    if isinstance(value, _SCALARS):
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find_bad(item, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} key {key!r}", key
            found = _find_bad(item, f"{path}[{key!r}]")
            if found:
                return found
        return None
    return path, value


def encode_call(
    task: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[str, str]:
    """Encode a call's arguments, or raise naming the argument that is not JSON.

    >>> encode_call("add", (1, 2), {})
    ('[1, 2]', '{}')
    """
    try:
        return _dumps(list(args)), _dumps(dict(kwargs))
    except (TypeError, ValueError):
        pass

    for index, value in enumerate(args):
        _refuse_if_bad(task, value, f"argument {index}")
    for name, value in kwargs.items():
        _refuse_if_bad(task, value, f"argument {name!r}")
    raise SerializationError(f"arguments of task {task!r} are not JSON")


def _refuse_if_bad(task: str, value: Any, where: str) -> None:
    found = _find_bad(value, where)
    if found is None:
        return
    path, bad = found
    raise SerializationError(
        f"{path} of task {task!r} is a {type(bad).__name__} ({bad!r:.60}), "
        "which is not JSON; pass str, int, float, bool, None, or lists and "
        "dicts (with str keys) of those"
    )


def encode_result(task: str, value: Any) -> str:
    """Encode a task's return value, or raise naming its type."""
    try:
        return _dumps(value)
    except (TypeError, ValueError):
        pass

    _refuse_if_bad(task, value, "the result")
    raise SerializationError(f"the result of task {task!r} is not JSON")


def _dumps(value: Any) -> str:
    # allow_nan=False: NaN and Infinity are not JSON and other readers
    # of the store would choke on them.
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def decode(text: str | None) -> Any:
    """Decode stored JSON; ``None`` stays ``None``."""
    return None if text is None else json.loads(text)

"""JSON encoding of arguments and results, with errors that point at the value.

Conveyor stores only JSON, never pickle: what a job carries can be read by
any process, any language and any person, and loading it runs no code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import SerializationError

_SCALARS = (str, int, float, bool, type(None))


def _find_bad(value: Any) -> tuple[str, Any] | None:
    """Return the first value json.dumps would refuse or alter, with its path.

    The path is only built on the way back up from a bad value, so a good
    value costs one walk and no string formatting.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "", value
    if isinstance(value, _SCALARS):
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find_bad(item)
            if found:
                return f"[{index}]{found[0]}", found[1]
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f" key {key!r}", key
            found = _find_bad(item)
            if found:
                return f"[{key!r}]{found[0]}", found[1]
        return None
    return "", value


def encode_call(
    task: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[str, str]:
    """Encode a call's arguments, or raise naming the argument that is not JSON.

    >>> encode_call("add", (1, 2), {})
    ('[1, 2]', '{}')
    """
    if not args and not kwargs:
        return "[]", "{}"
    try:
        encoded = _dumps(list(args)), _dumps(dict(kwargs))
    except (TypeError, ValueError):
        encoded = None

    # Checked even when dumps succeeded: it turns int keys into strings, so
    # the task would be called with other arguments than were passed.
    for index, value in enumerate(args):
        _refuse_if_bad(task, value, f"argument {index}")
    for name, value in kwargs.items():
        _refuse_if_bad(task, value, f"argument {name!r}")
    if encoded is None:
        raise SerializationError(f"arguments of task {task!r} are not JSON")
    return encoded


def _refuse_if_bad(task: str, value: Any, where: str) -> None:
    try:
        found = _find_bad(value)
    except RecursionError:
        raise SerializationError(
            f"{where} of task {task!r} contains itself, which is not JSON"
        )
    if found is None:
        return
    path, bad = found
    allowed = (
        "pass a finite number"
        if isinstance(bad, float)
        else "pass str, int, float, bool, None, or lists and dicts (with str "
        "keys) of those"
    )
    raise SerializationError(
        f"{where}{path} of task {task!r} is a {type(bad).__name__} ({bad!r:.60}), "
        f"which is not JSON; {allowed}"
    )


def encode_result(task: str, value: Any) -> str:
    """Encode a task's return value, or raise naming its type."""
    if value is None:
        return "null"
    try:
        encoded = _dumps(value)
    except (TypeError, ValueError):
        encoded = None

    _refuse_if_bad(task, value, "the result")
    if encoded is None:
        raise SerializationError(f"the result of task {task!r} is not JSON")
    return encoded


def _dumps(value: Any) -> str:
    # allow_nan=False: NaN and Infinity are not JSON and other readers
    # of the store would choke on them.
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def decode(text: str | None) -> Any:
    """Decode stored JSON; ``None`` stays ``None``."""
    if text is None or text == "null":
        return None
    # The usual arguments of a call with none, decoded without the parser.
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return json.loads(text)

"""Back-off policies: how long a failed job waits before its next attempt.

A policy is any callable taking the number of the attempt that just failed
(1 for the first) and a random source, and returning seconds. Conveyor ships
two; a plain ``lambda attempt, rng: 10 * attempt`` works too.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .errors import ConfigurationError

#: The longest wait a retry or a snooze may ask for, in seconds (a year):
#: longer waits are almost always a unit mistake, and past some point the
#: run time would not fit in a datetime.
MAX_DELAY = 365 * 24 * 3600.0


class Backoff(Protocol):
    """Anything that says how many seconds to wait after a failed attempt."""

    def __call__(self, attempt: int, rng: random.Random, /) -> float: ...


@dataclass(frozen=True, slots=True)
class Exponential:
    """``base * factor ** (attempt - 1)`` seconds, capped at ``cap``, with jitter.

    ``jitter`` is the fraction by which the delay may be shortened at random,
    so that jobs that failed together do not all come back together.

    >>> Exponential(base=2, factor=2, cap=60, jitter=0)(3, random.Random())
    8.0
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 600.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        _require(lambda v: v >= 0, "base", self.base, "a number of seconds >= 0")
        _require(lambda v: v >= 1, "factor", self.factor, "a number >= 1")
        _require(lambda v: v >= 0, "cap", self.cap, "a number of seconds >= 0")
        _require(lambda v: 0 <= v <= 1, "jitter", self.jitter, "a fraction from 0 to 1")

    def __call__(self, attempt: int, rng: random.Random, /) -> float:
        exponent = min(max(attempt - 1, 0), 64)
        delay = min(self.base * self.factor**exponent, self.cap)

        return delay * (1 - self.jitter * rng.random())


@dataclass(frozen=True, slots=True)
class Fixed:
    """The same number of seconds after every failed attempt.

    >>> Fixed(5)(1, random.Random())
    5.0
    """

    seconds: float

    def __post_init__(self) -> None:
        _require(lambda v: v >= 0, "seconds", self.seconds, "a number >= 0")

    def __call__(self, attempt: int, rng: random.Random, /) -> float:
        return float(self.seconds)


def _require(
    ok: Callable[[float], bool], name: str, value: float, allowed: str
) -> None:
    # A value that is no number is refused by name too, rather than left to
    # fail in the comparison with a bare TypeError.
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (is_number and ok(value)):
        raise ConfigurationError(
            f"back-off {name}={value!r} is not allowed; use {allowed}"
        )

"""Stores: where jobs live. ``open_store`` picks one from a database URL.

- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: the
  embedded default, a file shared by the processes of one machine.
- ``postgresql://user@host:port/dbname``: the production engine, shared by
  any number of machines. ``?schema=NAME`` keeps Conveyor's tables in that
  schema (created by ``migrate``).
"""

from __future__ import annotations

from ..errors import ConfigurationError
from .base import Store

DEFAULT_URL = "sqlite:///conveyor.db"

__all__ = ["DEFAULT_URL", "Store", "open_store"]


def open_store(url: str) -> Store:
    """Open the store a database URL names.

    >>> store = open_store("sqlite:///conveyor.db")
    """
    scheme = url.split(":", 1)[0].lower()

    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        return SQLiteStore(url)

    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresStore

        return PostgresStore(url)

    raise ConfigurationError(
        f"database URL {url!r} has an unknown scheme {scheme!r}; "
        "use sqlite:///path/to/file.db or postgresql://user@host/dbname"
    )

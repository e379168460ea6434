"""Finding the versioned schema files shipped with Conveyor.

Each dialect keeps its migrations in ``sql/<dialect>/NNNN_name.sql``; the
number is the schema version the file brings the database to.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from ..errors import MigrationError


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: its version and the SQL that applies it."""

    version: int
    name: str
    sql: str


def migrations_for(dialect: str) -> list[Migration]:
    """Return a dialect's migrations, lowest version first."""
    folder = resources.files("conveyor.store").joinpath("sql", dialect)
    found = []

    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        found.append(Migration(int(number), rest[:-4], entry.read_text("utf-8")))

    if not found:
        raise MigrationError(
            f"no {dialect} migrations were found in the installed package; "
            "reinstall Conveyor (its store/sql files are missing)"
        )
    return sorted(found, key=lambda migration: migration.version)

"""``conveyor migrate``: creates the schema once; a second run applies nothing."""

from __future__ import annotations

from pathlib import Path

from conveyor.store import open_store
from conveyor.store._migrations import migrations_for
from tests.cli import cli_env, conveyor

VERSIONS = [migration.version for migration in migrations_for("sqlite")]
LATEST = VERSIONS[-1]


def test_migrate_twice_applies_every_version_then_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"

    first = conveyor("migrate", "--database-url", url, cwd=tmp_path)
    second = conveyor("migrate", "--database-url", url, cwd=tmp_path)

    applied = ", ".join(map(str, VERSIONS))
    assert (first.returncode, first.stderr) == (0, "")
    assert (
        first.stdout == f"Applied migrations {applied}; schema at version {LATEST}.\n"
    )
    assert (second.returncode, second.stderr) == (0, "")
    assert second.stdout == f"Schema already at version {LATEST}; nothing to apply.\n"
    store = open_store(url)
    assert store.schema_version() == LATEST
    store.close()


def test_migrate_reads_the_url_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/from-env.db"

    done = conveyor("migrate", cwd=tmp_path, env=cli_env(CONVEYOR_DATABASE_URL=url))

    assert done.returncode == 0
    assert sorted(path.name for path in tmp_path.glob("*.db")) == ["from-env.db"]


def test_migrate_without_a_url_uses_conveyor_db_in_the_working_directory(
    tmp_path: Path,
) -> None:
    done = conveyor("migrate", cwd=tmp_path)

    assert done.returncode == 0
    assert sorted(path.name for path in tmp_path.glob("*.db")) == ["conveyor.db"]

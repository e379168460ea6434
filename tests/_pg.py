"""PostgreSQL helpers for the tests: the server's URL, and one schema per test.

Every PostgreSQL test runs in a schema of its own, named
``conveyor_t_<hex>``, so tests never see each other's rows and can run in
any order. The store finds the schema in its URL (``?schema=NAME``); the
helpers here talk to the server with psycopg directly, which does not know
that parameter, so it is kept out of the URLs they connect with.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

#: The server the tests use unless ``CONVEYOR_TEST_DATABASE_URL`` names another.
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"

#: Seconds to wait for the server before calling it unreachable.
CONNECT_TIMEOUT = 3

#: How long dropping a schema may wait for a lock a leaked connection holds,
#: so a store that fails to close its connections fails the test, not the run.
DROP_LOCK_TIMEOUT = "10s"


def base_url() -> str:
    """Return the server's URL, without any ``schema`` parameter."""
    url = os.environ.get("CONVEYOR_TEST_DATABASE_URL") or DEFAULT_URL

    return _with_query(url, schema=None)


def shown_url(url: str) -> str:
    """Return ``url`` with its password hidden, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url

    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)

    return urlunsplit(parts._replace(netloc=netloc))


def reachability_error(url: str) -> str | None:
    """Return why the server at ``url`` cannot be used, or ``None`` if it can."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return " ".join(str(error).split()) or type(error).__name__

    return None


def new_schema_name() -> str:
    """Return a schema name no other test uses."""
    return f"conveyor_t_{uuid.uuid4().hex}"


def store_url(url: str, schema: str) -> str:
    """Return the URL a store opens to keep its tables in ``schema``."""
    return _with_query(url, schema=schema)


def drop_schema(url: str, schema: str) -> None:
    """Drop ``schema`` and everything in it, if it exists."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("SET lock_timeout = {}").format(sql.Literal(DROP_LOCK_TIMEOUT))
        )
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


def _with_query(url: str, *, schema: str | None) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"]
    if schema is not None:
        query.append(("schema", schema))

    return urlunsplit(parts._replace(query=urlencode(query)))

"""The SQL tools' test databases, SQLite and PostgreSQL, with the same rows and the same forbidden objects.

Each holds the sample data plus what no assistant may touch: a table ``internal_notes`` whose rows carry
``SECRET_MARKER`` (and, in PostgreSQL, a sequence). ``snapshot`` captures everything a write could change,
so a test can prove the database is unchanged. Import the fixtures into a test module to use them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    inspect,
    make_url,
    text,
)
from threadrunner.assistant_definitions import AssistantConfig, DatabaseAccess
from threadrunner.settings import ToolSettings
from threadrunner.tools.database import Database
from threadrunner.tools.postgres import PostgresDatabase
from threadrunner.tools.registry import ToolContext
from threadrunner.tools.sample_data import build_sample_database
from threadrunner.tools.sqlite_guard import SQLiteDatabase

from tests.support.postgres import shared_server

SECRET_MARKER = "TOP-SECRET-f00d"
ALLOWED_TABLES = ["sales", "customers", "products"]
ANALYST = AssistantConfig(
    name="data-analyst",
    instructions="Answer with SQL.",
    tools=["get_table_schema", "query_database"],
    database=DatabaseAccess(tables=ALLOWED_TABLES),
)

_FORBIDDEN = MetaData()
INTERNAL_NOTES = Table(
    "internal_notes",
    _FORBIDDEN,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("note", Text, nullable=False),
)


def add_forbidden_objects(connection: Connection) -> None:
    _FORBIDDEN.create_all(connection)
    connection.execute(
        INTERNAL_NOTES.insert(),
        [{"id": 1, "note": f"{SECRET_MARKER} payroll"}, {"id": 2, "note": f"{SECRET_MARKER} admin password"}],
    )
    if connection.dialect.name == "postgresql":
        connection.execute(text("CREATE SEQUENCE internal_counter"))


def snapshot(owner: Engine) -> dict[str, Any]:
    """Everything a write could change, as the owner sees it."""
    state: dict[str, Any] = {}
    with owner.connect() as connection:
        for table in sorted(inspect(connection).get_table_names()):
            rows = connection.execute(text(f'SELECT * FROM "{table}" ORDER BY 1')).fetchall()
            state[f"table {table}"] = hashlib.sha256(repr(rows).encode()).hexdigest()
        if owner.dialect.name == "postgresql":
            state["large objects"] = connection.scalar(text("SELECT count(*) FROM pg_largeobject_metadata"))
            state["sequence"] = tuple(
                connection.execute(text("SELECT last_value, is_called FROM internal_counter")).one()
            )
            state["roles"] = sorted(connection.scalars(text("SELECT rolname FROM pg_roles")))
            state["settings"] = sorted(
                connection.execute(
                    text("SELECT setdatabase, setrole, setconfig::text FROM pg_db_role_setting")
                ).all()
            )
    if owner.dialect.name == "sqlite":
        state["file"] = hashlib.sha256(Path(str(owner.url.database)).read_bytes()).hexdigest()
    return state


@dataclass
class Target:
    """One database under test: the tools' handle, the owner's engine, and the state it started in."""

    name: str
    database: Database
    owner: Engine
    secrets: list[str] = field(default_factory=list)  # strings no output may ever contain
    baseline: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.baseline = snapshot(self.owner)

    def context(self, **settings: Any) -> ToolContext:
        return ToolContext(assistant=ANALYST, settings=ToolSettings(**settings), database=self.database)

    def unchanged(self) -> bool:
        return snapshot(self.owner) == self.baseline


@pytest.fixture(scope="session")
def sqlite_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    path = build_sample_database(tmp_path_factory.mktemp("sqlite") / "sample.db")
    owner = create_engine(f"sqlite:///{path}")
    with owner.begin() as connection:
        add_forbidden_objects(connection)
    target = Target("sqlite", SQLiteDatabase(path), owner)
    yield target
    target.database.dispose()
    owner.dispose()


@pytest.fixture(scope="session")
def postgres_target() -> Iterator[Target]:
    server = shared_server(add_forbidden_objects)
    owner = create_engine(server.admin_url)
    target = Target(
        "postgres",
        PostgresDatabase(make_url(server.reader_url)),
        owner,
        secrets=[server.reader_password, "127.0.0.1"],
    )
    yield target
    target.database.dispose()
    owner.dispose()
    server.stop()


POSTGRES = pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.xdist_group("postgres")])


@pytest.fixture(params=["sqlite", POSTGRES])
def target(request: pytest.FixtureRequest) -> Target:
    """Each test that asks for it runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_target")  # type: ignore[no-any-return]

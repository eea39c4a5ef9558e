"""The database behind the SQL tools: an interface, and which database the settings point at.

``Database.run_query`` is the second line of defence: each implementation enforces read-only access on
its own, whatever SQL it is given (the policy in ``sql_policy`` runs first, but is not trusted alone).
Handles are created lazily and cached per process: a Lambda reuses them across invocations.
"""

from __future__ import annotations

import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from threadrunner.models.deferred_model import DeferredModel
from threadrunner.observability import trace_library
from threadrunner.settings import ToolSettings
from threadrunner.tools.errors import ToolError

if TYPE_CHECKING:  # SQLAlchemy loads on first use: model steps import the registry for tool specs only
    from sqlalchemy import Engine

_SECRET_CACHE_SECONDS = 300


class QueryRows(DeferredModel):
    """What a query returned, as the driver gave it (values are made JSON-safe by the tool)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    more: bool  # rows beyond ``max_rows`` existed and were not fetched


class DatabaseUnavailable(ToolError):
    """The database cannot be reached or opened; details go to the logs, never to the model."""

    def __init__(self) -> None:
        super().__init__("the database is unavailable right now; try again later")


class Database(ABC):
    dialect: ClassVar[str]  # sqlglot's name for the dialect
    schema: ClassVar[str]  # where the tools' tables live

    def __init__(self, engine: Engine) -> None:
        self.engine = engine  # for schema inspection through SQLAlchemy

    @abstractmethod
    def run_query(
        self, sql: str, *, allowed_tables: Collection[str], max_rows: int, timeout_seconds: float
    ) -> QueryRows:
        """Run one read-only statement; ``QueryRefused`` or ``ToolTimeout`` when the database says no."""

    def dispose(self) -> None:
        self.engine.dispose()


_OPEN: dict[str, Database] = {}
_LOCK = threading.Lock()


def configured_database(settings: ToolSettings) -> Database:
    """The database the settings name: ``database_url``, else the URL in ``database_secret_name``, else
    the bundled SQLite sample."""
    return open_database(database_url(settings))


def database_url(settings: ToolSettings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    if settings.database_secret_name:
        return _url_from_secret(settings.database_secret_name)
    return f"sqlite:///{sample_database_file(settings)}"


def open_database(url: str) -> Database:
    """One handle per database URL and process (SQLite ``sqlite:///path``, PostgreSQL ``postgresql://``)."""
    with _LOCK:
        if url not in _OPEN:
            _OPEN[url] = _create(url)
        return _OPEN[url]


def close_databases() -> None:
    """Dispose of every cached handle (tests and local mode switch databases)."""
    with _LOCK:
        for database in _OPEN.values():
            database.dispose()
        _OPEN.clear()


def _create(url: str) -> Database:
    trace_library("sqlalchemy_core")  # before SQLAlchemy makes its first engine
    from sqlalchemy import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        from threadrunner.tools.sqlite_guard import SQLiteDatabase

        return SQLiteDatabase(Path(parsed.database))
    if parsed.get_backend_name() == "postgresql":
        from threadrunner.tools.postgres import PostgresDatabase

        return PostgresDatabase(parsed)
    raise ValueError(f"unsupported database {parsed.get_backend_name()!r}: use a SQLite file or PostgreSQL")


def sample_database_file(settings: ToolSettings) -> Path:
    """The bundled sample (``sample_database_path``), else a copy built once into a cache directory."""
    if settings.sample_database_path is not None:
        return settings.sample_database_path
    from threadrunner.tools.sample_data import VERSION, build_sample_database

    for directory in (Path.home() / ".cache" / "threadrunner", Path(tempfile.gettempdir()) / "threadrunner"):
        path = directory / f"sample-v{VERSION}.db"
        if path.is_file():
            return path
        try:
            return build_sample_database(path)
        except OSError:
            continue  # not writable (a read-only home): try the next place
    raise DatabaseUnavailable()


def _url_from_secret(name: str) -> str:
    """The secret holds a SQLAlchemy URL, or the JSON of an RDS-managed secret (host, username, ...)."""
    import json

    from aws_lambda_powertools.utilities import parameters
    from sqlalchemy import URL

    trace_library("botocore")  # Powertools makes its own client: X-Ray traces it once botocore is patched
    value = parameters.get_secret(name, max_age=_SECRET_CACHE_SECONDS)
    text = (value.decode() if isinstance(value, bytes) else str(value)).strip()
    if not text.startswith("{"):
        return text
    fields = json.loads(text)
    return URL.create(
        "postgresql+psycopg",
        username=fields.get("username"),
        password=fields.get("password"),
        host=fields.get("host"),
        port=int(fields["port"]) if fields.get("port") else None,
        database=fields.get("dbname"),
    ).render_as_string(hide_password=False)

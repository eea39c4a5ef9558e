"""Which database the SQL tools use: a URL, a URL in Secrets Manager (moto), or the bundled sample."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from pydantic import SecretStr
from threadrunner.settings import ToolSettings
from threadrunner.tools.database import close_databases, configured_database, database_url
from threadrunner.tools.postgres import PostgresDatabase
from threadrunner.tools.sample_data import VERSION, build_sample_database
from threadrunner.tools.sqlite_guard import SQLiteDatabase


@pytest.fixture(autouse=True)
def fresh_handles() -> Iterator[None]:
    close_databases()
    yield
    close_databases()


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        parameters.clear_caches()
        parameters.base.DEFAULT_PROVIDERS.clear()  # a provider made before moto would hold a real client
        yield boto3.client("secretsmanager", region_name="us-east-1")
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()


def test_a_database_url_wins(tmp_path: Path) -> None:
    path = build_sample_database(tmp_path / "mine.db")
    database = configured_database(
        ToolSettings(database_url=SecretStr(f"sqlite:///{path}"), database_secret_name="ignored")
    )
    assert isinstance(database, SQLiteDatabase) and database.path == path
    assert (
        configured_database(ToolSettings(database_url=SecretStr(f"sqlite:///{path}"))) is database
    )  # one per process


def test_a_url_held_in_secrets_manager(secrets: Any, tmp_path: Path) -> None:
    path = build_sample_database(tmp_path / "secret.db")
    secrets.create_secret(Name="threadrunner/sql", SecretString=f"sqlite:///{path}")
    database = configured_database(ToolSettings(database_secret_name="threadrunner/sql"))
    assert isinstance(database, SQLiteDatabase) and database.path == path


def test_an_rds_style_secret_becomes_a_postgres_url(secrets: Any) -> None:
    fields = {
        "engine": "postgres",
        "host": "db.internal",
        "port": 5432,
        "username": "reader",
        "password": "p@ss/word",
    }
    secrets.create_secret(Name="rds", SecretString=json.dumps({**fields, "dbname": "analytics"}))
    settings = ToolSettings(database_secret_name="rds")
    assert database_url(settings) == "postgresql+psycopg://reader:p%40ss%2Fword@db.internal:5432/analytics"
    database = configured_database(settings)  # no connection is made until the first query
    assert isinstance(database, PostgresDatabase)
    assert (database.engine.url.host, database.engine.url.password) == ("db.internal", "p@ss/word")


def test_the_settings_never_show_the_url() -> None:
    settings = ToolSettings(database_url=SecretStr("postgresql://reader:hunter2@db/x"))
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_without_a_path_the_sample_is_built_once_into_a_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    database = configured_database(ToolSettings())
    expected = tmp_path / ".cache" / "threadrunner" / f"sample-v{VERSION}.db"
    assert isinstance(database, SQLiteDatabase) and database.path == expected
    built_at = expected.stat().st_mtime_ns
    close_databases()
    again = configured_database(ToolSettings())
    assert isinstance(again, SQLiteDatabase) and again.path == expected
    assert expected.stat().st_mtime_ns == built_at


def test_the_bundled_sample_path_is_used_as_is(tmp_path: Path) -> None:
    path = build_sample_database(tmp_path / "bundled.db")
    assert database_url(ToolSettings(sample_database_path=path)) == f"sqlite:///{path}"

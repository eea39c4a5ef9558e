"""get_table_schema: the columns, keys and references of one allow-listed table, via SQLAlchemy inspection."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from threadrunner.tools.context import ToolContext
from threadrunner.tools.database import DatabaseUnavailable
from threadrunner.tools.declaration import Capability, tool
from threadrunner.tools.errors import ToolError

if TYPE_CHECKING:
    from sqlalchemy.engine import Inspector

logger = logging.getLogger(__name__)

DESCRIPTION = (
    "Describe one database table: its columns (name, type, nullable), primary key and foreign keys. "
    "Call it before writing SQL against a table."
)


class GetTableSchemaArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    table: str = Field(min_length=1, max_length=128, description="The table name, e.g. sales.")


class ColumnSchema(BaseModel):
    name: str
    type: str
    nullable: bool


class ForeignKeySchema(BaseModel):
    columns: list[str]
    references_table: str
    references_columns: list[str]


class TableSchema(BaseModel):
    table: str
    columns: list[ColumnSchema]
    primary_key: list[str]
    foreign_keys: list[ForeignKeySchema]


@tool(description=DESCRIPTION, capabilities=[Capability.database], example={"table": "sales"})
def get_table_schema(arguments: GetTableSchemaArguments, context: ToolContext) -> TableSchema:
    from sqlalchemy import inspect  # on first call: model steps import this module for the tool spec only
    from sqlalchemy.exc import SQLAlchemyError

    name = arguments.table.strip().lower()
    allowed = context.allowed_tables
    # A table outside the allow-list answers exactly like a missing one: the model learns nothing from it.
    unknown = ToolError(
        f"unknown table {arguments.table!r}; the tables you can use are: {', '.join(allowed)}"
    )
    if name not in allowed:
        raise unknown
    database = context.get_database()
    try:
        described = _describe(inspect(database.engine), name, database.schema)
    except SQLAlchemyError as error:
        logger.warning("cannot inspect table %s: %s", name, error)
        raise DatabaseUnavailable() from None
    if described is None:
        raise unknown
    return described


def _describe(inspector: Inspector, name: str, schema: str) -> TableSchema | None:
    if not inspector.has_table(name, schema=schema):
        return None
    primary_key = inspector.get_pk_constraint(name, schema=schema)
    return TableSchema(
        table=name,
        columns=[
            ColumnSchema(name=column["name"], type=str(column["type"]), nullable=bool(column["nullable"]))
            for column in inspector.get_columns(name, schema=schema)
        ],
        primary_key=list(primary_key.get("constrained_columns") or []),
        foreign_keys=[
            ForeignKeySchema(
                columns=list(key["constrained_columns"]),
                references_table=key["referred_table"],
                references_columns=list(key["referred_columns"]),
            )
            for key in inspector.get_foreign_keys(name, schema=schema)
        ],
    )

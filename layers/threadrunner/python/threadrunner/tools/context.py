"""What a tool call gets besides its arguments: whose call it is, the settings, and the database."""

from __future__ import annotations

from pydantic import ConfigDict

from threadrunner.assistant_definitions import AssistantConfig
from threadrunner.models.deferred_model import DeferredModel
from threadrunner.settings import ToolSettings
from threadrunner.tools.database import Database, configured_database


class ToolContext(DeferredModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    assistant: AssistantConfig
    settings: ToolSettings
    # Tests pass a database; None means the one the settings name, opened on first use and cached per process.
    database: Database | None = None

    def get_database(self) -> Database:
        return self.database if self.database is not None else configured_database(self.settings)

    @property
    def allowed_tables(self) -> list[str]:
        """The tables this assistant's SQL tools may read (assistants/<name>.yaml, ``database.tables``)."""
        return [table.lower() for table in self.assistant.database.tables] if self.assistant.database else []

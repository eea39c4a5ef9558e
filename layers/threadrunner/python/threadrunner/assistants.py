"""Assistants as code: ``assistants/<name>.yaml`` holds each assistant's instructions, model and tools."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from threadrunner.errors import InvalidRequestError

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class DatabaseAccess(BaseModel):
    """Which tables the assistant's SQL tools may read."""

    tables: list[str] = Field(min_length=1)


class AssistantConfig(BaseModel):
    name: str = Field(pattern=_NAME.pattern)
    description: str = ""
    instructions: str
    model: str | None = None  # None: the environment's model
    engine: Literal["responses", "assistants", "chat"] | None = None  # None: the environment's engine
    tools: list[str] = Field(default_factory=list)
    database: DatabaseAccess | None = None


@cache
def load_assistant(directory: Path, name: str) -> AssistantConfig:
    """Load one assistant by name; an unknown name is a client error naming the ``assistant`` field."""
    if not _NAME.fullmatch(name):  # also keeps the name from walking out of the directory
        raise InvalidRequestError(f"unknown assistant {name!r}", field="assistant")
    path = directory / f"{name}.yaml"
    if not path.is_file():
        raise InvalidRequestError(f"unknown assistant {name!r}", field="assistant")
    try:
        config = AssistantConfig.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as error:
        raise ValueError(f"assistant config {path} is invalid: {error}") from error
    if config.name != name:
        raise ValueError(f"assistant config {path} names itself {config.name!r}")
    return config

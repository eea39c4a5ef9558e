"""A tool written the way a developer writes one: a single module in a package of its own, registered by
discovery (the registry is swapped for one that also scans that package, for the test's duration)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from threadrunner.tools import registry

FIXTURE_TOOL = "roll_dice"
FIXTURE_MODULE = """
from pydantic import BaseModel, ConfigDict, Field

from threadrunner.tools.context import ToolContext
from threadrunner.tools.declaration import tool


class RollDiceArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sides: int = Field(ge=2, le=100, description="How many sides the die has.")


class Rolled(BaseModel):
    sides: int
    value: int


@tool(description="Roll a die and say what came up.", example={"sides": 6})
def roll_dice(arguments: RollDiceArguments, context: ToolContext) -> Rolled:
    return Rolled(sides=arguments.sides, value=arguments.sides)  # a loaded die: tests know the answer
"""


def register_fixture_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str = FIXTURE_MODULE
) -> str:
    """Write ``source`` as the only module of a fresh package and register what it declares; returns the
    package's name."""
    package = f"fixture_tools_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "tool_packages" / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / f"{FIXTURE_TOOL}.py").write_text(source)
    monkeypatch.syspath_prepend(str(folder.parent))
    monkeypatch.setattr(registry, "TOOLS", registry.discover([*registry.CATALOGS, package]))
    return package

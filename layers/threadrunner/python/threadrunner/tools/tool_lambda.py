"""The handler of every tool's own Lambda: one code folder (functions/run_tool), deployed once per tool.

CDK sets ``THREADRUNNER_TOOL_NAME`` on each tool's Lambda (the local stack sets it for each tool's function
when it starts); the handler runs that tool and no other, so a tool's grants never serve another tool. The
name is read once, at INIT: it is the function's identity, fixed for its life.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from threadrunner.models.workflow import RunToolInput
from threadrunner.tools import registry
from threadrunner.workflow import tool_steps
from threadrunner.workflow.handler import step_handler

TOOL_NAME_VARIABLE = "THREADRUNNER_TOOL_NAME"

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class ToolFunctionSettings(BaseSettings):
    """Which tool this Lambda is (None: a Lambda deployed without one, which runs nothing)."""

    model_config = SettingsConfigDict(env_prefix="THREADRUNNER_", frozen=True, extra="ignore")

    tool_name: str | None = None


class ToolNotConfigured(RuntimeError):
    """The Lambda does not know its tool: a deployment error, reported as the step's failure."""


def tool_lambda_handler(settings: ToolFunctionSettings | None = None) -> Handler:
    """The Lambda handler for the tool ``settings`` (else the environment) names."""
    name = (settings or ToolFunctionSettings()).tool_name
    if name is None:
        return _not_configured
    if name not in registry.TOOLS:
        # INIT fails: a Lambda for a tool the registry no longer has must not pretend to run it.
        raise ToolNotConfigured(
            f"{TOOL_NAME_VARIABLE}={name!r} is not a registered tool: {', '.join(registry.TOOLS)}"
        )
    return step_handler(tool_steps.tool_runner(name), RunToolInput)


def _not_configured(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise ToolNotConfigured(f"{TOOL_NAME_VARIABLE} is not set: this Lambda runs no tool")

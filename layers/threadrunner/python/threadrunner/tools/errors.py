"""Failures a tool reports to the model as ``{"error": "..."}``: their messages are written for the model.

Messages name what was refused and never carry stack traces, connection strings or secrets.
"""

from __future__ import annotations


class ToolError(Exception):
    """The tool could not do what was asked; the message explains why, for the model."""


class QueryRefused(ToolError):
    """The query breaks the SQL policy or the database refused it."""


class ToolTimeout(ToolError):
    """The tool ran past its time budget and was stopped."""

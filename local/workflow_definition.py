"""The run workflow's definition as the local stack creates its state machine: the ASL with each
``${XFunctionArn}`` replaced by the function's ARN, as CDK's ``definition_substitutions`` does."""

from __future__ import annotations

import re
from collections.abc import Callable

_PLACEHOLDER = re.compile(r"\$\{(\w+)FunctionArn\}")


def folder_for_placeholder(name: str) -> str:
    """``SubmitToolOutputs`` (from ``${SubmitToolOutputsFunctionArn}``) -> ``submit_tool_outputs``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def render_definition(definition: str, function_arn: Callable[[str], str]) -> str:
    """The ASL with each ``${XFunctionArn}`` replaced, as CDK's ``definition_substitutions`` does."""
    rendered = _PLACEHOLDER.sub(
        lambda match: function_arn(folder_for_placeholder(match.group(1))), definition
    )
    leftover = sorted(set(re.findall(r"\$\{[^}]*\}", rendered)))
    if leftover:
        raise ValueError(f"unknown placeholders in the workflow definition: {', '.join(leftover)}")
    return rendered

"""The CDK app: ``cdk synth -c env=NAME`` builds the stack ``threadrunner-NAME`` from cdk.json's settings."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from threadrunner.assistant_validation import AssistantDefinitionError, validate_assistants

from infra.config import ConfigError, load_environment
from infra.constants import (
    ASSISTANTS_DIR,
    DEFAULT_ENVIRONMENT,
    ENVIRONMENT_CONTEXT_KEY,
    ENVIRONMENTS_CONTEXT_KEY,
    stack_name,
)
from infra.stack import ThreadrunnerStack


def build(app: cdk.App, *, assistants_dir: Path | None = None) -> ThreadrunnerStack:
    """Add the chosen environment's stack to ``app``, with cdk-nag's AwsSolutions checks on every synth.

    cdk-nag 3 is a policy-validation plugin (not an Aspect): an unacknowledged finding fails the synth.
    The assistants' definitions (``assistants_dir``, default assistants/) are checked against the
    environment first (AssistantDefinitionError): a typo'd key or tool, or an MCP server not on the
    environment's allow-list, fails the synth instead of a run.
    """
    assistants = assistants_dir or ASSISTANTS_DIR
    validate_assistants(assistants)  # a typo'd key or tool fails first, whatever the environment
    name = str(app.node.try_get_context(ENVIRONMENT_CONTEXT_KEY) or DEFAULT_ENVIRONMENT)
    config = load_environment(app.node.try_get_context(ENVIRONMENTS_CONTEXT_KEY), name)
    # Then against the environment: web_search or mcp on an engine without them, an MCP server off the
    # allow-list, knowledge on the chat engine.
    validate_assistants(assistants, config.hosted_tool_policy)
    stack = ThreadrunnerStack(app, stack_name(name), config=config)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stack


def main() -> None:
    app = cdk.App()
    try:
        build(app)
    except (ConfigError, AssistantDefinitionError) as error:
        raise SystemExit(f"threadrunner: {error}") from None
    app.synth()


if __name__ == "__main__":
    main()

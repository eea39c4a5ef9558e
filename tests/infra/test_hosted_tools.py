"""Hosted tools in the stack: the MCP allow-list reaches every function as names and URLs only, exactly the
model steps may read the servers' header secrets, and synth refuses an assistant naming a server off the
allow-list (or a hosted tool on an engine without it)."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from threadrunner.assistant_validation import AssistantDefinitionError

from infra.app import build
from infra.config import ConfigError, load_environment
from infra.constants import ALL_FUNCTIONS
from tests.infra.synth import CDK_CONTEXT, Synthesized, synthesize_with
from tests.infra.test_iam import grants

SERVER = {
    "server_label": "orders",
    "server_url": "https://mcp.example.com/mcp",
    "secret_name": "threadrunner/staging/mcp-orders",
}
ORDERS = """\
name: order-desk
instructions: Help with orders.
mcp:
  - server_label: {label}
    server_url: https://mcp.example.com/mcp
"""


def test_the_allow_list_reaches_the_functions_and_only_model_steps_read_its_secrets() -> None:
    # Given an environment allowing one MCP server whose headers are in a secret
    synthesized = synthesize_with("staging", mcp_servers=[SERVER])
    for name in ALL_FUNCTIONS:
        environment = synthesized.function(name)[1]["Properties"]["Environment"]["Variables"]
        # Then every function knows the allow-list (the API refuses other servers), by name and URL only
        assert json.loads(environment["THREADRUNNER_MCP_SERVERS"]) == [SERVER], name
        secret_reads = grants(synthesized, name).get("secretsmanager:GetSecretValue", set())
        reads_it = any("threadrunner/staging/mcp-orders-??????" in resource for resource in secret_reads)
        # And exactly the functions that talk to the model may read the headers
        assert reads_it == name.talks_to_model, name


def test_without_mcp_servers_no_function_gets_the_setting(dev: Synthesized) -> None:
    for name in ALL_FUNCTIONS:
        assert (
            "THREADRUNNER_MCP_SERVERS" not in dev.function(name)[1]["Properties"]["Environment"]["Variables"]
        )


@pytest.mark.parametrize(
    "entry",
    [
        {"server_label": "orders", "server_url": "http://mcp.example.com/mcp"},
        {"server_label": "orders", "server_url": "https://user:pw@mcp.example.com/mcp"},
        {"server_label": "bad label", "server_url": "https://mcp.example.com/mcp"},
    ],
)
def test_an_unsafe_allow_list_entry_fails_the_config(entry: dict[str, str]) -> None:
    environments = {**CDK_CONTEXT["environments"]}
    environments["dev"] = {**environments["dev"], "mcp_servers": [entry]}
    with pytest.raises(ConfigError, match="mcp_servers"):
        load_environment(environments, "dev")


def _build(tmp_path: Path, yaml_text: str, **overrides: object) -> None:
    folder = tmp_path / "assistants"
    folder.mkdir()
    (folder / "order-desk.yaml").write_text(yaml_text)
    environments = {**CDK_CONTEXT["environments"]}
    environments["staging"] = {**environments["staging"], **overrides}
    context = {**CDK_CONTEXT, "env": "staging", "environments": environments, "aws:cdk:bundling-stacks": []}
    build(cdk.App(context=context), assistants_dir=folder)


def test_synth_refuses_an_mcp_server_off_the_allow_list_naming_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(AssistantDefinitionError) as refused:
        _build(tmp_path, ORDERS.format(label="shop"), mcp_servers=[SERVER])
    assert str(refused.value) == (
        f"{tmp_path}/assistants/order-desk.yaml:4: mcp[0].server_label: MCP server 'shop' is not on this "
        "environment's allow-list (cdk.json mcp_servers: orders)"
    )


def test_synth_refuses_hosted_tools_on_an_engine_without_them(tmp_path: Path) -> None:
    with pytest.raises(
        AssistantDefinitionError, match=r"order-desk.yaml:3: mcp: MCP servers run on the responses"
    ):
        _build(tmp_path, ORDERS.format(label="orders") + "engine: chat\n", mcp_servers=[SERVER])

"""Every Lambda gets the shared settings from the one factory; each step only what it needs on top."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from threadrunner.tools import registry

from infra.bundling import DEPENDENCY_LAYERS
from infra.constants import (
    ALL_FUNCTIONS,
    FUNCTIONS_DIR,
    TOOL_CODE_FOLDER,
    TOOL_FUNCTIONS,
    FunctionName,
    LambdaName,
)
from local.cli_tools import deployed_function_name
from tests.infra.synth import Synthesized, render, synthesize_with

SHARED_VARIABLES = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "THREADRUNNER_ENVIRONMENT",
    "THREADRUNNER_THREADS_TABLE",
    "THREADRUNNER_RUNS_TABLE",
    "THREADRUNNER_BUCKET",
    "THREADRUNNER_ASSISTANTS_DIR",
    "THREADRUNNER_SAMPLE_DATABASE_PATH",
    "THREADRUNNER_ENGINE",
    "THREADRUNNER_MODEL",
    "THREADRUNNER_POLL_FIRST_SECONDS",
    "THREADRUNNER_POLL_MAX_SECONDS",
    "THREADRUNNER_RUN_DEADLINE_SECONDS",
    "THREADRUNNER_MAX_POLLS",
    "THREADRUNNER_THREAD_MAX_AGE_HOURS",
    "THREADRUNNER_THREAD_TTL_DAYS",
    "THREADRUNNER_FALLBACK_ENGINE",
    "THREADRUNNER_BREAKER_COOLING_SECONDS",
}


def variables(synthesized: Synthesized, name: LambdaName) -> dict[str, object]:
    return synthesized.function(name)[1]["Properties"]["Environment"]["Variables"]


def test_one_lambda_per_functions_folder_and_one_per_registered_tool(dev: Synthesized) -> None:
    folders = {path.name for path in FUNCTIONS_DIR.iterdir() if path.is_dir() and path.name != "__pycache__"}
    names = {value["Properties"]["FunctionName"] for value in dev.ours("AWS::Lambda::Function").values()}

    # run_tool is every tool's code, deployed once per tool in the registry
    assert folders == {name.value for name in FunctionName} | {TOOL_CODE_FOLDER}
    assert names == {name.function_name("dev") for name in ALL_FUNCTIONS}
    assert {tool.tool for tool in TOOL_FUNCTIONS} == set(registry.TOOLS)
    for tool in TOOL_FUNCTIONS:
        properties = dev.function(tool)[1]["Properties"]
        assert properties["Environment"]["Variables"]["THREADRUNNER_TOOL_NAME"] == tool.tool
        # what `threadrunner tools list` says it runs in
        assert properties["FunctionName"] == deployed_function_name(
            registry.TOOLS[tool.tool].function_id, "dev"
        )
    for folder in folders:
        assert "lambda_handler" in top_level_names(FUNCTIONS_DIR / folder / "handler.py"), folder


def top_level_names(module: Path) -> set[str]:
    """What ``handler.lambda_handler`` can resolve to: module-level functions and assignments."""
    names = set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names


@pytest.mark.parametrize("name", ALL_FUNCTIONS, ids=str)
def test_shared_runtime_tracing_logging_and_layers(dev: Synthesized, name: LambdaName) -> None:
    _, function = dev.function(name)
    properties = function["Properties"]

    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["x86_64"]
    assert properties["Handler"] == "handler.lambda_handler"
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["LoggingConfig"]["LogFormat"] == "JSON"
    assert properties["LoggingConfig"]["ApplicationLogLevel"] == "DEBUG"
    # the threadrunner layer, then its kind's dependency layers (test_function_imports.py: their contents)
    descriptions = {
        dev.template["Resources"][render(layer)[1:-1]]["Properties"]["Description"]
        for layer in properties["Layers"]
    }
    assert descriptions == {
        "threadrunner library, assistants, sample database",
        *(f"threadrunner runtime dependencies: {layer}" for layer in DEPENDENCY_LAYERS[name.kind]),
    }
    log_group = dev.template["Resources"][properties["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] == 14


def test_memory_and_timeouts_fit_each_role(dev: Synthesized) -> None:
    for name in ALL_FUNCTIONS:
        properties = dev.function(name)[1]["Properties"]
        assert properties["MemorySize"] == (512 if name.talks_to_model else 256)
        # HTTP API integrations stop at 30 s (the workflow's timing: test_timing.py).
        if name is FunctionName.api:
            assert properties["Timeout"] < 30


def test_every_function_has_the_shared_settings(dev: Synthesized) -> None:
    for name in ALL_FUNCTIONS:
        found = variables(dev, name)
        assert set(found) >= SHARED_VARIABLES
        assert found["THREADRUNNER_ASSISTANTS_DIR"] == "/opt/assistants"
        assert found["THREADRUNNER_SAMPLE_DATABASE_PATH"] == "/opt/data/sample.db"
        assert found["THREADRUNNER_MAX_POLLS"] == "300"
        assert found["POWERTOOLS_SERVICE_NAME"] == "threadrunner"


def test_only_model_callers_know_where_the_key_is_and_only_run_starters_know_the_state_machine(
    dev: Synthesized,
) -> None:
    secret_id, _ = dev.upstream_secret()
    machine_id, _ = dev.only("AWS::StepFunctions::StateMachine")

    for name in ALL_FUNCTIONS:
        found = variables(dev, name)
        if name.talks_to_model:
            assert found["THREADRUNNER_OPENAI_SECRET_NAME"] == {"Ref": secret_id}
        else:
            assert "THREADRUNNER_OPENAI_SECRET_NAME" not in found
        # the APIs start runs; the reconciler and the sweep hand threads on (threadrunner.run_repair)
        if name in (
            FunctionName.api,
            FunctionName.compat_api,
            FunctionName.reconcile_run,
            FunctionName.sweep_threads,
        ):
            assert found["THREADRUNNER_STATE_MACHINE_ARN"] == {"Ref": machine_id}
        elif name is FunctionName.finish_run:
            # built from the name, not a Ref: the definition already refers to Finish run
            assert render(found["THREADRUNNER_STATE_MACHINE_ARN"]) == (
                "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:threadrunner-dev-run"
            )
        else:
            assert "THREADRUNNER_STATE_MACHINE_ARN" not in found
        # OpenAI itself unless the environment names another upstream.
        assert "THREADRUNNER_OPENAI_BASE_URL" not in found


def test_an_environment_upstream_reaches_the_model_steps_only() -> None:
    synthesized = synthesize_with("staging", openai_base_url="https://llm.example.com/v1")

    for name in ALL_FUNCTIONS:
        found = variables(synthesized, name)
        expected = "https://llm.example.com/v1" if name.talks_to_model else None
        assert found.get("THREADRUNNER_OPENAI_BASE_URL") == expected


def test_an_engines_own_upstream_reaches_the_model_steps_with_its_secret_name_only() -> None:
    # Given chat on its own server, with its own key secret and model, as the fallback
    chat = {
        "base_url": "https://vllm.example.com/v1",
        "secret_name": "threadrunner/staging/vllm",
        "model": "llama",
    }
    synthesized = synthesize_with(
        "staging", engine_upstreams={"chat": chat}, fallback_engine="chat", context_tokens={"llama": 8000}
    )
    for name in ALL_FUNCTIONS:
        found = variables(synthesized, name)
        # Then the model steps learn where it is (the secret's name, never its value)
        upstreams = json.loads(str(found["THREADRUNNER_ENGINE_UPSTREAMS"])) if name.talks_to_model else None
        assert upstreams == ({"chat": chat} if name.talks_to_model else None), name
        assert "THREADRUNNER_ENGINE_UPSTREAMS" in found or not name.talks_to_model
        assert found["THREADRUNNER_FALLBACK_ENGINE"] == "chat"
        assert json.loads(str(found["THREADRUNNER_CONTEXT_TOKENS"])) == {"llama": 8000}

"""cdk.json's environments: each one synthesizes; bad names and values fail before anything is built."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from threadrunner.assistant_definitions import load_assistant
from threadrunner.pricing import ModelPrice, default_prices, price_for
from threadrunner.settings import RunSettings
from threadrunner.workflow.limits import HISTORY_EVENT_LIMIT, worst_case_history_events

from infra.app import build
from infra.config import ConfigError, load_environment
from infra.constants import ASSISTANTS_DIR, FunctionName, stack_name
from tests.infra.synth import CDK_CONTEXT, ENVIRONMENTS, synthesize

VALID = CDK_CONTEXT["environments"]["dev"]


def load_dev_with(**changes: Any) -> None:
    load_environment({"dev": {**VALID, **changes}}, "dev")


def test_cdk_json_names_dev_staging_and_prod() -> None:
    assert set(ENVIRONMENTS) == {"dev", "staging", "prod"}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_synthesizes_its_own_stack(environment: str) -> None:
    synthesized = synthesize(environment)

    assert synthesized.stack.stack_name == stack_name(environment) == f"threadrunner-{environment}"
    _, function = synthesized.function(FunctionName.api)
    assert function["Properties"]["Environment"]["Variables"]["THREADRUNNER_ENVIRONMENT"] == environment


def test_an_unknown_environment_fails_with_the_known_names() -> None:
    app = cdk.App(context={**CDK_CONTEXT, "env": "qa", "aws:cdk:bundling-stacks": []})

    with pytest.raises(ConfigError, match=r"unknown environment 'qa': cdk.json knows dev, prod, staging"):
        build(app)


def test_without_env_context_the_app_builds_dev() -> None:
    app = cdk.App(context={**CDK_CONTEXT, "aws:cdk:bundling-stacks": []})

    assert build(app).stack_name == "threadrunner-dev"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"run_deadline_seconds": 7000}, "environments.dev.run_deadline_seconds"),
        ({"log_retention_days": 10}, "environments.dev.log_retention_days"),
        ({"log_level": "LOUD"}, "environments.dev.log_level"),
        ({"engine": "bard"}, "environments.dev.engine"),
        ({"max_polls": 5000}, "environments.dev.max_polls"),
        ({"allowed_origins": ["https://app.example.com/path"]}, "environments.dev.allowed_origins.0"),
        ({"jwt": {"issuer": "https://id.example.com"}}, "environments.dev.jwt.audience"),
        ({"removal_policy": "snapshot"}, "environments.dev.removal_policy"),
        ({"poll_interval": 3}, "environments.dev.poll_interval"),
        ({"fallback_engine": "bard"}, "environments.dev.fallback_engine"),
        (
            {"engine_upstreams": {"chat": {"base_url": "not a url"}}},
            "environments.dev.engine_upstreams.chat.base_url",
        ),
        ({"engine_upstreams": {"bard": {}}}, "environments.dev.engine_upstreams.bard"),
        ({"context_tokens": {"gpt-5-mini": 0}}, "environments.dev.context_tokens.gpt-5-mini"),
        ({"files": {"allowed_types": ["application/x-msdownload"]}}, "environments.dev.files.allowed_types"),
        ({"files": {"max_file_bytes": 0}}, "environments.dev.files.max_file_bytes"),
        ({"files": {"upstream_file_days": 31}}, "environments.dev.files.upstream_file_days"),
        ({"runs_per_minute": 0}, "environments.dev.runs_per_minute"),
        ({"idempotency_expires_hours": 0}, "environments.dev.idempotency_expires_hours"),
        (
            {"api_throttling": {"create_run": {"rate_limit": 0, "burst_limit": 5}}},
            "environments.dev.api_throttling.create_run.rate_limit",
        ),
        (
            {"api_throttling": {"create_file": {"rate_limit": 500, "burst_limit": 1000}}},
            "environments.dev.api_throttling: Value error, create_file must be no looser than default",
        ),
    ],
)
def test_a_bad_value_fails_naming_its_key(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_dev_with(**changes)


def test_a_missing_setting_is_named() -> None:
    settings = {key: value for key, value in VALID.items() if key != "model"}

    with pytest.raises(ConfigError, match=r"environments\.dev\.model: Field required"):
        load_environment({"dev": settings}, "dev")


def test_the_fallback_engine_is_another_engine() -> None:
    with pytest.raises(ConfigError, match="fallback_engine must differ from engine"):
        load_dev_with(engine="chat", fallback_engine="chat")
    config = load_environment({"dev": {**VALID, "engine": "chat", "fallback_engine": "off"}}, "dev")
    assert (config.engine, config.fallback_engine) == ("chat", "off")


def test_polling_must_back_off_upwards_and_threads_must_expire_after_their_max_age() -> None:
    with pytest.raises(ConfigError, match="poll_max_seconds must be at least poll_first_seconds"):
        load_dev_with(poll_first_seconds=30, poll_max_seconds=10)
    with pytest.raises(ConfigError, match="thread_max_age_hours must not outlive thread_ttl_days"):
        load_dev_with(thread_max_age_hours=200, thread_ttl_days=7)


def test_prod_retains_data_and_dev_does_not() -> None:
    environments = CDK_CONTEXT["environments"]

    assert load_environment(environments, "prod").is_production
    assert not load_environment(environments, "dev").is_production


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environments_longest_run_stays_far_below_the_history_limit(environment: str) -> None:
    # Given the environment's poll and tool-call limits as cdk.json sets them
    config = load_environment(CDK_CONTEXT["environments"], environment)
    # When a run uses every poll and every tool call, each call in a round of its own
    worst = worst_case_history_events(config.max_polls, config.max_tool_calls_per_run)
    # Then it writes at most half of the 25,000 events a Standard execution may have
    assert worst <= HISTORY_EVENT_LIMIT // 2, worst
    # and the Lambdas get those very limits
    variables = synthesize(environment).function(FunctionName.check_run)[1]["Properties"]["Environment"][
        "Variables"
    ]
    assert variables["THREADRUNNER_MAX_POLLS"] == str(config.max_polls)
    assert variables["THREADRUNNER_MAX_TOOL_CALLS_PER_RUN"] == str(config.max_tool_calls_per_run)
    assert variables["THREADRUNNER_CLIENT_TOOL_TIMEOUT_SECONDS"] == str(config.client_tool_timeout_seconds)
    assert variables["THREADRUNNER_MAX_QUEUED_SECONDS"] == str(config.max_queued_seconds)


@pytest.mark.parametrize(("max_polls", "max_tool_calls_per_run"), [(2000, 250), (500, 700)])
def test_limits_that_could_near_the_history_limit_are_refused(
    max_polls: int, max_tool_calls_per_run: int
) -> None:
    with pytest.raises(ConfigError, match="history events per run"):
        load_dev_with(max_polls=max_polls, max_tool_calls_per_run=max_tool_calls_per_run)
    with pytest.raises(ValueError, match="history events per run"):
        RunSettings(max_polls=max_polls, max_tool_calls_per_run=max_tool_calls_per_run)


def test_a_cost_budget_needs_a_price_for_the_environments_models() -> None:
    # An unlisted variant is not priced as its family (gpt-5-pro-max is not gpt-5)
    with pytest.raises(ConfigError, match="daily_cost_budget_usd is set and gpt-5-pro-max has no price"):
        load_dev_with(daily_cost_budget_usd=5, model="gpt-5-pro-max")
    with pytest.raises(ConfigError, match=r"llama-3\.3-70b has no price"):
        load_dev_with(daily_cost_budget_usd=5, engine_upstreams={"chat": {"model": "llama-3.3-70b"}})
    # Listing the price in the environment, or having no cost budget, is fine
    free = {"input": 0, "cached_input": 0, "output": 0}
    load_dev_with(daily_cost_budget_usd=5, model="gpt-5-pro-max", prices={"gpt-5-pro-max": free})
    load_dev_with(daily_cost_budget_usd=None, model="gpt-5-pro-max")
    load_dev_with(
        daily_cost_budget_usd=5, model="gpt-4.1-mini-2025-04-14"
    )  # a dated snapshot of a priced model


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_under_a_cost_budget_every_assistants_model_has_a_price(environment: str) -> None:
    config = load_environment(CDK_CONTEXT["environments"], environment)
    if config.daily_cost_budget_usd is None:
        return
    table = {
        **default_prices(),
        **{model: ModelPrice.model_validate(price.model_dump()) for model, price in config.prices.items()},
    }
    for path in sorted(ASSISTANTS_DIR.glob("*.yaml")):
        model = load_assistant(ASSISTANTS_DIR, path.stem).model or config.model
        assert price_for(model, table) is not None, f"{path.name} runs on {model}: POST runs would answer 422"

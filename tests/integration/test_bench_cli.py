"""`threadrunner bench` runs turns on the local stack and prints a JSON line per scenario and a table. A smoke
test of the figures' shape: the bench measures, it never asserts timings (neither does this test)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from local.cli import app

pytestmark = pytest.mark.xdist_group("local_stack")  # moto is process-global: one stack at a time

FIELDS = {
    "scenario",
    "mode",
    "model_seconds",
    "turns",
    "transitions",
    "lambda_invocations",
    "lambda_invocations_by_function",
    "lambda_gb_seconds",
    "dynamodb_read_units",
    "dynamodb_write_units",
    "dynamodb_units_estimated",
    "completion_delay_seconds_avg",
    "completion_delay_seconds_p50",
    "cost_per_1000_turns_usd",
    "seed_cost_per_1000_turns_usd",
}


def test_bench_prints_a_json_line_with_the_figures_of_a_plain_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = CliRunner().invoke(
        app,
        ["bench", "--scenario", "plain", "--model-seconds", "1", "--turns", "1", "--imports-runs", "0"],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    poll = next(line for line in lines if line["mode"] == "poll")
    assert set(poll) >= FIELDS
    assert poll["statuses"] == ["completed"]
    assert poll["transitions"] > 0 and poll["lambda_invocations"] > 0
    assert set(poll["cost_per_1000_turns_usd"]) >= {
        "stepfunctions",
        "lambda",
        "dynamodb",
        "api_gateway",
        "total",
    }
    webhook = next(line for line in lines if line["mode"] == "webhook")
    assert set(webhook) >= FIELDS and webhook["statuses"] == ["completed"]
    # the webhook resumed the wait: Check run ran once per model call, never polling a second time
    assert webhook["lambda_invocations_by_function"]["check_run"] == 1
    assert webhook["lambda_invocations_by_function"]["openai_webhook"] >= 1
    assert "transitions" in result.output  # the table

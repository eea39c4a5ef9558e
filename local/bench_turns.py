"""``threadrunner bench``: run turns on the local stack and price them (figures printed, never asserted).

Per scenario (a plain answer, or two tool rounds; the model taking ``model_seconds`` per call, time-based in
the emulator) it counts, per turn:

- state transitions: the ``*StateEntered`` events of the execution's history (GetExecutionHistory);
- Lambda invocations and their durations, from the local dispatch (``LambdaDispatch.observed``);
- DynamoDB read and write request units: an ESTIMATE from every DynamoDB request the process makes (a hook
  on botocore's API calls), sized as the JSON of the item read or the attributes written, with the on-demand
  rules (reads: 4 KB units, halved when eventually consistent; writes: 1 KB units; transactions twice);
  an update is sized by what it writes, not the whole item, so it is a lower bound there;
- the completion delay: the run's ``completed_at`` minus when the emulator's model finished its last call;

and prices a turn (``PRICES``) beside the seed's design (one 512 MB Lambda that polls every second for the
whole turn and runs the tools itself, with the same API and DynamoDB work), computed the same way. Lambda
durations are measured in process on this machine (no INIT), so they are an estimate too.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from unittest import mock

# US East (N. Virginia) list prices in USD, as published on the AWS pricing pages (checked 2026-12-07);
# free tiers left out. Step Functions Standard per state transition; Lambda per GB-second by architecture
# and per request; DynamoDB on-demand per read/write request unit (since the 2024-11 reduction); API Gateway
# HTTP API per request (first 300 million a month).
PRICES = {
    "stepfunctions_transition": 0.025 / 1_000,
    "lambda_gb_second_x86_64": 0.0000166667,
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_request": 0.20 / 1_000_000,
    "dynamodb_read_unit": 0.125 / 1_000_000,
    "dynamodb_write_unit": 0.625 / 1_000_000,
    "http_api_request": 1.00 / 1_000_000,
}
PRICES_CHECKED = "2026-12-07"
# As infra/constructs/functions.py deploys them (not imported: local mode installs no CDK).
ARCHITECTURE = "x86_64"
MODEL_STEP_MEMORY_MB = 512
MEMORY_MB = 256
# A client creates the run and reads its result: two API requests per turn, in both designs.
API_REQUESTS_PER_TURN = 2
SEED_MEMORY_MB = 512
SEED_POLL_SECONDS = 1.0

SCENARIOS = ("plain", "tools")
MODES = ("poll", "webhook")
QUESTION = "How many rows has the sales table?"


# ---------------------------------------------------------------------------------------------- DynamoDB


def _size(value: Any) -> int:
    """Bytes of an attribute value, roughly as DynamoDB counts them (names and values, UTF-8)."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (int, float)) or type(value).__name__ == "Decimal":
        return len(str(value)) // 2 + 1
    if isinstance(value, dict):
        return 3 + sum(_size(k) + _size(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return 3 + sum(_size(v) + 1 for v in value)
    return len(json.dumps(value, default=str).encode())


def _read_units(size: int, consistent: bool) -> float:
    return max(1, math.ceil(size / 4096)) * (1 if consistent else 0.5)


def _write_units(size: int) -> float:
    return max(1, math.ceil(size / 1024))


@dataclass
class DynamoUnits:
    reads: float = 0.0
    writes: float = 0.0
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, operation: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        reads = writes = 0.0
        consistent = bool(params.get("ConsistentRead"))
        if operation == "GetItem":
            reads = _read_units(_size(response.get("Item", {})), consistent)
        elif operation in ("Query", "Scan"):
            reads = _read_units(sum(_size(item) for item in response.get("Items", [])), consistent)
        elif operation == "BatchGetItem":
            for items in response.get("Responses", {}).values():
                reads += sum(_read_units(_size(item), consistent) for item in items)
        elif operation == "TransactGetItems":
            reads = sum(
                2 * _read_units(_size(r.get("Item", {})), True) for r in response.get("Responses", [])
            )
        elif operation == "PutItem":
            writes = _write_units(_size(params.get("Item", {})))
        elif operation in ("UpdateItem", "DeleteItem"):
            writes = _write_units(
                _size(params.get("Key", {})) + _size(params.get("ExpressionAttributeValues", {}))
            )
        elif operation == "BatchWriteItem":
            for requests in params.get("RequestItems", {}).values():
                for request in requests:
                    body = request.get("PutRequest", {}).get("Item") or request.get("DeleteRequest", {})
                    writes += _write_units(_size(body))
        elif operation == "TransactWriteItems":
            for item in params.get("TransactItems", []):
                (action,) = item.values()
                body = action.get("Item") or {
                    **action.get("Key", {}),
                    **action.get("ExpressionAttributeValues", {}),
                }
                writes += 2 * _write_units(_size(body))
        else:
            return
        with self._lock:
            self.reads += reads
            self.writes += writes
            self.requests += 1


@contextmanager
def counting_dynamodb(units: DynamoUnits) -> Iterator[None]:
    """Count every DynamoDB request this process makes while the block runs (failed ones too: they bill)."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name != "dynamodb":
            return original(client, operation, params)
        try:
            response = original(client, operation, params)
        except Exception:
            units.record(operation, params, {})
            raise
        units.record(operation, params, response)
        return response

    with mock.patch.object(BaseClient, "_make_api_call", make_api_call):
        yield


# -------------------------------------------------------------------------------------------------- turns


@dataclass
class Invocations:
    """Lambda invocations by function, and their billed seconds (each rounded up to the millisecond)."""

    counts: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, folder: str, elapsed: float) -> None:
        with self._lock:
            self.counts[folder] += 1
            self.seconds[folder] = self.seconds.get(folder, 0.0) + math.ceil(elapsed * 1000) / 1000


@dataclass
class Turn:
    transitions: int
    invocations: Counter[str]
    gb_seconds: float
    lambda_seconds: dict[str, float]
    reads: float
    writes: float
    completion_delay: float | None
    model_calls: int
    status: str


@dataclass
class Scenario:
    name: str
    mode: str
    model_seconds: float
    turns: list[Turn]

    def summary(self) -> dict[str, Any]:
        turns = self.turns
        count = len(turns)
        delays = [t.completion_delay for t in turns if t.completion_delay is not None]
        invocations: Counter[str] = Counter()
        for turn in turns:
            invocations.update(turn.invocations)
        per_turn = {
            "transitions": sum(t.transitions for t in turns) / count,
            "lambda_invocations": sum(invocations.values()) / count,
            "lambda_gb_seconds": sum(t.gb_seconds for t in turns) / count,
            "dynamodb_read_units": sum(t.reads for t in turns) / count,
            "dynamodb_write_units": sum(t.writes for t in turns) / count,
        }
        cost = _cost(per_turn)
        seed = _seed_cost(self, per_turn)
        return {
            "scenario": self.name,
            "mode": self.mode,
            "model_seconds": self.model_seconds,
            "turns": count,
            "statuses": sorted({t.status for t in turns}),
            **{key: round(value, 3) for key, value in per_turn.items()},
            "lambda_invocations_by_function": {k: v / count for k, v in sorted(invocations.items())},
            "dynamodb_units_estimated": True,
            "completion_delay_seconds_avg": round(statistics.mean(delays), 3) if delays else None,
            "completion_delay_seconds_p50": round(statistics.median(delays), 3) if delays else None,
            "completion_delay_seconds_max": round(max(delays), 3) if delays else None,
            "cost_per_1000_turns_usd": {key: round(value * 1000, 4) for key, value in cost.items()},
            "seed_cost_per_1000_turns_usd": {key: round(value * 1000, 4) for key, value in seed.items()},
            "prices": f"us-east-1, checked {PRICES_CHECKED}",
        }


def _cost(per_turn: dict[str, float]) -> dict[str, float]:
    parts = {
        "stepfunctions": per_turn["transitions"] * PRICES["stepfunctions_transition"],
        "lambda": per_turn["lambda_gb_seconds"] * PRICES[f"lambda_gb_second_{ARCHITECTURE}"]
        + per_turn["lambda_invocations"] * PRICES["lambda_request"],
        "dynamodb": per_turn["dynamodb_read_units"] * PRICES["dynamodb_read_unit"]
        + per_turn["dynamodb_write_units"] * PRICES["dynamodb_write_unit"],
        "api_gateway": API_REQUESTS_PER_TURN * PRICES["http_api_request"],
    }
    return {**parts, "total": sum(parts.values())}


def _seed_cost(scenario: Scenario, per_turn: dict[str, float]) -> dict[str, float]:
    """The seed's design: one 512 MB Lambda per turn that polls every second (so it sees each model call
    end half a second late on average) and runs the tools itself; the same API and DynamoDB work."""
    calls = statistics.mean(t.model_calls for t in scenario.turns)
    tools = statistics.mean(_tool_seconds(t) for t in scenario.turns)
    api = statistics.mean(t.invocations.get("api", 0) for t in scenario.turns)
    seconds = calls * (scenario.model_seconds + SEED_POLL_SECONDS / 2) + tools
    parts = {
        "stepfunctions": 0.0,
        # the API's invocations, plus the one Lambda that waits for the model
        "lambda": seconds * SEED_MEMORY_MB / 1024 * PRICES[f"lambda_gb_second_{ARCHITECTURE}"]
        + (api + 1) * PRICES["lambda_request"],
        "dynamodb": per_turn["dynamodb_read_units"] * PRICES["dynamodb_read_unit"]
        + per_turn["dynamodb_write_units"] * PRICES["dynamodb_write_unit"],
        "api_gateway": API_REQUESTS_PER_TURN * PRICES["http_api_request"],
    }
    return {**parts, "total": sum(parts.values())}


def _tool_seconds(turn: Turn) -> float:
    return sum(seconds for folder, seconds in turn.lambda_seconds.items() if folder.startswith("tool_"))


def memory_mb(folder: str) -> int:
    """The memory infra gives the function whose code folder (or local alias) this is."""
    import sys

    from local.handler_imports import REPO_ROOT

    if str(REPO_ROOT) not in sys.path:  # infra is no installed package: the bench runs in a clone
        sys.path.insert(0, str(REPO_ROOT))
    from infra.constants import ALL_FUNCTIONS

    for name in ALL_FUNCTIONS:
        if folder in (name.value, name.code_folder):
            return MODEL_STEP_MEMORY_MB if name.talks_to_model else MEMORY_MB
    return MEMORY_MB


def _transitions(client: Any, execution_arn: str) -> int:
    count = 0
    for page in client.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        count += sum(1 for event in page["events"] if event["type"].endswith("StateEntered"))
    return count


def _plans(scenario: str) -> list[Any]:
    from local.emulator import Plan

    if scenario == "plain":
        return [Plan.message("The sales table has 42 rows.")]
    return [
        Plan.tool_calls([("get_table_schema", {"table": "sales"})]),
        Plan.tool_calls([("query_database", {"query": "SELECT COUNT(*) FROM sales"})]),
        Plan.message("The sales table has 42 rows."),
    ]


def run_scenarios(
    scenarios: list[str], model_seconds: list[float], turns: int, modes: list[str]
) -> Iterator[dict[str, Any]]:
    """Yield one summary per (scenario, model seconds, mode), running turns on a fresh local stack each."""
    for seconds in model_seconds:
        for scenario in scenarios:
            for mode in modes:
                yield _run(scenario, mode, seconds, turns).summary()


def _run(scenario: str, mode: str, seconds: float, turns: int) -> Scenario:
    import httpx
    from threadrunner.executions import execution_arn

    from local.auth import issue_token
    from local.emulator import EmulatorServer
    from local.stack import LocalStack

    overrides = {"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR"}
    results: list[Turn] = []
    with ExitStack() as running:
        emulator = running.enter_context(EmulatorServer(port=0, model_seconds=seconds))
        stack = running.enter_context(
            LocalStack(
                upstream_base_url=emulator.base_url,
                api_key="sk-bench",
                overrides=overrides,
                completion="webhook" if mode == "webhook" else "poll",
            )
        )
        client = running.enter_context(
            httpx.Client(
                base_url=stack.api_url,
                headers={"Authorization": f"Bearer {issue_token('bench')}"},
                timeout=60,
            )
        )
        thread = client.post("/v1/threads", json={"assistant": "data-analyst", "purpose": "bench"}).json()
        sfn = stack.client("stepfunctions")
        for _ in range(turns):
            plans = _plans(scenario)
            emulator.script(*plans)
            invocations = Invocations()
            units = DynamoUnits()
            known = set(emulator.completion_times())
            with stack.lambdas.observed(invocations), counting_dynamodb(units):
                created = client.post(f"/v1/threads/{thread['id']}/runs", json={"message": QUESTION})
                created.raise_for_status()
                run_id = created.json()["id"]
                arn = execution_arn(stack.state_machine_arn, run_id)
                stack.wait_for_execution(arn, timeout=len(plans) * seconds + 120)
                run = client.get(f"/v1/runs/{run_id}").json()
            finished = [t for rid, t in emulator.completion_times().items() if rid not in known]
            completed_at = run.get("completed_at")
            delay = None
            if finished and completed_at:
                delay = datetime.fromisoformat(completed_at).timestamp() - max(finished)
            results.append(
                Turn(
                    transitions=_transitions(sfn, arn),
                    invocations=invocations.counts,
                    gb_seconds=sum(d * memory_mb(f) / 1024 for f, d in invocations.seconds.items()),
                    lambda_seconds=invocations.seconds,
                    reads=units.reads,
                    writes=units.writes,
                    completion_delay=delay,
                    model_calls=len(plans),
                    status=str(run.get("status")),
                )
            )
    return Scenario(scenario, mode, seconds, results)


def table(summaries: list[dict[str, Any]]) -> str:
    """The summaries side by side, one row per scenario."""
    header = (
        f"{'scenario':<8} {'mode':<8} {'model s':>7} {'transitions':>11} {'lambdas':>7} {'GB-s':>7} "
        f"{'RRU~':>6} {'WRU~':>6} {'delay avg':>9} {'delay max':>9} {'$/1k turns':>10} {'seed $/1k':>9}"
    )
    rows = [header, "-" * len(header)]
    for s in summaries:
        delay_avg = (
            "-" if s["completion_delay_seconds_avg"] is None else f"{s['completion_delay_seconds_avg']:.2f} s"
        )
        delay_max = (
            "-" if s["completion_delay_seconds_max"] is None else f"{s['completion_delay_seconds_max']:.2f} s"
        )
        rows.append(
            f"{s['scenario']:<8} {s['mode']:<8} {s['model_seconds']:>7g} {s['transitions']:>11.1f} "
            f"{s['lambda_invocations']:>7.1f} {s['lambda_gb_seconds']:>7.2f} {s['dynamodb_read_units']:>6.1f} "
            f"{s['dynamodb_write_units']:>6.1f} {delay_avg:>9} {delay_max:>9} "
            f"{s['cost_per_1000_turns_usd']['total']:>10.3f} {s['seed_cost_per_1000_turns_usd']['total']:>9.3f}"
        )
    rows.append(
        f"RRU~/WRU~: DynamoDB request units, estimated. Prices: us-east-1 list prices checked {PRICES_CHECKED} "
        "(local/bench_turns.py PRICES). seed: one 512 MB Lambda polling every second."
    )
    return "\n".join(rows)

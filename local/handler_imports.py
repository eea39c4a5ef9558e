"""Which packages a Lambda's handler imports at INIT, each handler in a fresh interpreter (what a cold start
pays), and how long that takes; with an event, also how long its first invocation then takes (what a cold start
pays after INIT: the AWS SDK and the clients, made on first use). tests/unit/test_handler_imports.py and
``threadrunner bench imports`` use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"

# Imports the handler module as Lambda does (by file), then prints the top-level packages now loaded and the
# import's wall time. ``also`` names library modules the function loads on first use (an engine, a tool). With
# an event (argv[3]), it then times one invocation with it, as the first after INIT.
_PROBE = """
import importlib, importlib.util, json, sys, time
before = set(sys.modules)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
seconds = time.perf_counter() - start
assert callable(module.lambda_handler)
at_init = sorted({name.split(".")[0] for name in set(sys.modules) - before})
first_call = None
event = json.loads(sys.argv[3])
if event is not None:
    class Context:
        function_name = "probe"
        function_version = "$LATEST"
        memory_limit_in_mb = 1024
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:probe"
        aws_request_id = "probe-request"
        def get_remaining_time_in_millis(self):
            return 30_000
    start = time.perf_counter()
    answer = module.lambda_handler(event, Context())
    first_call = time.perf_counter() - start
    assert answer["statusCode"] == 200, answer
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
on_use = sorted({name.split(".")[0] for name in set(sys.modules) - before})
print(json.dumps({"seconds": seconds, "at_init": at_init, "on_use": on_use, "first_call": first_call}))
"""
_BASELINE = """
import json, time
start = time.perf_counter()
import openai
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


@dataclass(frozen=True)
class Probe:
    seconds: float
    at_init: frozenset[str]  # top-level packages the handler module imported
    on_use: frozenset[str]  # ... and those the function's lazily loaded modules add
    first_call: float | None = None  # seconds of the first invocation after INIT, when given an event


def api_first_request() -> dict[str, Any]:
    """``GET /v1/openapi.json`` as API Gateway hands it to the API function (a caller's token checked): its
    first answer builds what every first request builds (the clients, hence boto3; the route table, hence the
    OpenAPI models) and goes nowhere over the network, so it runs without AWS."""
    path = "/v1/openapi.json"
    return {
        "version": "2.0",
        "routeKey": f"GET {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "application/json", "host": "probe.example"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "probe",
            "authorizer": {"jwt": {"claims": {"sub": "probe-user"}, "scopes": None}},
            "domainName": "probe.example",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": "probe-request",
            "routeKey": f"GET {path}",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000,
        },
        "isBase64Encoded": False,
    }


def lambda_environment(*, kind: str | None, tool: str | None = None, traced: bool = True) -> dict[str, str]:
    """A Lambda-like environment: settings validate, and with ``traced`` Powertools traces as in AWS (it
    turns tracing off outside Lambda, so LAMBDA_TASK_ROOT says we are in one)."""
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        "POWERTOOLS_SERVICE_NAME": "threadrunner",
        "POWERTOOLS_TRACE_DISABLED": "false" if traced else "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if traced:
        environment["LAMBDA_TASK_ROOT"] = str(FUNCTIONS_DIR)
    if kind is not None:
        environment["THREADRUNNER_FUNCTION_KIND"] = kind
    if tool is not None:
        environment["THREADRUNNER_TOOL_NAME"] = tool
    return environment


def probe(
    folder: str,
    environment: dict[str, str],
    also: tuple[str, ...] = (),
    python: str = sys.executable,
    event: dict[str, Any] | None = None,
) -> Probe:
    """Import ``functions/<folder>/handler.py`` in a fresh interpreter under ``environment`` (then invoke it
    once with ``event``, if given: it must answer 200)."""
    arguments = [str(FUNCTIONS_DIR / folder / "handler.py"), json.dumps(list(also)), json.dumps(event)]
    result = subprocess.run(  # noqa: S603 - our interpreter, our probe, our handler's path
        [python, "-c", _PROBE, *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing functions/{folder}/handler.py failed:\n{result.stderr}")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    return Probe(
        found["seconds"], frozenset(found["at_init"]), frozenset(found["on_use"]), found["first_call"]
    )


def openai_import_seconds(python: str = sys.executable) -> float:
    result = subprocess.run(  # noqa: S603 - our interpreter, fixed code
        [python, "-c", _BASELINE], capture_output=True, text=True, check=True, env={"PATH": ""}
    )
    return float(json.loads(result.stdout)["seconds"])


def folders() -> list[str]:
    return sorted(path.parent.name for path in FUNCTIONS_DIR.glob("*/handler.py"))


def run_all(calls: list[tuple[str, dict[str, str], tuple[str, ...]]], workers: int = 2) -> list[Probe]:
    """``probe`` for each (folder, environment, also), ``workers`` at a time."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda call: probe(*call), calls))

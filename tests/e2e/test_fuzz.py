"""Fuzzing with schemathesis against the API's own OpenAPI document, on the local stack: every check
(``--checks all``) in every phase (examples, coverage, fuzzing: one test per operation; stateful: sequences
of calls linked by the ids they return). No request may make the API answer 5xx or anything its document does
not describe, a request the document calls valid must be taken and one it calls invalid refused, and a method
a path lacks is a 405 with ``Allow``. Seeded and derandomized, so a run repeats; about half a minute.

What the fuzzer sees is its own, so that an answer depends on the request alone, as Hypothesis assumes when it
replays a case: each operation's test and each sequence of calls is a user of its own (and an operator of its
own for the operators' routes), and the one route that shows every user's data, ``GET /v1/admin/runs``, is
asked for that user's runs only (``user_id``). Before, it answered every run the session's other tests had left
active (tests/e2e/conftest.py: one stack for the session) or set going, so the same request answered one
thing, then another: Hypothesis replayed a failing case, got another answer, and reported "Inconsistent
results" instead of the finding; and a sequence replayed against the data of the ones before it took other
links ("Inconsistent data generation").
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, assume, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import OperationConfig
from threadrunner import idempotency
from threadrunner.http.openapi_document import api_document
from threadrunner.settings import FileSettings, OperatorSettings, RunSettings, ToolSettings

from local.auth import issue_token
from local.emulator import EmulatorServer
from local.stack import LocalStack

SEED = 20261207
API_HANDLER = Path(__file__).resolve().parents[2] / "functions" / "api" / "handler.py"
# 40 examples of each operation (besides the coverage phase's own), 30 sequences of up to 10 calls. A failure is
# reported as found, without shrinking: each shrinking step is requests, and the budget is seconds.
FUZZED = settings(
    max_examples=40,
    stateful_step_count=10,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
SEQUENCES = settings(FUZZED, max_examples=30)
load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())


def _document_the_stack_serves() -> dict[str, Any]:
    """The API's document with the local stack's settings (the defaults), as GET /v1/openapi.json answers it:
    parametrizing needs it when the module is collected, before any stack runs. A test below holds the two equal.
    """
    spec = importlib.util.spec_from_file_location("api_handler_for_fuzzing", API_HANDLER)
    assert spec is not None and spec.loader is not None
    handler = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = handler  # pydantic resolves annotations through it
    spec.loader.exec_module(handler)
    return api_document(
        handler.app, assistants_dir=ToolSettings().assistants_dir, files=FileSettings(), runs=RunSettings()
    )


DOCUMENT = _document_the_stack_serves()
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.seed = SEED
# GET /v1/usage checks from and to against each other and against today: rules of two parameters (its document
# says them in words) that JSON Schema cannot state, so a range each of whose days is valid may be a 422.
schema.config.operations.operations.append(
    OperationConfig.from_dict(
        {
            "include-path": "/v1/usage",
            "include-method": "GET",
            "checks": {
                "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "422", "429"]}
            },
        }
    )
)


class Fuzzer:
    """Who the fuzzer is now: a user, and an operator, new for each operation and each sequence of calls."""

    _numbers = itertools.count()
    _keys = itertools.count()
    user = "fuzzer"
    tokens: ClassVar[dict[str, str]] = {}

    @classmethod
    def become_new(cls) -> None:
        cls.user = f"fuzzer-{next(cls._numbers)}"
        operator = issue_token(f"{cls.user}-operator", groups=[OperatorSettings().admin_group])
        cls.tokens = {"user": issue_token(cls.user), "operator": operator}

    @classmethod
    def new_idempotency_key(cls) -> str:
        return f"fuzz-{next(cls._keys)}"


Fuzzer.become_new()  # collecting the tests builds cases already


@schema.auth(refresh_interval=None)  # no caching: the fuzzer changes
class FuzzerTokens:
    """The fuzzer's token, or its operator's on the operators' routes (as anyone else they only answer 403)."""

    def get(self, case: Any, context: Any) -> dict[str, str]:
        return Fuzzer.tokens

    def set(self, case: Any, data: dict[str, str], context: Any) -> None:
        token = data["operator"] if case.path.startswith("/v1/admin/") else data["user"]
        case.headers["Authorization"] = f"Bearer {token}"


def _sent_as_generated(case: Any) -> bool:
    """Make ``case`` the fuzzer's own, unchanged as to what it tests; False: a case not to send.

    - The list of every user's active runs is asked for the fuzzer's own: other users' runs are not its.
    - Each request is a new one: a valid Idempotency-Key is made unique (a key used again with another body is
      a 422 by design, which tests/e2e/test_idempotency.py holds).
    - API Gateway decodes a path before routing it: an encoded / or ? in a parameter ends the segment or the
      path, and % is decoded twice. Such a request is one for another path, fuzzed as that path.
    """
    if any(set("/?%") & set(str(value)) for value in (case.path_parameters or {}).values()):
        return False
    if case.operation.label == "GET /v1/admin/runs":
        case.query = {"user_id": Fuzzer.user, **(case.query or {})}
    key = (case.headers or {}).get(idempotency.HEADER)
    if isinstance(key, str) and re.fullmatch(idempotency.KEY_PATTERN, key):
        case.headers[idempotency.HEADER] = Fuzzer.new_idempotency_key()
    return True


def _settle(stack: LocalStack, timeout: float = 30) -> None:
    """Wait until the work a request set going is done: no execution running, no function either (a run that
    ends may start the next one queued on its thread, a delete hands over to a function)."""
    executions = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = executions.list_executions(stateMachineArn=stack.state_machine_arn, statusFilter="RUNNING")
        if not running["executions"] and stack.lambdas.wait_idle(timeout=deadline - time.monotonic()):
            running = executions.list_executions(
                stateMachineArn=stack.state_machine_arn, statusFilter="RUNNING"
            )
            if not running["executions"]:
                return
        time.sleep(0.01)
    raise AssertionError(f"the stack was still busy after {timeout} s")


@pytest.fixture
def stack(local_stack: LocalStack, upstream: EmulatorServer) -> Iterator[LocalStack]:
    """The stack, settled, for a fuzzer new to it; nothing left running afterwards."""
    Fuzzer.become_new()
    _settle(local_stack)
    yield local_stack
    local_stack.abort_executions()


def test_the_fuzzed_document_is_the_one_the_stack_serves(stack: LocalStack) -> None:
    token = issue_token(Fuzzer.user)
    served = httpx.get(f"{stack.api_url}/v1/openapi.json", headers={"Authorization": f"Bearer {token}"})

    assert served.status_code == 200
    assert served.json() == DOCUMENT


@schema.parametrize()
@FUZZED
def test_every_operation_answers_as_documented(case: Any, stack: LocalStack) -> None:
    if _sent_as_generated(case):
        case.call_and_validate(base_url=stack.api_url, checks=ALL_CHECKS)


def test_sequences_of_calls_answer_as_documented(stack: LocalStack) -> None:
    class Workflows(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            Fuzzer.become_new()  # a sequence replayed meets the world it met the first time

        def before_call(self, case: Any) -> None:
            assume(_sent_as_generated(case))

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)  # recorded for the checks that look back (use after free, ...)
            _settle(stack)  # which links a step opens must not depend on how far a run got meanwhile

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": stack.api_url}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(
                response, checks=ALL_CHECKS, transport_kwargs=kwargs, recorder=self.recorder
            )

    Workflows.run(settings=SEQUENCES)

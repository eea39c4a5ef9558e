"""Fuzzing with schemathesis against the API's own OpenAPI document, on the local stack, with a valid token:
no 5xx, every answer documented (status code, content type, body schema, headers), and requests outside the
document refused with a 4xx. Bounded: a few examples per operation and mode, derandomized so a run repeats.

(One test over every operation rather than ``schemathesis.pytest.from_fixture``: its lazy loader renames
pytest nodes through an attribute pytest 9 no longer has.)"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from threadrunner.settings import OperatorSettings

from local.auth import issue_token
from local.emulator import EmulatorServer
from local.stack import LocalStack
from tests.e2e.conftest import new_thread

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
# Per operation and mode: 17 operations x 2 modes x 20 examples take about half a minute on the local stack.
BOUNDED = settings(
    max_examples=20, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def _deletes_last(operation: Any) -> tuple[bool, bool, str]:
    """Deleting the caller's data goes last, other deletes just before: the rest fuzz live resources."""
    return operation.path == "/v1/users/me/data", operation.method.upper() == "DELETE", operation.label


def test_the_api_answers_every_generated_request_as_documented(
    local_stack: LocalStack, upstream: EmulatorServer
) -> None:
    # Given the API's own document and a user of its own (its fuzzed deletes touch nobody else),
    fuzzer = f"fuzzer-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {issue_token(fuzzer)}"}
    # The operators' routes are fuzzed as an operator (as anyone else they only answer 403)
    operator = {"Authorization": f"Bearer {issue_token(fuzzer, groups=[OperatorSettings().admin_group])}"}
    client = httpx.Client(base_url=local_stack.api_url, headers=headers, timeout=30)
    document = client.get("/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    # with a thread, a run and a file of theirs, so that requests reach more than "not found"
    thread = new_thread(client, "fuzzed")
    run = client.post(f"/v1/threads/{thread['id']}/runs", json={"message": "How many customers?"}).json()
    file = client.post(
        "/v1/files",
        json={"thread_id": thread["id"], "filename": "a.csv", "content_type": "text/csv", "size_bytes": 5},
    ).json()
    known = {"thread_id": thread["id"], "run_id": run["id"], "file_id": file["id"]}
    failures: dict[str, str] = {}
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_deletes_last)
    assert len(operations) >= 15
    # When every operation gets valid and invalid requests (valid ones on the user's own resources)
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            ids = {p.name: known[p.name] for p in operation.path_parameters if p.name in known}
            strategy = operation.as_strategy(
                generation_mode=mode, path_parameters=ids if mode is GenerationMode.POSITIVE else None
            )

            @BOUNDED
            @given(case=strategy)
            def answers_as_documented(case: Any) -> None:
                caller = operator if case.path.startswith("/v1/admin/") else headers
                case.call_and_validate(base_url=local_stack.api_url, headers=caller, checks=CHECKS)

            try:
                answers_as_documented()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to get wrong: no input
            except (AssertionError, BaseExceptionGroup) as failure:  # reported per operation below
                failures[f"{operation.label} ({mode.value})"] = str(failure)
    client.close()
    local_stack.abort_executions()  # the runs the fuzzing queued
    # Then none answered a 5xx or anything the document does not say
    assert failures == {}, "\n\n".join(f"{name}:\n{failure}" for name, failure in failures.items())

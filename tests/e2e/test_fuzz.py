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

from local.auth import issue_token
from local.stack import LocalStack

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


def test_the_api_answers_every_generated_request_as_documented(local_stack: LocalStack) -> None:
    # Given the API's own document and a user of its own (its fuzzed deletes touch nobody else)
    headers = {"Authorization": f"Bearer {issue_token(f'fuzzer-{uuid.uuid4().hex[:8]}')}"}
    document = httpx.get(f"{local_stack.api_url}/v1/openapi.json", headers=headers, timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    # When every operation gets valid and invalid requests
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @BOUNDED
            @given(case=operation.as_strategy(generation_mode=mode))
            def answers_as_documented(case: Any) -> None:
                case.call_and_validate(base_url=local_stack.api_url, headers=headers, checks=CHECKS)

            try:
                answers_as_documented()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to get wrong: no input
            except (AssertionError, BaseExceptionGroup) as failure:  # reported per operation below
                failures[f"{operation.label} ({mode.value})"] = str(failure)
    # Then none answered a 5xx or anything the document does not say
    assert failures == {}, "\n\n".join(f"{name}:\n{failure}" for name, failure in failures.items())

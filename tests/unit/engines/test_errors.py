"""Upstream error messages reach the run's error, the workflow state and the logs: keys in them are masked."""

from __future__ import annotations

import httpx
import openai
import pytest
from threadrunner.engines.errors import redact_keys, upstream_errors
from threadrunner.errors import UpstreamUnauthorized


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Incorrect API key provided: sk-test-e2e.", "Incorrect API key provided: sk-***"),
        ("key sk-proj-AbC_123-xyz is revoked", "key sk-*** is revoked"),
        ("Incorrect API key provided: sk-proj-****abcd", "Incorrect API key provided: sk-***"),
        ("the task-sk-ip flag and desk-lamp stay", "the task-sk-ip flag and desk-lamp stay"),
    ],
)
def test_keys_in_a_message_are_masked_and_other_words_are_not(text: str, masked: str) -> None:
    assert redact_keys(text) == masked


def test_a_401_quoting_the_key_becomes_an_error_without_it() -> None:
    # Given an upstream that quotes the key it was given, as a wrong key's 401 does
    request = httpx.Request("POST", "https://api.openai.com/v1/responses")
    body = {"message": "Incorrect API key provided: sk-test-secret-123.", "code": "invalid_api_key"}
    response = httpx.Response(401, request=request, json={"error": body})
    # When the SDK's error goes through the engines' mapping
    with pytest.raises(UpstreamUnauthorized) as refused, upstream_errors():
        raise openai.AuthenticationError("Error code: 401", response=response, body=body)
    # Then our error says what happened, without the key
    assert str(refused.value) == "the upstream refused the request (401): Incorrect API key provided: sk-***"

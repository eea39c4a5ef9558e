"""Upstream error messages reach the run's error, the workflow state and the logs: keys in them are masked."""

from __future__ import annotations

import httpx
import httpx2
import openai
import pytest
from threadrunner.engines.errors import redact_keys, upstream_errors
from threadrunner.errors import UpstreamOutcomeUnknown, UpstreamUnauthorized, UpstreamUnavailable


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


def _status_error(status: int) -> openai.APIStatusError:
    request = httpx.Request("POST", "https://api.openai.com/v1/responses")
    response = httpx.Response(status, request=request, json={"error": {"message": "bad gateway"}})
    return openai.InternalServerError(f"Error code: {status}", response=response, body=None)


def _connection_error(cause: Exception, *, timeout: bool = False) -> openai.APIConnectionError:
    request = httpx2.Request("POST", "https://api.openai.com/v1/responses")
    error = openai.APITimeoutError(request=request) if timeout else openai.APIConnectionError(request=request)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_answering_a_create_leaves_its_outcome_unknown(status: int) -> None:
    # A proxy's 502/504 may follow a create the upstream accepted; so may the upstream's own 500/503
    unknown = pytest.raises(UpstreamOutcomeUnknown, match=f"answered {status} to a create call")
    with unknown, upstream_errors(creating=True):
        raise _status_error(status)
    # while a 5xx answering a call that creates nothing is an outage, retried by the workflow
    with pytest.raises(UpstreamUnavailable), upstream_errors():
        raise _status_error(status)


@pytest.mark.parametrize(
    "cause", [httpx2.ConnectError("refused"), httpx2.ConnectTimeout("no answer"), httpx2.PoolTimeout("full")]
)
def test_a_create_whose_connection_was_never_made_is_an_outage(cause: Exception) -> None:
    # Nothing was sent: the upstream provably created nothing, so the run may fall back or be retried
    timeout = isinstance(cause, httpx2.TimeoutException)
    with pytest.raises(UpstreamUnavailable), upstream_errors(creating=True):
        raise _connection_error(cause, timeout=timeout)


@pytest.mark.parametrize(
    ("cause", "timeout"),
    [
        (httpx2.ReadTimeout("slow"), True),
        (httpx2.RemoteProtocolError("gone"), False),
        (RuntimeError("?"), False),
    ],
)
def test_a_create_cut_after_it_was_sent_leaves_its_outcome_unknown(cause: Exception, timeout: bool) -> None:
    with pytest.raises(UpstreamOutcomeUnknown), upstream_errors(creating=True):
        raise _connection_error(cause, timeout=timeout)

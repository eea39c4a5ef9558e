"""The OpenAI API contract: check a recorded exchange against the official OpenAPI description.

``validate_exchange(exchange)`` validates the request (what our client sent) and the response (what the
emulator answered) of one ``local.emulator.Exchange`` and raises ``AssertionError`` listing every mismatch.
The description is loaded once per process (about 2 s): ``openai_contract()``.

The document is used as the service is, with these documented adjustments made at load time:
- its discriminators have no ``mapping`` and name member types that are not schema names, so the validator
  cannot resolve them: each discriminated union is checked as the plain union (``anyOf``) it describes;
- it documents only 429 among error statuses, while every error of the API has the ``ErrorResponse``
  shape: each operation gets that as its ``default`` response;
- ``GET /files/{id}/content`` is documented as a JSON string but serves the file's raw bytes;
- binary values are typed the OpenAPI 3.0 way (``type: string, format: binary``), which in 3.1 rejects the
  bytes the validator hands over: they are checked as present, not as strings;
- ``MCPApprovalResponse`` and ``MCPApprovalResponseResource`` require a ``request_id`` they do not define
  (the SDK and the service name it ``approval_request_id``, which they also require): that stray name is
  dropped from their ``required``;
- the Assistants schemas (``RunObject``, ``CreateRunRequest``...) mark optional values with the OpenAPI 3.0
  keyword ``nullable: true``, which a 3.1 document no longer has (3.1 validators ignore it), so the
  ``null``s the real service sends (``required_action``, ``last_error``, ``started_at``...) would fail:
  each such schema is read as 3.0 meant it, the schema or ``null``.

A streamed answer (``text/event-stream``: ``stream: true``, ``GET /v1/responses/{id}?stream=true``) is checked
event by event: each Responses event against ``ResponseStreamEvent`` (its SSE event name must be its ``type``),
each chat chunk against ``CreateChatCompletionStreamResponse`` (the stream ends with ``data: [DONE]`` unless
the client closed it early): ``stream_event_problems(exchange)``.

The webhook endpoints API (``/v1/webhook_endpoints``) is newer than the document: its exchanges are checked
against the pinned SDK's types instead (tests/support/webhook_contract.py). The events OpenAI POSTs are in
the document's ``webhooks`` section: ``webhook_event_schema_problems(payload)``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError
from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.testing import MockRequest, MockResponse

from local.emulator import Exchange
from tests.support.webhook_contract import endpoints_exchange_problems, is_webhook_endpoints_call

# Vendored in the repository (vendor/openai-openapi/README.md says from where): never read from outside it.
SPEC_PATH = Path(__file__).resolve().parents[2] / "vendor" / "openai-openapi" / "openapi.yaml"
SERVER = "https://api.openai.com"  # the spec's server is https://api.openai.com/v1; our paths keep /v1

_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_ERROR_RESPONSE = {
    "description": "Any error, in the API's error shape.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


@cache
def openai_contract() -> OpenAPI:
    """The OpenAI OpenAPI description, adjusted as the module docstring says, loaded once."""
    # The spec fails strict validation (a schema lists a required property twice) but validates traffic fine.
    return OpenAPI.from_dict(_document(), config=Config(spec_validator_cls=None))


@cache
def _document() -> dict[str, Any]:
    with SPEC_PATH.open() as stream:
        document = yaml.load(stream, Loader=yaml.CSafeLoader)
    _adjust_schemas(document)
    for name in ("MCPApprovalResponse", "MCPApprovalResponseResource"):
        schema = document["components"]["schemas"][name]
        schema["required"] = [field for field in schema["required"] if field in schema["properties"]]
    for path_item in document["paths"].values():
        for method, operation in path_item.items():
            if method in _HTTP_METHODS:
                operation["responses"].setdefault("default", _ERROR_RESPONSE)
    download = document["paths"]["/files/{file_id}/content"]["get"]["responses"]["200"]
    download["content"] = {"application/octet-stream": {"schema": {"format": "binary"}}}
    return document


def validate_exchange(exchange: Exchange) -> None:
    """Raise ``AssertionError`` naming every way ``exchange`` departs from the contract."""
    if exchange.fault:  # a wire fault a test scripted on purpose
        return
    if is_webhook_endpoints_call(exchange):  # newer than the document: the SDK's types are its contract
        if exchange.status >= 400:
            _fail_on(exchange, [f"response: {message}" for message in _error_shape_problems(exchange)])
        else:
            _fail_on(exchange, endpoints_exchange_problems(exchange))
        return
    contract = openai_contract()
    request = MockRequest(
        SERVER,
        exchange.method,
        exchange.path,
        args=exchange.query,
        headers=exchange.request_headers,
        data=exchange.request_body,
        content_type=exchange.request_headers.get("content-type", "application/json"),
    )
    response = MockResponse(
        exchange.response_body,
        status_code=exchange.status,
        headers=exchange.response_headers,
        content_type=exchange.response_headers.get("content-type", "application/json"),
    )
    request_errors = list(contract.iter_request_errors(request))
    if any(isinstance(error, PathError) for error in request_errors):  # a route the API does not have
        problems = [f"response: {message}" for message in _error_shape_problems(exchange)]
    elif _is_event_stream(exchange):
        problems = [f"request: {_describe(error)}" for error in request_errors]
        problems += [f"response: {message}" for message in stream_event_problems(exchange)]
    else:
        # A request the emulator refused as malformed or unauthenticated need not match the contract.
        expect_valid_request = exchange.status not in (400, 401)
        problems = [f"request: {_describe(error)}" for error in request_errors if expect_valid_request]
        problems += [
            f"response: {_describe(error)}" for error in contract.iter_response_errors(request, response)
        ]
    _fail_on(exchange, problems)


def _fail_on(exchange: Exchange, problems: list[str]) -> None:
    if problems:
        summary = f"{exchange.method} {exchange.path} -> {exchange.status}"
        raise AssertionError(f"{summary} breaks the OpenAI contract:\n  " + "\n  ".join(problems))


def webhook_event_schema_problems(payload: Any) -> list[str]:
    """A webhook event's payload against the schema its ``type`` has in the document's ``webhooks``."""
    document = _document()
    for webhook in document["webhooks"].values():
        reference = webhook["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = document["components"]["schemas"][reference.rsplit("/", 1)[-1]]
        if payload.get("type") in schema["properties"]["type"]["enum"]:
            validator = Draft202012Validator({**schema, "components": document["components"]})
            return [f"{_where(error)}: {error.message}" for error in validator.iter_errors(payload)]
    return [f"the document has no webhook of type {payload.get('type')!r}"]


def _is_event_stream(exchange: Exchange) -> bool:
    return exchange.response_headers.get("content-type", "").startswith("text/event-stream")


def server_sent_events(body: bytes) -> list[tuple[str | None, str]]:
    """``(event name, data)`` of each complete event in an SSE body (a stream cut short ends mid-event)."""
    events = []
    for block in body.decode().split("\n\n")[:-1]:
        name, data = None, []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            if field == "event":
                name = value.strip()
            elif field == "data":
                data.append(value[1:] if value.startswith(" ") else value)
        events.append((name, "\n".join(data)))
    return events


def stream_event_problems(exchange: Exchange) -> list[str]:
    """Each event of a streamed answer against its schema in the document (see the module docstring)."""
    chat = exchange.path.endswith("/chat/completions")
    events = server_sent_events(exchange.response_body)
    if exchange.path.startswith("/v1/threads"):  # an Assistants stream: each event is its name and data
        assistants = _stream_validator("AssistantStreamEvent")
        return [
            f"event {index} ({name}) at {_where(error)}: {_reason(error)}"
            for index, (name, data) in enumerate(events)
            for error in assistants.iter_errors(
                {"event": name, "data": data if data == "[DONE]" else json.loads(data)}
            )
        ]
    validator = _stream_validator("CreateChatCompletionStreamResponse" if chat else "ResponseStreamEvent")
    problems = []
    for index, (name, data) in enumerate(events):
        if chat and data == "[DONE]":
            if index != len(events) - 1:
                problems.append(f"event {index}: [DONE] before the end")
            continue
        event = json.loads(data)
        if not chat and name != event.get("type"):
            problems.append(f"event {index}: named {name!r}, of type {event.get('type')!r}")
        problems += [
            f"event {index} at {_where(error)}: {_reason(error)}" for error in validator.iter_errors(event)
        ]
    return problems


@cache
def _stream_validator(schema_name: str) -> Draft202012Validator:
    document = _document()
    schema = document["components"]["schemas"][schema_name]
    return Draft202012Validator({**schema, "components": document["components"]})


def _adjust_schemas(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = _nullable_as_31(value)
        if node.get("format") == "binary" and node.get("type") == "string":
            del node["type"]
        if "discriminator" in node:
            del node["discriminator"]
            if "oneOf" in node:
                # Members overlap (e.g. EasyInputMessage and InputMessage), so "exactly one" would reject
                # valid items the discriminator would have routed; "at least one" is the union's meaning.
                node["anyOf"] = node.pop("oneOf")
        for value in node.values():
            _adjust_schemas(value)
    elif isinstance(node, list):
        for value in node:
            _adjust_schemas(value)


def _nullable_as_31(node: Any) -> Any:
    """``{..., nullable: true}`` (OpenAPI 3.0) as ``anyOf: [{...}, {type: null}]`` (3.1); also the
    ``allOf: [{$ref: X}, {nullable: true}]`` form, which makes X nullable."""
    if not isinstance(node, dict):
        return node
    members = node.get("allOf")
    if isinstance(members, list) and {"nullable": True} in members:
        rest = [member for member in members if member != {"nullable": True}]
        node = {**{k: v for k, v in node.items() if k != "allOf"}, "allOf": rest, "nullable": True}
    if node.get("nullable") is True:
        schema = {key: value for key, value in node.items() if key != "nullable"}
        return {"anyOf": [schema, {"type": "null"}]}
    return node


@cache
def _error_shape() -> Draft202012Validator:
    error = _document()["components"]["schemas"]["Error"]
    return Draft202012Validator({"type": "object", "required": ["error"], "properties": {"error": error}})


def _error_shape_problems(exchange: Exchange) -> list[str]:
    body = exchange.response_json
    if exchange.status < 400:
        return [f"answered {exchange.status} to a route the contract does not have"]
    return [error.message for error in _error_shape().iter_errors(body)]


def _describe(error: Exception) -> str:
    """The error and, for schema mismatches, each failing place and why."""
    cause = error.__cause__
    details = getattr(cause, "schema_errors", None) or getattr(error, "schema_errors", None) or []
    if not details:
        return f"{type(error).__name__}: {error}" + (f" ({cause})" if cause else "")
    return f"{type(error).__name__}:" + "".join(
        f"\n    at {_where(detail)}: {_reason(detail)}" for detail in details
    )


def _where(detail: ValidationError) -> str:
    return "/".join(str(part) for part in detail.absolute_path) or "(root)"


def _reason(detail: ValidationError) -> str:
    """For a union that matched nothing, what the members of the item's own type object to."""
    if detail.validator not in ("anyOf", "oneOf") or not detail.context:
        return detail.message[:300]
    members: dict[Any, list[ValidationError]] = {}
    for sub in detail.context:
        members.setdefault(sub.relative_schema_path[0], []).append(sub)
    own_type = [*detail.absolute_path, "type"]
    same_kind = [
        errors
        for errors in members.values()
        if not any(e.validator in ("enum", "const") and list(e.absolute_path) == own_type for e in errors)
    ]
    if not same_kind:
        return "matches no member of the union (no member has this item's type)"
    reasons = sorted({f"{_where(e)}: {_reason(e)}" for errors in same_kind for e in errors})
    return "matches no member of the union; " + "; ".join(reasons[:4])

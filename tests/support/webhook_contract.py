"""The webhook side of the OpenAI contract, which the vendored OpenAPI document covers only in part.

- The endpoints API (``/v1/webhook_endpoints``) is newer than the document: an exchange with it is checked
  against the pinned SDK's own types (its request params and its response models, with no field the model
  lacks), as ``openai_contract.validate_exchange`` does for every other route with the document.
- The events themselves are in the document's ``webhooks`` section: ``webhook_event_problems(payload)``
  checks a delivered payload against the schema of its type there, and against the SDK's event type.
"""

from __future__ import annotations

import re
from typing import Any

from openai.types.webhooks import (
    DeletedWebhookEndpoint,
    ResponseCancelledWebhookEvent,
    ResponseCompletedWebhookEvent,
    ResponseFailedWebhookEvent,
    ResponseIncompleteWebhookEvent,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
)
from openai.types.webhooks.webhook_create_params import WebhookCreateParams
from openai.types.webhooks.webhook_list_params import WebhookListParams
from openai.types.webhooks.webhook_rotate_secret_params import WebhookRotateSecretParams
from openai.types.webhooks.webhook_update_params import WebhookUpdateParams
from pydantic import BaseModel, TypeAdapter, ValidationError

from local.emulator import Exchange

_ENDPOINTS = "/v1/webhook_endpoints"
_ONE = r"/v1/webhook_endpoints/[^/]+"


class _Page(BaseModel):
    """The SDK reads a list as its ``SyncCursorPage[WebhookEndpoint]``: these fields."""

    object: str
    data: list[WebhookEndpoint]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


# (method, path pattern) -> (request body or query params, response model)
_OPERATIONS: dict[tuple[str, str], tuple[Any, type[BaseModel]]] = {
    ("POST", _ENDPOINTS): (WebhookCreateParams, WebhookEndpointWithSecret),
    ("GET", _ENDPOINTS): (WebhookListParams, _Page),
    ("GET", _ONE): (None, WebhookEndpoint),
    ("POST", _ONE): (WebhookUpdateParams, WebhookEndpoint),
    ("DELETE", _ONE): (None, DeletedWebhookEndpoint),
    ("POST", _ONE + "/rotate_secret"): (WebhookRotateSecretParams, WebhookEndpointWithSecret),
}
_EVENT_TYPES: dict[str, type[BaseModel]] = {
    "response.completed": ResponseCompletedWebhookEvent,
    "response.failed": ResponseFailedWebhookEvent,
    "response.cancelled": ResponseCancelledWebhookEvent,
    "response.incomplete": ResponseIncompleteWebhookEvent,
}


def is_webhook_endpoints_call(exchange: Exchange) -> bool:
    return exchange.path == _ENDPOINTS or exchange.path.startswith(_ENDPOINTS + "/")


def endpoints_exchange_problems(exchange: Exchange) -> list[str]:
    """What a successful exchange with the endpoints API does that the SDK's types do not allow."""
    operation = next(
        (types for (method, pattern), types in _OPERATIONS.items() if _matches(exchange, method, pattern)),
        None,
    )
    if operation is None:
        return [f"answered {exchange.status} to a route the SDK does not have"]
    params, model = operation
    problems = []
    if params is not None:
        sent = (
            {name: values[-1] for name, values in exchange.query.items()}
            if exchange.method == "GET"
            else exchange.request_json
        )
        problems += [f"request: {problem}" for problem in _type_problems(params, sent)]
    problems += [f"response: {problem}" for problem in model_problems(model, exchange.response_json)]
    return problems


def model_problems(model: type[BaseModel], body: Any) -> list[str]:
    """``body`` against an SDK model: its validation errors, and every field the model does not declare."""
    try:
        model.model_validate(body)
    except ValidationError as error:
        return [f"{'/'.join(map(str, detail['loc']))}: {detail['msg']}" for detail in error.errors()]
    extra = sorted(set(body) - set(model.model_fields))
    return [f"{name}: not a field of {model.__name__}" for name in extra]


def webhook_event_problems(payload: Any) -> list[str]:
    """A delivered event against its schema in the document's ``webhooks`` section and its SDK type."""
    from tests.support.openai_contract import webhook_event_schema_problems  # it imports this module

    event_type = payload.get("type") if isinstance(payload, dict) else None
    model = _EVENT_TYPES.get(str(event_type))
    if model is None:
        return [f"not a response event: type {event_type!r}"]
    return webhook_event_schema_problems(payload) + model_problems(model, payload)


def _matches(exchange: Exchange, method: str, pattern: str) -> bool:
    return exchange.method == method and re.fullmatch(pattern, exchange.path) is not None


def _type_problems(params: Any, sent: Any) -> list[str]:
    try:
        TypeAdapter(params).validate_python(sent, strict=False)
    except ValidationError as error:
        return [f"{'/'.join(map(str, detail['loc']))}: {detail['msg']}" for detail in error.errors()]
    return []

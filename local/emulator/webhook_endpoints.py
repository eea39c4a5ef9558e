"""The webhook endpoints API (``/v1/webhook_endpoints``) and the store of endpoints behind it.

The API is the pinned ``openai`` SDK's ``client.webhooks`` (create, retrieve, update, list, delete,
rotate_secret); it is newer than the vendored OpenAPI document, so its shapes follow the SDK's own types.
Unlike the real service, an ``http://`` URL is accepted (receivers in tests listen on loopback).
What is sent to the endpoints, and when, is local/emulator/webhook_delivery.py.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from typing import Any, get_args, get_type_hints
from urllib.parse import urlsplit

from openai.types.webhooks.webhook_create_params import WebhookCreateParams
from pydantic import BaseModel, ConfigDict, Field, field_validator
from werkzeug.routing import Rule
from werkzeug.wrappers import Request

from local.emulator.bodies import parse
from local.emulator.errors import ApiError, not_found
from local.emulator.items import new_id
from local.emulator.pages import page

# The app routes all of them to ``Webhooks.answer``.
WEBHOOK_ROUTES = [
    Rule("/v1/webhook_endpoints", methods=["GET", "POST"], endpoint="webhook_api"),
    Rule(
        "/v1/webhook_endpoints/<webhook_endpoint_id>",
        methods=["GET", "POST", "DELETE"],
        endpoint="webhook_api",
    ),
    Rule("/v1/webhook_endpoints/<webhook_endpoint_id>/<action>", methods=["POST"], endpoint="webhook_api"),
]
# Every type the SDK can subscribe to, from its own create params (no second list to keep in step).
EVENT_TYPES: tuple[str, ...] = get_args(get_args(get_type_hints(WebhookCreateParams)["event_types"])[0])
_OLD_SECRET_SECONDS = 24 * 3600


class _EndpointFields(BaseModel):
    """What create and update accept, checked alike."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("url", check_fields=False)
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        parts = urlsplit(url or "")
        if url is not None and (parts.scheme not in ("http", "https") or not parts.netloc):
            raise ValueError("must be an http(s) URL")
        return url

    @field_validator("event_types", check_fields=False)
    @classmethod
    def _known_types(cls, event_types: list[str] | None) -> list[str] | None:
        if event_types is not None and (unknown := sorted(set(event_types) - set(EVENT_TYPES))):
            raise ValueError(f"unknown event types {unknown}")
        return None if event_types is None else list(dict.fromkeys(event_types))


class _CreateBody(_EndpointFields):
    name: str = Field(min_length=1, max_length=256)
    url: str
    event_types: list[str] = Field(min_length=1)


class _UpdateBody(_EndpointFields):
    name: str | None = Field(default=None, min_length=1, max_length=256)
    url: str | None = None
    event_types: list[str] | None = Field(default=None, min_length=1)


class _RotateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    keep_old_secret_active_for_24_hours: bool = False


@dataclass
class StoredWebhookEndpoint:
    """One endpoint as the emulator keeps it, its secrets included."""

    id: str
    name: str
    url: str
    event_types: list[str]
    created_at: int
    updated_at: int
    secret: str
    old_secret: tuple[str, float] | None = None  # a rotated-out secret still signing, until when

    def signing_secrets(self) -> list[str]:
        old = [self.old_secret[0]] if self.old_secret and self.old_secret[1] > time.time() else []
        return [self.secret, *old]

    def resource(self, *, with_secret: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "webhook_endpoint",
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "name": self.name,
            "url": self.url,
            "event_types": list(self.event_types),
            "signing_secret_hint": f"whsec_...{self.secret[-4:]}",
        }
        return {**body, "signing_secret": self.secret} if with_secret else body


class WebhookEndpointStore:
    """The endpoints, in creation order. It has no lock of its own: every call runs under its owner's."""

    def __init__(self) -> None:
        self._endpoints: dict[str, StoredWebhookEndpoint] = {}

    def add(
        self, *, name: str, url: str, event_types: list[str], secret: str | None = None
    ) -> dict[str, Any]:
        """The test side's create: checked as a request's body is, signing with ``secret`` when given."""
        return self._create(
            parse(_CreateBody, {"name": name, "url": url, "event_types": event_types}), secret
        )

    def get(self, endpoint_id: str) -> StoredWebhookEndpoint | None:
        return self._endpoints.get(endpoint_id)

    def subscribed_to(self, event_type: str) -> list[StoredWebhookEndpoint]:
        return [endpoint for endpoint in self._endpoints.values() if event_type in endpoint.event_types]

    def answer(
        self, request: Request, body: Any, webhook_endpoint_id: str | None = None, action: str | None = None
    ) -> dict[str, Any]:
        if webhook_endpoint_id is None:
            if request.method == "POST":
                return self._create(parse(_CreateBody, body))
            return page(
                list(self._endpoints.values()), request, resource=StoredWebhookEndpoint.resource, id_of=_id
            )
        endpoint = self._endpoints.get(webhook_endpoint_id)
        if endpoint is None:
            raise not_found(f"No webhook endpoint found with id '{webhook_endpoint_id}'.")
        if action == "rotate_secret":
            return self._rotate(endpoint, parse(_RotateBody, body))
        if action is not None:
            raise ApiError(404, f"Invalid URL ({request.method} {request.path})")
        if request.method == "DELETE":
            del self._endpoints[endpoint.id]
            return {"id": endpoint.id, "object": "webhook_endpoint.deleted", "deleted": True}
        if request.method == "POST":
            self._update(endpoint, parse(_UpdateBody, body))
        return endpoint.resource()

    def _create(self, body: _CreateBody, secret: str | None = None) -> dict[str, Any]:
        now = int(time.time())
        endpoint = StoredWebhookEndpoint(
            id=new_id("we"),
            name=body.name,
            url=body.url,
            event_types=body.event_types,
            created_at=now,
            updated_at=now,
            secret=secret or _new_secret(),
        )
        self._endpoints[endpoint.id] = endpoint
        return endpoint.resource(with_secret=True)

    def _update(self, endpoint: StoredWebhookEndpoint, body: _UpdateBody) -> None:
        changes = body.model_dump(exclude_none=True)
        if any(getattr(endpoint, name) != value for name, value in changes.items()):
            for name, value in changes.items():
                setattr(endpoint, name, value)
            endpoint.updated_at = int(time.time())

    def _rotate(self, endpoint: StoredWebhookEndpoint, body: _RotateBody) -> dict[str, Any]:
        keep = body.keep_old_secret_active_for_24_hours
        endpoint.old_secret = (endpoint.secret, time.time() + _OLD_SECRET_SECONDS) if keep else None
        endpoint.secret = _new_secret()
        endpoint.updated_at = int(time.time())
        return endpoint.resource(with_secret=True)


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _id(endpoint: StoredWebhookEndpoint) -> str:
    return endpoint.id

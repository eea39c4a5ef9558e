"""The operators' kill switch: list active runs of all users, cancel one run or every run of a user, through
the same cancel path as the users' own (services.runs.cancel). Who is an operator: services.admin.is_admin."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from threadrunner.errors import InvalidRequestError
from threadrunner.models.admin import ActiveRunOut, ActiveRunPage, UserRunsCancelled
from threadrunner.models.api import RunOut
from threadrunner.models.records import RunStatus
from threadrunner.services import runs
from threadrunner.services.context import ApiContext
from threadrunner.settings import CostSettings

_PAGE = 100


def is_admin(claims: Mapping[str, Any], settings: CostSettings) -> bool:
    """The token's ``cognito:groups`` holds the admin group, or its ``scope`` the admin scope. API Gateway
    hands claims over as text: an array as ``[a b]``, a scope as ``a b``."""
    groups = str(claims.get("cognito:groups", "")).strip("[]").replace(",", " ").split()
    scopes = str(claims.get("scope", "")).split()
    return settings.admin_group in groups or settings.admin_scope in scopes


def list_active_runs(
    ctx: ApiContext, *, limit: int, after: str | None = None, user_id: str | None = None
) -> ActiveRunPage:
    page, next_key = ctx.runs.list_active(limit=limit, after=_decode(after), user_id=user_id)
    return ActiveRunPage(runs=[ActiveRunOut.of(run) for run in page], next=_encode(next_key))


def cancel_run(ctx: ApiContext, run_id: str) -> tuple[RunOut, bool]:
    return runs.cancel(ctx, ctx.runs.get(run_id))


def cancel_user_runs(ctx: ApiContext, user_id: str) -> UserRunsCancelled:
    """Queued runs first: cancelling the active one first would hand its thread to the next in line."""
    active = []
    key: dict[str, Any] | None = None
    while True:
        page, key = ctx.runs.list_active(limit=_PAGE, after=key, user_id=user_id)
        active.extend(page)
        if key is None:
            break
    active.sort(key=lambda run: run.status is not RunStatus.queued)
    ended: list[str] = []
    cancelling: list[str] = []
    for run in active:
        _, done = runs.cancel(ctx, run)
        (ended if done else cancelling).append(run.id)
    return UserRunsCancelled(user_id=user_id, ended=ended, cancelling=cancelling)


def _encode(key: dict[str, Any] | None) -> str | None:
    if key is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def _decode(cursor: str | None) -> dict[str, Any] | None:
    """A ``next`` this API handed out: an index key of string attributes, nothing else."""
    if cursor is None:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError) as error:
        raise InvalidRequestError("after is not a page cursor of this list", field="after") from error
    expected = {"run_id", "sk", "active", "created_at"}
    if not isinstance(key, dict) or set(key) != expected or not all(isinstance(v, str) for v in key.values()):
        raise InvalidRequestError("after is not a page cursor of this list", field="after")
    return key

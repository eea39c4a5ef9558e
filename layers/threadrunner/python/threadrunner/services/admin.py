"""The operators' kill switch: list active runs of all users, cancel one run or every run of a user, through
the same cancel path as the users' own (services.runs.cancel). Who is an operator: services.admin.is_admin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from threadrunner.models.admin import ActiveRunOut, ActiveRunPage, UserRunsCancelled
from threadrunner.models.api_runs import RunOut
from threadrunner.models.records import RunStatus
from threadrunner.services import runs
from threadrunner.services.context import ApiContext
from threadrunner.settings import OperatorSettings
from threadrunner.stores.runs import ACTIVE, RUN_SK

_PAGE = 100


def is_admin(claims: Mapping[str, Any], settings: OperatorSettings) -> bool:
    """The token's ``cognito:groups`` holds the admin group, or its ``scope`` the admin scope."""
    scopes = str(claims.get("scope", "")).split()
    return settings.admin_group in claim_list(claims.get("cognito:groups")) or settings.admin_scope in scopes


def claim_list(value: Any) -> list[str]:
    """An array claim as the JWT authorizer hands it over: ``[a b]``, its items joined by spaces (Cognito group
    names hold no spaces, but may hold commas and brackets: ``ops,admins`` is one group). A claim that is not
    an array is one item."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(item) for item in value]
    text = str(value)
    if len(text) >= 2 and text.startswith("[") and text.endswith("]"):
        return [item for item in text[1:-1].split(" ") if item]
    return [text]


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
    """The position a page ended at, as ``<created_at>~<run id>`` (ACTIVE_RUNS_CURSOR_PATTERN)."""
    if key is None:
        return None
    return f"{key['created_at']}~{key['run_id']}"


def _decode(cursor: str | None) -> dict[str, Any] | None:
    """The index key of a position (the route checked its pattern): any position is one to go on after."""
    if cursor is None:
        return None
    created_at, run_id = cursor.split("~", 1)
    return {"active": ACTIVE, "created_at": created_at, "run_id": run_id, "sk": RUN_SK}

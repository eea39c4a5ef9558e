"""Who is calling: the token's subject, as API Gateway's JWT authorizer hands over its claims (all text)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from threadrunner.errors import ThreadrunnerError
from threadrunner.models.api import MAX_USER_ID_CHARS
from threadrunner.services.admin import is_admin
from threadrunner.settings import OperatorSettings


class UnauthorizedError(ThreadrunnerError):
    code = "unauthorized"


class ForbiddenError(ThreadrunnerError):
    code = "forbidden"


def caller(claims: Mapping[str, Any]) -> str:
    """The user is the token's subject, checked by the JWT authorizer; never a field of the body. A subject
    longer than a user id may be is refused here: it would be a key too long for DynamoDB (2,048 bytes)."""
    subject = str(claims.get("sub") or "")
    if not subject:
        raise UnauthorizedError("the token has no subject")
    if len(subject) > MAX_USER_ID_CHARS:
        raise UnauthorizedError(f"the token's subject is longer than {MAX_USER_ID_CHARS} characters")
    return subject


def operator(claims: Mapping[str, Any], settings: OperatorSettings) -> str:
    """The kill switch: the route exists for every caller, but only operators may use it (403)."""
    subject = caller(claims)
    if not is_admin(claims, settings):
        raise ForbiddenError("this route is for operators only")
    return subject

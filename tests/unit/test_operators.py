"""Who is an operator: the admin group in cognito:groups, or the admin scope, as API Gateway renders claims."""

from __future__ import annotations

import pytest
from threadrunner.services.admin import is_admin
from threadrunner.settings import CostSettings

from local.auth import api_gateway_claims

SETTINGS = CostSettings(admin_group="ops", admin_scope="threadrunner/admin")


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"sub": "a", "cognito:groups": ["ops"]}, True),
        ({"sub": "a", "cognito:groups": ["staff", "ops"]}, True),
        ({"sub": "a", "scope": "openid threadrunner/admin"}, True),
        ({"sub": "a", "cognito:groups": ["ops-readonly", "staff"]}, False),
        ({"sub": "a", "scope": "threadrunner/admin-lite"}, False),
        ({"sub": "ops"}, False),
    ],
)
def test_operators_are_recognised_by_group_or_scope_only(claims: dict, expected: bool) -> None:
    assert is_admin(api_gateway_claims(claims), SETTINGS) is expected

"""Claims as API Gateway's JWT authorizer hands them over (text): the caller's subject, and cognito:groups, an
array rendered "[a b]" (Cognito group names hold no spaces, but may hold commas and brackets)."""

from __future__ import annotations

import pytest
from threadrunner.http.callers import UnauthorizedError, caller, operator
from threadrunner.services.admin import claim_list, is_admin
from threadrunner.settings import OperatorSettings

from local.auth import api_gateway_claims

SETTINGS = OperatorSettings(admin_group="threadrunner-admins", admin_scope="threadrunner/admin")


@pytest.mark.parametrize(
    ("claim", "items"),
    [
        ("[threadrunner-admins]", ["threadrunner-admins"]),
        ("[staff threadrunner-admins]", ["staff", "threadrunner-admins"]),
        ("[ops,threadrunner-admins]", ["ops,threadrunner-admins"]),
        ("[[threadrunner-admins]", ["[threadrunner-admins"]),
        ("[threadrunner-admins]]", ["threadrunner-admins]"]),
        ("[]", []),
        ("threadrunner-admins", ["threadrunner-admins"]),  # an issuer's plain string claim: one item
        ("ops,threadrunner-admins", ["ops,threadrunner-admins"]),
        (None, []),
        (["a", "b"], ["a", "b"]),
    ],
)
def test_an_array_claim_is_read_as_the_list_it_is(claim: object, items: list[str]) -> None:
    assert claim_list(claim) == items


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (["threadrunner-admins"], True),
        (["staff", "threadrunner-admins"], True),
        (["ops,threadrunner-admins"], False),  # one group, named with a comma
        (["ops", "x,threadrunner-admins,y"], False),
        (["[threadrunner-admins"], False),
        (["threadrunner-admins]"], False),
    ],
)
def test_only_the_operators_group_itself_makes_an_operator(groups: list[str], expected: bool) -> None:
    claims = api_gateway_claims({"sub": "a", "cognito:groups": groups})

    assert is_admin(claims, SETTINGS) is expected


def test_the_subject_is_the_caller_up_to_256_characters() -> None:
    assert caller({"sub": "x" * 256}) == "x" * 256
    assert caller({"sub": "é" * 256}) == "é" * 256
    for claims in ({"sub": "x" * 257}, {"sub": "x" * 3000}, {"sub": ""}, {}):
        with pytest.raises(UnauthorizedError):
            caller(claims)


def test_an_operator_with_too_long_a_subject_is_refused_too() -> None:
    with pytest.raises(UnauthorizedError):
        operator({"sub": "x" * 257, "cognito:groups": "[threadrunner-admins]"}, SETTINGS)

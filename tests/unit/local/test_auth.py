"""Local JWTs: what the token command mints is what the HTTP API accepts, and nothing else is."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from local.auth import (
    AUDIENCE,
    ISSUER,
    TokenRejectedError,
    api_gateway_claims,
    issue_token,
    load_or_create_key,
    local_private_key,
    verify_token,
)


def _signed(claims: dict[str, object], key: rsa.RSAPrivateKey | None = None) -> str:
    return jwt.encode(claims, key or local_private_key(), algorithm="RS256")


def _claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600} | changes


def test_an_issued_token_verifies_with_string_claims() -> None:
    claims = verify_token(issue_token("alice"))

    assert claims["sub"] == "alice"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert int(claims["exp"]) - int(claims["iat"]) == 12 * 3600


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param(lambda: issue_token("alice", expires_in=-5), "expired", id="expired"),
        pytest.param(lambda: _signed(_claims(aud="other")), "(?i)audience", id="wrong audience"),
        pytest.param(lambda: _signed(_claims(iss="https://evil.example")), "issuer", id="wrong issuer"),
        pytest.param(
            lambda: _signed(_claims(nbf=int(time.time()) + 600)), "not yet valid", id="not yet valid"
        ),
        pytest.param(
            lambda: _signed(_claims(), rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "verification failed",
            id="another key",
        ),
        pytest.param(
            lambda: jwt.encode(_claims(), "a-shared-secret-of-32-bytes-long!", algorithm="HS256"),
            "alg value is not allowed",
            id="HS256",
        ),
        pytest.param(
            lambda: _signed({k: v for k, v in _claims().items() if k != "sub"}), "sub", id="no subject"
        ),
        pytest.param(lambda: "not-a-jwt", "segments", id="garbage"),
        pytest.param(
            lambda: _signed({k: v for k, v in _claims().items() if k != "aud"}),
            "aud or client_id",
            id="no audience",
        ),
        pytest.param(
            lambda: _signed({k: v for k, v in _claims(client_id="other").items() if k != "aud"}),
            "(?i)audience",
            id="another client",
        ),
    ],
)
def test_tokens_the_authorizer_would_refuse_are_rejected(token: object, reason: str) -> None:
    with pytest.raises(TokenRejectedError, match=reason):
        verify_token(token())  # type: ignore[operator]


@pytest.mark.parametrize(
    "audience",
    [{"aud": AUDIENCE}, {"aud": ["other", AUDIENCE]}, {"client_id": AUDIENCE}],
    ids=["aud", "one of several", "client_id"],
)
def test_the_audience_is_aud_or_else_client_id_as_the_authorizer_takes_it(
    audience: dict[str, object],
) -> None:
    claims = {k: v for k, v in _claims().items() if k != "aud"} | audience

    assert verify_token(_signed(claims))["sub"] == "alice"


def test_claims_are_rendered_like_api_gateway() -> None:
    rendered = api_gateway_claims(
        {
            "sub": "alice",
            "exp": 1700000000,
            "admin": True,
            "groups": ["a", "b"],
            "meta": {"k": 1},
            "gone": None,
        }
    )

    assert rendered == {
        "sub": "alice",
        "exp": "1700000000",
        "admin": "true",
        "groups": "[a b]",
        "meta": '{"k":1}',
    }


def test_the_key_file_is_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "jwt-private-key.pem"

    first = load_or_create_key(path)
    second = load_or_create_key(path)

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first.private_numbers() == second.private_numbers()
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]  # no drafts left behind


def test_concurrent_first_uses_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "jwt-private-key.pem"
    keys: list[rsa.RSAPrivateKey] = []

    workers = [threading.Thread(target=lambda: keys.append(load_or_create_key(path))) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert len(keys) == 6
    assert len({key.private_numbers().d for key in keys}) == 1


def test_an_empty_user_is_refused() -> None:
    with pytest.raises(ValueError, match="user"):
        issue_token("  ")

"""Local JWTs: signed with a key kept in ``.local/`` and checked the way the HTTP API's JWT authorizer does.

The key lives on disk (0600, gitignored) so ``threadrunner token`` in one terminal mints tokens that
``threadrunner local`` in another accepts.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://threadrunner.local"
AUDIENCE = "threadrunner"
TOKEN_LIFETIME_SECONDS = 12 * 3600
KEY_PATH = Path(__file__).resolve().parents[1] / ".local" / "jwt-private-key.pem"

_key_lock = threading.Lock()
_keys: dict[Path, rsa.RSAPrivateKey] = {}


class TokenRejectedError(ValueError):
    """The token would not pass the JWT authorizer; the message says why."""


def issue_token(
    user: str,
    *,
    expires_in: int = TOKEN_LIFETIME_SECONDS,
    groups: list[str] | None = None,
    scope: str | None = None,
) -> str:
    """A token for ``user`` (its ``sub``), signed with the local key; ``groups`` become ``cognito:groups``
    (an operator: the admin group) and ``scope`` the token's scopes, as Cognito issues them."""
    if not user.strip():
        raise ValueError("user must not be empty")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user,
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
    }
    if groups:
        claims["cognito:groups"] = groups
    if scope:
        claims["scope"] = scope
    return jwt.encode(claims, local_private_key(), algorithm="RS256")


def verify_token(token: str) -> dict[str, str]:
    """Check signature (RS256), issuer, audience, expiry and not-before; return the claims as API Gateway
    hands them to the Lambda (every value a string).

    The audience is ``aud`` or, without one, ``client_id`` (what Cognito access tokens carry), as the
    authorizer takes either."""
    try:
        claims = jwt.decode(
            token,
            local_private_key().public_key(),
            algorithms=["RS256"],
            issuer=ISSUER,
            options={"require": ["iss", "sub", "exp"], "verify_aud": False},
        )
    except jwt.InvalidTokenError as error:
        raise TokenRejectedError(str(error) or type(error).__name__) from error
    audience = claims.get("aud", claims.get("client_id"))
    audiences = audience if isinstance(audience, list) else [audience]
    if AUDIENCE not in audiences:
        raise TokenRejectedError("Invalid audience" if audience is not None else "no aud or client_id claim")
    return api_gateway_claims(claims)


def api_gateway_claims(claims: dict[str, Any]) -> dict[str, str]:
    """Render claims like the JWT authorizer: numbers and booleans as text, arrays as ``[a b]``,
    objects as JSON, null claims left out."""
    rendered = {}
    for name, value in claims.items():
        if value is None:
            continue
        rendered[name] = _claim_text(value)
    return rendered


def _claim_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def local_private_key(path: Path = KEY_PATH) -> rsa.RSAPrivateKey:
    """The key at ``path``, created on first use (cached per process)."""
    with _key_lock:
        if path not in _keys:
            _keys[path] = load_or_create_key(path)
        return _keys[path]


def load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    """Read the PEM key at ``path``, generating it first (mode 0600) if it is not there."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Written aside then linked into place: two processes starting at once agree on one key,
        # and nobody ever reads a half-written file.
        draft = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(pem)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return loaded

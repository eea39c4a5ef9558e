"""The user pool's app client, configured on purpose: a public client on the authorization code grant (PKCE,
no secret), never the implicit grant, sending browsers back only to the URLs cdk.json lists per environment."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ConfigError, load_environment
from tests.infra.synth import CDK_CONTEXT, Synthesized

VALID = CDK_CONTEXT["environments"]["dev"]


def _client(synthesized: Synthesized) -> dict[str, Any]:
    _, client = synthesized.only("AWS::Cognito::UserPoolClient")
    return dict(client["Properties"])


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_the_client_uses_the_code_grant_with_the_environments_own_urls(
    name: str, dev: Synthesized, prod: Synthesized
) -> None:
    synthesized = {"dev": dev, "prod": prod}[name]
    client = _client(synthesized)
    environment = CDK_CONTEXT["environments"][name]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthFlows"] == ["code"]
    assert sorted(client["AllowedOAuthScopes"]) == ["email", "openid", "profile"]
    assert client["CallbackURLs"] == environment["oauth_callback_urls"]
    assert client["LogoutURLs"] == environment["oauth_logout_urls"]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    # A public client: no secret to leak, so PKCE protects the code
    assert client["GenerateSecret"] is False
    assert "implicit" not in json.dumps(client)


def test_each_environment_sends_browsers_back_to_its_own_origin() -> None:
    for name, environment in CDK_CONTEXT["environments"].items():
        urls = [*environment["oauth_callback_urls"], *environment["oauth_logout_urls"]]
        assert urls, name
        if name == "dev":
            assert all(url.startswith("http://localhost:") for url in urls)
        else:
            assert all(url.startswith("https://") for url in urls), name


@pytest.mark.parametrize(
    "url",
    [
        "http://app.example.com/callback",  # plain http beyond localhost
        "http://127.0.0.1:3000/callback",  # Cognito allows plain http for localhost only
        "ftp://app.example.com/callback",
        "https://app.example.com/callback#token",  # a fragment: where the implicit grant put tokens
        "https:///callback",
        "app.example.com/callback",
    ],
)
def test_a_callback_or_logout_url_must_be_https_or_localhost(url: str) -> None:
    for key in ("oauth_callback_urls", "oauth_logout_urls"):
        with pytest.raises(
            ConfigError, match=rf"environments\.dev\.{key}\.0: Value error, must be an https://"
        ):
            load_environment({"dev": {**VALID, key: [url]}}, "dev")


def test_the_stacks_own_pool_needs_a_callback_url_and_an_external_issuer_does_not() -> None:
    with pytest.raises(ConfigError, match="oauth_callback_urls must name at least one URL"):
        load_environment({"dev": {**VALID, "oauth_callback_urls": []}}, "dev")
    external = {"issuer": "https://id.example.com", "audience": ["api"]}
    config = load_environment({"dev": {**VALID, "jwt": external, "oauth_callback_urls": []}}, "dev")
    assert config.oauth_callback_urls == []
    accepted = load_environment(
        {"dev": {**VALID, "oauth_callback_urls": ["https://app.example.com/cb", "http://localhost/cb"]}},
        "dev",
    )
    assert accepted.oauth_callback_urls == ["https://app.example.com/cb", "http://localhost/cb"]

"""Build the app the way ``cdk synth`` does (same context from cdk.json) and read the template back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra.app import build
from infra.constants import REPO_ROOT, FunctionName, secret_name
from infra.stack import ThreadrunnerStack

# CDK's own provider that empties a bucket before the stack deletes it (auto_delete_objects, outside prod).
AUTO_DELETE_PROVIDER = "CustomS3AutoDeleteObjectsCustomResourceProvider"
CDK_CONTEXT: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
ENVIRONMENTS = tuple(CDK_CONTEXT["environments"])


@dataclass(frozen=True)
class Synthesized:
    environment: str
    app: cdk.App
    stack: ThreadrunnerStack
    assertions: Template
    template: dict[str, Any]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            key: value for key, value in self.template["Resources"].items() if value["Type"] == resource_type
        }

    def ours(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """As ``resources``, without CDK's auto-delete provider (test_data_protection.py covers it)."""
        return {
            key: value
            for key, value in self.resources(resource_type).items()
            if not key.startswith(AUTO_DELETE_PROVIDER)
        }

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))

    def secret(self, name: str) -> tuple[str, dict[str, Any]]:
        """The Secrets Manager secret named ``name`` (the upstream key's, the webhook signing secret's)."""
        (found,) = [
            (key, value)
            for key, value in self.resources("AWS::SecretsManager::Secret").items()
            if value["Properties"].get("Name") == name
        ]
        return found

    def upstream_secret(self) -> tuple[str, dict[str, Any]]:
        return self.secret(secret_name(self.environment))

    def integration(self, name: FunctionName) -> tuple[str, dict[str, Any]]:
        """The HTTP API's integration with the Lambda of ``functions/<name>``."""
        function_id, _ = self.function(name)
        (found,) = [
            (key, value)
            for key, value in self.resources("AWS::ApiGatewayV2::Integration").items()
            if value["Properties"]["IntegrationUri"] == {"Fn::GetAtt": [function_id, "Arn"]}
        ]
        return found

    def function(self, name: FunctionName) -> tuple[str, dict[str, Any]]:
        """The Lambda for ``functions/<name>`` (by its deployed name), as (logical id, resource)."""
        wanted = name.function_name(self.environment)
        found = [
            (key, value)
            for key, value in self.resources("AWS::Lambda::Function").items()
            if value["Properties"].get("FunctionName") == wanted
        ]
        assert len(found) == 1, f"expected one function named {wanted}"
        return found[0]

    def role_statements(self, name: FunctionName) -> list[dict[str, Any]]:
        """Every IAM statement attached to the function's role (inline policies of that role)."""
        _, function = self.function(name)
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        return self.statements_of_role(role_id)

    def statements_of_role(self, role_id: str) -> list[dict[str, Any]]:
        statements: list[dict[str, Any]] = []
        for policy in self.resources("AWS::IAM::Policy").values():
            if {"Ref": role_id} in policy["Properties"]["Roles"]:
                statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
        return statements


def build_app(
    environment: str, *, outdir: str | None = None, **overrides: Any
) -> tuple[cdk.App, ThreadrunnerStack]:
    """A fresh app for ``environment`` with cdk.json's context, its settings changed by ``overrides``
    (synthesized into ``outdir``, else a temporary directory)."""
    environments = dict(CDK_CONTEXT["environments"])
    if overrides:
        environments[environment] = {**environments[environment], **overrides}
    context = {
        **CDK_CONTEXT,
        "env": environment,
        "environments": environments,
        # Skip layer bundling: no pip, no network; test_bundling.py covers it.
        "aws:cdk:bundling-stacks": [],
    }
    app = cdk.App(context=context, outdir=outdir)
    return app, build(app)


def synthesize_with(environment: str, **overrides: Any) -> Synthesized:
    app, stack = build_app(environment, **overrides)
    assertions = Template.from_stack(stack)
    return Synthesized(environment, app, stack, assertions, dict(assertions.to_json()))


@cache
def synthesize(environment: str) -> Synthesized:
    return synthesize_with(environment)


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def resources_of(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def render(value: Any) -> Any:
    """Intrinsics as readable strings: GetAtt -> ``<Id.Attr>``, Ref -> ``<Id>``, Join -> the joined text."""
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), *_ = value.items()
        if function == "Fn::GetAtt":
            return f"<{argument[0]}.{argument[1]}>"
        if function == "Ref":
            return f"<{argument}>"
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(render(part)) for part in parts)
    return value

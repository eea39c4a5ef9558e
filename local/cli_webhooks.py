"""``threadrunner webhooks register --env ENV``: point the upstream's webhooks at a deployed stack.

It reads the stack's outputs (``threadrunner-ENV``: the API URL, the secrets' names), the upstream API key
from its secret, then registers the endpoint ``threadrunner-ENV`` (local/webhook_registration.py). Every
failure is one line on stderr and exit status 1; the signing secret is never printed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import typer

from local.cli_deployed import BaseUrl, Environment, Region

webhooks_app = typer.Typer(
    no_args_is_help=True, help="Register the upstream's webhooks for a deployed stack."
)


class RegistrationError(Exception):
    """A failure told in one line, which names no secret."""


@dataclass(frozen=True)
class Deployment:
    """Where an environment's webhooks go, and the secrets registration reads and writes."""

    webhook_url: str
    api_key_secret: str
    webhook_secret: str


@webhooks_app.command()
def register(
    env: Environment,
    url: Annotated[
        str | None,
        typer.Option(help="Where the webhooks go (default: the stack's ApiUrl + /v1/webhooks/openai)."),
    ] = None,
    base_url: BaseUrl = None,
    region: Region = None,
) -> None:
    """Create or update the webhook endpoint threadrunner-ENV upstream, for the four response events, and
    keep its signing secret in Secrets Manager; running it again changes nothing."""
    import boto3
    import botocore.exceptions
    import openai

    from local.webhook_registration import endpoint_name, read_secret_field
    from local.webhook_registration import register as register_endpoint

    session = boto3.session.Session(region_name=region)
    try:
        deployment = find_deployment(env, url=url, cloudformation=lambda: session.client("cloudformation"))
        secretsmanager = session.client("secretsmanager")
        api_key = read_secret_field(secretsmanager, deployment.api_key_secret, "api_key")
        if not api_key:
            raise RegistrationError(
                f"no upstream API key in the secret {deployment.api_key_secret}: aws secretsmanager "
                f"put-secret-value --secret-id {deployment.api_key_secret} "
                '--secret-string \'{"api_key": "sk-..."}\''
            )
        with openai.OpenAI(api_key=api_key, base_url=base_url) as client:
            done = register_endpoint(
                client,
                secretsmanager,
                name=endpoint_name(env),
                url=deployment.webhook_url,
                secret_name=deployment.webhook_secret,
            )
    except RegistrationError as error:
        _fail(str(error))
    except openai.APIStatusError as error:
        detail = error.body.get("message") if isinstance(error.body, dict) else None
        _fail(f"the upstream refused ({error.status_code}): {detail or error.message}")
    except openai.APIConnectionError as error:
        _fail(f"could not reach the upstream: {error.message}")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        _fail(f"AWS refused: {error}")
    also = " (and its URL updated)" if done.url_updated and done.outcome == "secret_rotated" else ""
    typer.echo(
        f"{done.outcome.value}{also}: webhook endpoint {done.endpoint_id} delivers to {done.url}; "
        f"its signing secret is in {deployment.webhook_secret}"
    )


def find_deployment(env: str, *, url: str | None, cloudformation: Any) -> Deployment:
    """The environment's names; with ``url`` given, the stack is not read (``cloudformation`` makes its
    client only when needed)."""
    # infra is no installed package: import it from the clone (as `threadrunner bench` does).
    from local.handler_imports import REPO_ROOT

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from threadrunner.http.gateway_routes import OPENAI_WEBHOOK

    from infra.constants import OutputName, secret_name, stack_name, webhook_secret_name

    if url:
        return Deployment(url, secret_name(env), webhook_secret_name(env))
    outputs = _stack_outputs(cloudformation(), stack_name(env))
    api_url = outputs.get(OutputName.api_url.value)
    if not api_url:
        raise RegistrationError(f"the stack {stack_name(env)} has no {OutputName.api_url.value} output")
    return Deployment(
        api_url.rstrip("/") + OPENAI_WEBHOOK.path,
        outputs.get(OutputName.secret_name.value) or secret_name(env),
        outputs.get(OutputName.webhook_secret_name.value) or webhook_secret_name(env),
    )


def _stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    import botocore.exceptions

    try:
        [found] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except botocore.exceptions.ClientError as error:
        if "does not exist" not in str(error):
            raise
        raise RegistrationError(f"no stack {stack} in this account and region: deploy it first") from None
    return {output["OutputKey"]: output["OutputValue"] for output in found.get("Outputs", [])}


def _fail(message: str) -> NoReturn:
    typer.echo(f"threadrunner webhooks register: {message}", err=True)
    raise typer.Exit(1)

"""``threadrunner knowledge sync --env ENV``: put each assistant's ``knowledge:`` documents in the deployed
environment's retrieval store (threadrunner/knowledge_sync.py); a post-deploy step, like
``threadrunner webhooks register``.

It checks the definitions against the environment (cdk.json: its engine), reads the upstream API key from the
stack's secret, finds the stack's runs table (where the synced stores are recorded), then syncs every
assistant. Running it again uploads nothing. Every failure is one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from local.cli_deployed import BaseUrl, Environment, Region

knowledge_app = typer.Typer(no_args_is_help=True, help="Sync the assistants' knowledge documents upstream.")

RUNS_TABLE_LOGICAL_ID = "StorageRunsTable"  # infra: Storage construct, f"{logical name.title()}Table"


class SyncError(Exception):
    """A failure told in one line."""


@knowledge_app.command()
def sync(
    env: Environment,
    base_url: BaseUrl = None,
    region: Region = None,
    runs_table: Annotated[
        str | None, typer.Option(help="The stack's runs table (default: found in the stack's resources).")
    ] = None,
) -> None:
    """Create or update each assistant's vector store upstream: new and changed documents are uploaded once,
    removed ones deleted; nothing changes when nothing did."""
    import boto3
    import botocore.exceptions
    import openai
    from threadrunner.assistant_knowledge import documents_root
    from threadrunner.assistant_validation import AssistantDefinitionError, validate_assistants
    from threadrunner.engines.openai_vector_stores import OpenAIVectorStores
    from threadrunner.knowledge_sync import KnowledgeError, document_reader, sync_all
    from threadrunner.settings import ToolSettings
    from threadrunner.stores.knowledge import KnowledgeStore

    from local.webhook_registration import read_secret_field

    session = boto3.session.Session(region_name=region)
    try:
        engine, fallback, secret, policy = _environment(env)
        assistants_dir = ToolSettings().assistants_dir
        configs = validate_assistants(assistants_dir, policy)
        secretsmanager = session.client("secretsmanager")
        api_key = read_secret_field(secretsmanager, secret, "api_key")
        if not api_key:
            raise SyncError(f"no upstream API key in the secret {secret}")
        table_name = runs_table or _runs_table(session.client("cloudformation"), env)
        with openai.OpenAI(api_key=api_key, base_url=base_url) as client:
            reports = sync_all(
                configs,
                environment=env,
                default_engine=engine,
                fallback_engine=fallback,
                upstream_for=lambda _engine: OpenAIVectorStores(client),
                records=KnowledgeStore(session.resource("dynamodb").Table(table_name)),
                read=document_reader(documents_root(assistants_dir), lambda: session.client("s3")),
            )
    except (SyncError, KnowledgeError, AssistantDefinitionError) as error:
        _fail(str(error))
    except openai.APIStatusError as error:
        detail = error.body.get("message") if isinstance(error.body, dict) else None
        _fail(f"the upstream refused ({error.status_code}): {detail or error.message}")
    except openai.APIConnectionError as error:
        _fail(f"could not reach the upstream: {error.message}")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        _fail(f"AWS refused: {error}")
    for report in reports:
        typer.echo(report.summary())
    if not reports:
        typer.echo("no assistant has knowledge documents")


def _environment(env: str) -> tuple[str, str, str, Any]:
    """(engine, fallback engine, API key secret name, hosted-tool policy) of ``env`` from cdk.json, checked as
    ``cdk synth`` checks it."""
    from local.handler_imports import REPO_ROOT

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from infra.config import ConfigError, load_environment
    from infra.constants import secret_name

    environments = json.loads(Path(REPO_ROOT / "cdk.json").read_text())["context"].get("environments", {})
    try:
        config = load_environment(environments, env)
    except ConfigError as error:
        raise SyncError(str(error)) from None
    return config.engine, config.fallback_engine, secret_name(env), config.hosted_tool_policy


def _runs_table(cloudformation: Any, env: str) -> str:
    from infra.constants import stack_name

    stack = stack_name(env)
    try:
        pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
        resources = [resource for page in pages for resource in page["StackResourceSummaries"]]
    except Exception as error:
        raise SyncError(f"cannot read the stack {stack}: {error}") from error
    for resource in resources:
        if resource["ResourceType"] == "AWS::DynamoDB::Table" and resource["LogicalResourceId"].startswith(
            RUNS_TABLE_LOGICAL_ID
        ):
            return str(resource["PhysicalResourceId"])
    raise SyncError(f"the stack {stack} has no runs table: deploy it first, or pass --runs-table")


def _fail(message: str) -> NoReturn:
    typer.echo(f"threadrunner knowledge sync: {message}", err=True)
    raise typer.Exit(1)


def sync_local(*, upstream_base_url: str, api_key: str, runs_table: Any, s3: Any) -> None:
    """At the local stack's start (local/stack.py), once its tables exist: the assistants' documents into the
    upstream's (the emulator's) vector stores, recorded in the local runs table. A bad document stops the
    start (KnowledgeError, naming it); an upstream that cannot be reached leaves knowledge unsynced (runs of
    such an assistant then say ``degraded: ["file_search"]``), with a warning."""
    import logging

    import openai
    from threadrunner.assistant_knowledge import documents_root
    from threadrunner.assistant_validation import validate_assistants
    from threadrunner.engines.openai_vector_stores import OpenAIVectorStores
    from threadrunner.errors import UpstreamUnavailable
    from threadrunner.knowledge_sync import document_reader, sync_all
    from threadrunner.settings import RunSettings, ToolSettings
    from threadrunner.stores.knowledge import KnowledgeStore

    assistants_dir = ToolSettings().assistants_dir
    configs = [config for config in validate_assistants(assistants_dir) if config.knowledge]
    if not configs:
        return
    runs = RunSettings()
    with openai.OpenAI(base_url=upstream_base_url, api_key=api_key, max_retries=0) as client:
        try:
            sync_all(
                configs,
                environment=runs.environment,
                default_engine=runs.engine,
                fallback_engine=runs.fallback_engine,
                upstream_for=lambda _engine: OpenAIVectorStores(client),
                records=KnowledgeStore(runs_table),
                read=document_reader(documents_root(assistants_dir), lambda: s3),
            )
        except (openai.APIConnectionError, UpstreamUnavailable) as error:
            logging.getLogger(__name__).warning(
                "knowledge not synced: the upstream is unreachable (%s)", error
            )

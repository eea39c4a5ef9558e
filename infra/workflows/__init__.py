"""The run workflow's definition: run.asl.json, with "Wait for model" as the environment's completion mode
wants it. One workflow for both modes: ``poll`` keeps run.asl.json's Wait state (seconds chosen by the step
before it), ``webhook`` puts the callback task of wait_for_model.webhook.json in its place (Await model keeps
the task token; the upstream's webhook resumes it). CDK (infra/constructs/workflow.py) and the local stack
both deploy what :func:`run_workflow_definition` answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

Completion = Literal["poll", "webhook"]
COMPLETIONS: tuple[Completion, ...] = ("poll", "webhook")

RUN_WORKFLOW_FILE = Path(__file__).with_name("run.asl.json")
WEBHOOK_WAIT_FILE = Path(__file__).with_name("wait_for_model.webhook.json")
WAIT_FOR_MODEL = "Wait for model"


def run_workflow_definition(completion: Completion) -> str:
    """The ASL (with its ``${...FunctionArn}`` placeholders) for ``completion``."""
    definition = json.loads(RUN_WORKFLOW_FILE.read_text())
    if completion == "webhook":
        definition["States"][WAIT_FOR_MODEL] = json.loads(WEBHOOK_WAIT_FILE.read_text())
    elif completion != "poll":
        raise ValueError(f"completion must be one of {', '.join(COMPLETIONS)}, not {completion!r}")
    return json.dumps(definition, indent=2)

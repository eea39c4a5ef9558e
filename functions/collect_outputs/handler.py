"""Collect outputs: persist the answer before the upstream forgets it."""

from threadrunner.models.workflow import StepInput
from threadrunner.workflow import finish_steps
from threadrunner.workflow.handler import step_handler

lambda_handler = step_handler(finish_steps.collect_outputs, StepInput)

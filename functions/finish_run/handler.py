"""Finish run: record the final status (or the failed step's error) and release the thread."""

from threadrunner.models.workflow import FinishRunInput
from threadrunner.workflow import finish_steps
from threadrunner.workflow.handler import step_handler

lambda_handler = step_handler(finish_steps.finish_run, FinishRunInput)

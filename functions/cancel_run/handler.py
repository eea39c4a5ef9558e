"""Cancel run: stop the upstream run that passed its deadline."""

from threadrunner.models.workflow import StepInput
from threadrunner.workflow import check_steps
from threadrunner.workflow.handler import step_handler

lambda_handler = step_handler(check_steps.cancel_run, StepInput)

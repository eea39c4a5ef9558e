"""Start run: create the upstream thread if needed and start the model on the user's message."""

from threadrunner.models.workflow import StepInput
from threadrunner.workflow import start_steps
from threadrunner.workflow.handler import step_handler

lambda_handler = step_handler(start_steps.start_run, StepInput)

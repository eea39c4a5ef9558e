"""Wait for the application: keep the run's task token until the application answers its required action
(POST /v1/runs/{id}/tool_outputs or /approvals), which resumes the run with SendTaskSuccess."""

from threadrunner.workflow import application_steps
from threadrunner.workflow.handler import step_handler

lambda_handler = step_handler(application_steps.wait_for_application, application_steps.WaitInput)

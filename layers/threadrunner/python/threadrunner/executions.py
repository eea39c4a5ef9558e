"""Starting the run workflow: one execution per run, named after the run, so starting it twice is harmless.

The API starts a run that got the thread's lock at once; Finish run starts the next queued run when it hands
the lock over. Both build the same input, so a second StartExecution for the same run is a no-op.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from threadrunner.models.records import RunStatus
from threadrunner.models.workflow import ExecutionInput, PollSettings, RunProgress
from threadrunner.settings import RunSettings


def execution_input(run_id: str, settings: RunSettings) -> ExecutionInput:
    return ExecutionInput(
        run_id=run_id,
        settings=PollSettings(
            first_wait_seconds=settings.poll_first_seconds,
            max_wait_seconds=settings.poll_max_seconds,
            max_polls=settings.max_polls,
            check_wait_seconds=settings.check_wait_seconds,
            webhook_fallback_seconds=settings.webhook_fallback_seconds,
        ),
        run=RunProgress(status=RunStatus.queued),
    )


def execution_arn(state_machine_arn: str, run_id: str) -> str:
    """``arn:...:stateMachine:<name>`` -> ``arn:...:execution:<name>:<run id>``."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{run_id}"


class ExecutionStarter:
    def __init__(self, stepfunctions: Any, state_machine_arn: str, settings: RunSettings) -> None:
        self._stepfunctions = stepfunctions
        self._state_machine_arn = state_machine_arn
        self._settings = settings

    def __call__(self, run_id: str) -> str:
        """Start the run's execution (or find it started) and return its ARN."""
        try:
            started = self._stepfunctions.start_execution(
                stateMachineArn=self._state_machine_arn,
                name=run_id,
                input=execution_input(run_id, self._settings).model_dump_json(),
            )
        except ClientError as error:
            # Execution names are unique per state machine: it exists, so this run has been started.
            if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return execution_arn(self._state_machine_arn, run_id)
            raise
        return str(started["executionArn"])

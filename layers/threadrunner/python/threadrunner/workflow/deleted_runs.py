"""Runs deleted under their workflow: deleting a thread or a user's data removes the run while its execution
goes on. Nothing is left to record, retry or tell anyone, so the steps end the execution quietly instead of
failing until Finish run gives up.

Whatever a step was doing, if it fails and its run is gone, it answers what leads straight to Finish run:
``cancelled`` from the steps that report progress ("What does the run need?" sends that to Finish run, and
Start run and Submit tool outputs get there through one more Check run), an error output from a tool. Finish
run answers ``deleted``, which "Did the run complete?" sends to the "Run deleted" Succeed state (run.asl.json).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from pydantic import BaseModel

from threadrunner.models.records import RunStatus
from threadrunner.models.workflow import (
    FinishRunInput,
    FinishRunOutput,
    RunProgress,
    RunToolInput,
    RunToolOutput,
    StepInput,
)
from threadrunner.workflow.context import StepContext

logger = logging.getLogger(__name__)

RUN_DELETED = "deleted"  # Finish run's status for a run that no longer exists


class _ForRun(Protocol):
    @property
    def run_id(self) -> str: ...


InputT = TypeVar("InputT", bound=_ForRun)
OutputT = TypeVar("OutputT", bound=BaseModel)
Step = Callable[[InputT, StepContext], OutputT]


def unless_run_deleted(
    answer: Callable[[InputT], OutputT],
) -> Callable[[Step[InputT, OutputT]], Step[InputT, OutputT]]:
    """The step, answering ``answer(input)`` instead of failing when its run has been deleted. The run is
    looked up only after a failure, so steps whose run exists pay nothing."""

    def wrap(step: Step[InputT, OutputT]) -> Step[InputT, OutputT]:
        @functools.wraps(step)
        def step_unless_run_deleted(step_input: InputT, ctx: StepContext) -> OutputT:
            try:
                return step(step_input, ctx)
            except Exception as error:
                if not _is_gone(step_input.run_id, ctx):
                    raise
                logger.info(
                    "run %s was deleted while it ran (%s): its execution ends here",
                    step_input.run_id,
                    type(error).__name__,
                )
                return answer(step_input)

        return step_unless_run_deleted

    return wrap


def _is_gone(run_id: str, ctx: StepContext) -> bool:
    try:
        return ctx.runs.find(run_id) is None
    except Exception:
        # Cannot tell: the step's own error goes on, and the workflow's retries and Catch handle it.
        logger.warning("could not look up run %s after a failed step", run_id, exc_info=True)
        return False


def progress_of_deleted(step: StepInput) -> RunProgress:
    return RunProgress(status=RunStatus.cancelled, poll_count=step.run.poll_count)


def tool_output_of_deleted(call: RunToolInput) -> RunToolOutput:
    return RunToolOutput(call_id=call.call_id, is_error=True)


def finish_of_deleted(finish: FinishRunInput) -> FinishRunOutput:
    return FinishRunOutput(status=RUN_DELETED)

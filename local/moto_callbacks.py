"""moto 5.2.5 gap: a ``.waitForTaskToken`` task with ``HeartbeatSeconds`` ignores an outcome sent before it
starts waiting (SendTaskSuccess from inside the invoked Lambda, as Await model does when the webhook came
first) until the heartbeat expires. AWS resumes at once; :func:`patch_callback_heartbeat` makes moto do so."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)

_original = StateTaskServiceCallback._wait_for_task_token_heartbeat


def _wait_for_task_token_heartbeat(
    self: Any, env: Any, callback_endpoint: Any, heartbeat_endpoint: Any
) -> Any:
    outcome = callback_endpoint.get_outcome()
    if outcome is not None:  # delivered while the task's Lambda ran
        return outcome
    return _original(self, env, callback_endpoint, heartbeat_endpoint)


@contextmanager
def patch_callback_heartbeat() -> Iterator[None]:
    with mock.patch.object(
        StateTaskServiceCallback, "_wait_for_task_token_heartbeat", _wait_for_task_token_heartbeat
    ):
        yield

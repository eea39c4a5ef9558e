"""The in-process Lambda dispatch: handlers found by function name, called like the runtime calls them."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from local.lambdas import FunctionNotFoundError, LambdaDispatch

HANDLERS = {
    "echo": """
import json
from pathlib import Path

with open(Path(__file__).with_name("imports.log"), "a") as log:  # one line per cold start
    log.write("imported\\n")

def lambda_handler(event, context):
    event["touched"] = True  # must not leak back to the caller
    return {"event": event, "function_name": context.function_name,
            "arn": context.invoked_function_arn, "version": context.function_version,
            "memory": context.memory_limit_in_mb, "request_id": context.aws_request_id,
            "log_group": context.log_group_name, "remaining": context.get_remaining_time_in_millis()}
""",
    "boom": """
class UpstreamRateLimited(Exception):
    pass

def lambda_handler(event, context):
    raise UpstreamRateLimited("slow down: retry after 2 s")
""",
    "unserializable": """
def lambda_handler(event, context):
    return {"value": object()}
""",
    "broken_import": """
import module_that_does_not_exist

def lambda_handler(event, context):
    return {}
""",
    "with_sibling": """
from helpers import greeting

def lambda_handler(event, context):
    return greeting(event["name"])
""",
}


@pytest.fixture
def dispatch(tmp_path: Path) -> LambdaDispatch:
    for folder, source in HANDLERS.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "handler.py").write_text(source)
    (tmp_path / "with_sibling" / "helpers.py").write_text("def greeting(name):\n    return f'hello {name}'\n")
    return LambdaDispatch(tmp_path, region="us-east-1", account="123456789012", timeout_seconds=30)


def test_a_handler_gets_a_copy_of_the_event_and_a_lambda_context(dispatch: LambdaDispatch) -> None:
    event = {"run_id": "run_1"}

    outcome = dispatch.invoke("threadrunner-local-echo", event)

    assert outcome.error is None
    assert outcome.payload["event"] == {"run_id": "run_1", "touched": True}
    assert event == {"run_id": "run_1"}
    assert outcome.payload["function_name"] == "threadrunner-local-echo"
    assert outcome.payload["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:threadrunner-local-echo"
    assert outcome.payload["version"] == "$LATEST"
    assert outcome.payload["memory"] == 256
    assert outcome.payload["log_group"] == "/aws/lambda/threadrunner-local-echo"
    assert 0 < outcome.payload["remaining"] <= 30_000


def test_functions_are_found_by_arn_with_or_without_qualifier(dispatch: LambdaDispatch) -> None:
    arn = dispatch.function_arn("echo")

    assert dispatch.folder_for(arn) == "echo"
    assert dispatch.folder_for(f"{arn}:$LATEST") == "echo"
    assert dispatch.invoke(f"{arn}:$LATEST", {}).error is None
    with pytest.raises(FunctionNotFoundError):
        dispatch.folder_for("arn:aws:lambda:us-east-1:123456789012:function:someone-else")


def test_an_exception_becomes_the_lambda_error_shape_named_after_its_class(dispatch: LambdaDispatch) -> None:
    outcome = dispatch.invoke("threadrunner-local-boom", {})

    assert outcome.error is not None
    assert json.loads(outcome.error.to_payload()) == {
        "errorType": "UpstreamRateLimited",
        "errorMessage": "slow down: retry after 2 s",
    }


@pytest.mark.parametrize(
    ("function", "error_type"),
    [
        ("threadrunner-local-missing", "ResourceNotFoundException"),
        ("threadrunner-local-unserializable", "Runtime.MarshalError"),
        ("threadrunner-local-broken_import", "Runtime.ImportModuleError"),
        ("threadrunner-local-../boom", "ResourceNotFoundException"),
    ],
)
def test_runtime_failures_have_lambda_error_types(
    dispatch: LambdaDispatch, function: str, error_type: str
) -> None:
    outcome = dispatch.invoke(function, {})

    assert outcome.error is not None
    assert outcome.error.error_type == error_type


def test_sibling_modules_import_from_the_function_folder(dispatch: LambdaDispatch) -> None:
    assert dispatch.invoke("threadrunner-local-with_sibling", {"name": "ada"}).payload == "hello ada"


def cold_starts(dispatch: LambdaDispatch) -> int:
    log = dispatch.functions_dir / "echo" / "imports.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_handlers_are_imported_once_even_under_concurrent_invocations(dispatch: LambdaDispatch) -> None:
    outcomes = []

    def call() -> None:
        outcomes.append(dispatch.invoke("threadrunner-local-echo", {}))

    workers = [threading.Thread(target=call) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert [outcome.error for outcome in outcomes] == [None] * 8
    assert cold_starts(dispatch) == 1


def test_each_dispatch_has_its_own_cold_start(dispatch: LambdaDispatch) -> None:
    other = LambdaDispatch(dispatch.functions_dir, region="us-east-1", account="123456789012")

    dispatch.invoke("threadrunner-local-echo", {})
    other.invoke("threadrunner-local-echo", {})
    other.invoke("threadrunner-local-echo", {})

    assert cold_starts(dispatch) == 2


def test_a_closed_dispatch_refuses_new_invocations(dispatch: LambdaDispatch) -> None:
    assert dispatch.close(timeout=1) is True

    outcome = dispatch.invoke("threadrunner-local-echo", {})

    assert outcome.error is not None
    assert outcome.error.error_type == "ServiceException"

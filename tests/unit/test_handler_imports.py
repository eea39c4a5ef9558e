"""What a handler imports at INIT (its cold start), each in a fresh interpreter with tracing on as in Lambda:
never the openai SDK (model steps load it on first use: engine_for), never the AWS SDK (boto3 and its session
come with the first client: threadrunner.aws), never PyYAML (read with an assistant definition); and the API none
of the SQL stack. Not timed: ``threadrunner bench imports`` times it; tests/infra/test_function_imports.py holds
each kind against its dependency layers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from local.handler_imports import api_first_request, folders, lambda_environment, probe

ON_FIRST_USE = frozenset({"openai", "httpx", "httpx2", "boto3", "s3transfer", "urllib3", "yaml"})
SQL_STACK = frozenset({"sqlalchemy", "sqlglot", "psycopg"})


@pytest.mark.parametrize("folder", folders())
def test_a_handler_loads_the_model_sdk_the_aws_sdk_and_yaml_on_first_use(folder: str) -> None:
    # When Lambda imports the handler (INIT)
    found = probe(folder, lambda_environment(kind=None))
    # Then none of them is loaded yet
    assert not found.at_init & ON_FIRST_USE, (
        f"{folder} imports {sorted(found.at_init & ON_FIRST_USE)} at INIT"
    )


def test_the_api_loads_no_sql_stack_and_its_first_request_makes_its_clients() -> None:
    # Given the API function, as deployed
    environment = lambda_environment(kind="api")
    # When it is imported and answers its first request
    found = probe("api", environment, event=api_first_request())
    # Then INIT loaded neither the SQL stack nor what waits for first use, and the request made the clients
    assert not found.at_init & (SQL_STACK | ON_FIRST_USE)
    assert "boto3" in found.on_use
    assert not found.on_use & (SQL_STACK | {"openai", "yaml"})


# Whether X-Ray wraps botocore's API calls: patching wraps BaseClient._make_api_call in a wrapt FunctionWrapper.
_PATCHED = """
import sys
from threadrunner import aws
assert "botocore.client" not in sys.modules, "botocore's client loaded before any client was made"
aws.table("threads")
aws.client("stepfunctions")
from botocore.client import BaseClient
print(type(BaseClient.__dict__["_make_api_call"]).__name__ == "FunctionWrapper")
"""


@pytest.mark.parametrize(("traced", "patched"), [(True, "True"), (False, "False")])
def test_x_ray_traces_aws_calls_from_the_first_client_on_only_when_tracing(
    traced: bool, patched: str
) -> None:
    # Given a deployed function with tracing on, or off (in Lambda either way: outside it, the X-Ray SDK's
    # sampler imports botocore's session at INIT whatever Powertools says)
    environment = {**lambda_environment(kind="housekeeping", traced=traced), "LAMBDA_TASK_ROOT": "/var/task"}
    # When it makes its first clients
    result = subprocess.run(
        [sys.executable, "-c", _PATCHED], capture_output=True, text=True, env=environment, check=False
    )
    # Then botocore is patched for X-Ray then (and not before), or never when tracing is off
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == patched

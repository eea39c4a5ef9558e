"""Infrastructure tests: the CDK app synthesized with cdk.json's context, bundling skipped (fast, offline).

Scope: what the templates declare (resources, IAM, wiring), cdk-nag and cfn-lint on them, and the local
layer bundling. Nothing here talks to AWS.
"""

from __future__ import annotations

import os

# jsii prints a banner on every start under Node 20; the tests do not need to see it.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import pytest

from tests.infra.synth import Synthesized, synthesize


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # One worker for all infra tests: they share the synthesized stacks (a few seconds each).
    for item in items:
        if "tests/infra/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.xdist_group("infra"))


@pytest.fixture(scope="session")
def dev() -> Synthesized:
    return synthesize("dev")


@pytest.fixture(scope="session")
def prod() -> Synthesized:
    return synthesize("prod")

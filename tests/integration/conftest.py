"""Integration fixtures: the OpenAI contract and the emulator, whose every exchange must honour it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI
from openapi_core import OpenAPI

from local.emulator import EmulatorServer
from tests.support.openai_contract import openai_contract, validate_exchange


@pytest.fixture(scope="session")
def openapi_contract() -> OpenAPI:
    """The official OpenAI OpenAPI description, loaded once per session."""
    return openai_contract()


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(port=0) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer, openapi_contract: OpenAPI) -> Iterator[EmulatorServer]:
    """The emulator, fresh for this test; afterwards every exchange is checked against the contract."""
    emulator_server.reset()
    yield emulator_server
    problems = list(emulator_server.internal_errors)
    for exchange in emulator_server.exchanges:
        try:
            validate_exchange(exchange)
        except AssertionError as mismatch:
            problems.append(str(mismatch))
    if problems:
        pytest.fail("the emulator exchanges broke the contract:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def openai_client(emulator: EmulatorServer) -> Iterator[OpenAI]:
    """The real SDK pointed at the emulator, without SDK retries (tests that want them make their own)."""
    with OpenAI(base_url=emulator.base_url, api_key="sk-test", max_retries=0) as client:
        yield client

"""Which engine a thread gets: the assistant's ``engine:`` if its definition pins one, else the
environment's (THREADRUNNER_ENGINE); the thread keeps it for life (tests/e2e/test_engines.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from threadrunner.assistant_definitions import load_assistant
from threadrunner.engines import engine_for
from threadrunner.models.api import CreateThreadRequest
from threadrunner.services.threads import get_or_create_thread
from threadrunner.settings import RunSettings, ToolSettings, UpstreamSettings
from threadrunner.stores.threads import ThreadStore

from tests.support.aws import moto_tables

DEFINITION = """name: {name}
instructions: Answer briefly.
{engine}
"""


@pytest.fixture
def assistants_dir(tmp_path: Path) -> Path:
    for name, engine in (("pinned", "engine: assistants"), ("free", ""), ("odd", "engine: bard")):
        (tmp_path / f"{name}.yaml").write_text(DEFINITION.format(name=name, engine=engine))
    return tmp_path


@pytest.fixture
def ctx(assistants_dir: Path) -> Iterator[SimpleNamespace]:
    with moto_tables() as tables:
        yield SimpleNamespace(
            threads=ThreadStore(tables["threads"]),
            run_settings=RunSettings(engine="responses"),
            tool_settings=ToolSettings(assistants_dir=assistants_dir),
        )


def _engine_of_new_thread(ctx: SimpleNamespace, assistant: str) -> str:
    thread, created = get_or_create_thread(ctx, "alice", CreateThreadRequest(assistant=assistant))  # type: ignore[arg-type]
    assert created
    return str(ctx.threads.get("alice", thread.id).engine)


def test_an_assistant_that_pins_its_engine_gets_it(ctx: SimpleNamespace) -> None:
    assert _engine_of_new_thread(ctx, "pinned") == "assistants"


def test_an_assistant_without_a_pin_gets_the_environments_engine(ctx: SimpleNamespace) -> None:
    assert _engine_of_new_thread(ctx, "free") == "responses"


def test_an_unknown_engine_in_a_definition_is_a_config_error(assistants_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"odd\.yaml:3: engine: .*'responses'.*'assistants'"):
        load_assistant(assistants_dir, "odd")


def test_an_unknown_engine_name_is_refused_before_any_upstream_call() -> None:
    with pytest.raises(ValueError, match="unknown engine 'bard'"):
        engine_for("bard", UpstreamSettings())

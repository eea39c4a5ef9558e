"""The Assistants-compatible API's small parts: its lists, its ids, its refusals of bad bodies, and the
parameter names it gives threadrunner's own errors."""

from __future__ import annotations

from typing import Any

import pytest
from threadrunner import clock
from threadrunner.compat import ids
from threadrunner.compat.errors import CompatError
from threadrunner.compat.http import _param
from threadrunner.compat.pages import page
from threadrunner.compat.wire import CreateAssistant, CreateRun, parse

ITEMS = [f"obj_{n}" for n in range(5)]  # oldest first


def listed(**query: str) -> dict[str, Any]:
    return page(ITEMS, query, id_of=str, resource=lambda item: {"id": item})


def ids_of(answer: dict[str, Any]) -> list[str]:
    return [item["id"] for item in answer["data"]]


def test_a_list_is_newest_first_by_default_and_pages_with_after_and_before() -> None:
    first = listed(limit="2")
    assert ids_of(first) == ["obj_4", "obj_3"] and first["has_more"] is True
    assert (first["first_id"], first["last_id"]) == ("obj_4", "obj_3")
    assert ids_of(listed(limit="2", after="obj_3")) == ["obj_2", "obj_1"]
    assert ids_of(listed(order="asc", after="obj_2")) == ["obj_3", "obj_4"]
    assert ids_of(listed(order="asc", before="obj_2")) == ["obj_0", "obj_1"]
    last = listed(order="asc", after="obj_4")
    assert last["data"] == [] and last["has_more"] is False and last["first_id"] == ""


@pytest.mark.parametrize(
    ("query", "param"), [({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"), ({"order": "up"}, "order")]
)
def test_a_bad_list_parameter_is_a_400_naming_it(query: dict[str, str], param: str) -> None:
    with pytest.raises(CompatError) as refused:
        listed(**query)
    assert (refused.value.status, refused.value.param) == (400, param)


def test_ids_are_threadrunners_under_the_assistants_prefixes() -> None:
    thread_id = clock.new_id("thr")
    assert ids.thread_in(ids.thread_out(thread_id)) == thread_id
    run_id = clock.new_id("run")
    assert ids.message_in(ids.message_out(f"{run_id}.0002")) == f"{run_id}.0002"
    waiting = clock.new_id("msg")
    assert ids.message_out(waiting) == waiting and ids.message_in(waiting) == waiting


@pytest.mark.parametrize("bad", ["thr_x", "thread_", "thread_../x", "asst_1"])
def test_an_id_that_cannot_be_ours_is_not_found(bad: str) -> None:
    with pytest.raises(CompatError) as missing:
        ids.thread_in(bad, "thread_id")
    assert (missing.value.status, missing.value.param) == (404, "thread_id")
    assert missing.value.body()["error"]["type"] == "invalid_request_error"


def test_bodies_are_refused_naming_the_parameter_at_fault() -> None:
    with pytest.raises(CompatError) as unknown:
        parse(CreateAssistant, {"model": "m", "colour": "blue"})
    assert unknown.value.param == "colour" and "Unrecognized request argument" in str(unknown.value)
    with pytest.raises(CompatError) as missing:
        parse(CreateRun, {})
    assert missing.value.param == "assistant_id"
    with pytest.raises(CompatError) as wrong:
        parse(CreateAssistant, {"model": "m", "temperature": 3})
    assert wrong.value.param == "temperature"
    with pytest.raises(CompatError) as not_an_object:
        parse(CreateAssistant, ["model"])
    assert not_an_object.value.status == 400


def test_threadrunner_field_paths_are_written_as_openai_writes_parameters() -> None:
    assert _param("tool_outputs.0.tool_call_id") == "tool_outputs[0].tool_call_id"
    assert _param("tool_outputs") == "tool_outputs"
    assert _param(None) is None

"""Files through both engines against the emulator, with the real openai SDK: an upload staged upstream
(with ``expires_after``), attached to a run, the code interpreter's chart and summary found in the answer
and streamed back. Every exchange is validated against the OpenAI OpenAPI description."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from datetime import timedelta

import pytest
from openai import OpenAI
from threadrunner import clock
from threadrunner.engines.assistant_sync import AssistantRegistry
from threadrunner.engines.assistants_v2 import AssistantsEngine
from threadrunner.engines.base import AssistantDefinition, GeneratedFile, RunFile, RunRequest
from threadrunner.engines.responses import ResponsesEngine
from threadrunner.models.records import RunRecord
from threadrunner.stores.upstream_assistants import UpstreamAssistantStore

from local.emulator import EmulatorServer, Plan
from tests.support.aws import moto_tables

pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")

SALES_CSV = b"region,orders,total\nNorth,7,1234.5\nSouth,2,99\nWest,5,640.25\n"
ANALYST = AssistantDefinition(name="analyst", instructions="Analyse data.", model="gpt-4.1-mini", tools=[])


@pytest.fixture
def registry() -> Iterator[AssistantRegistry]:
    with moto_tables() as tables:
        yield AssistantRegistry(UpstreamAssistantStore(tables["runs"]), "test")


def _request(thread_id: str, files: list[RunFile]) -> RunRequest:
    return RunRequest(
        upstream_thread_id=thread_id,
        model="gpt-4.1-mini",
        instructions="Analyse data.",
        tools=[],
        assistant=ANALYST,
        files=files,
    )


def _run(engine: str, thread_id: str, response_id: str) -> RunRecord:
    now = clock.now()
    return RunRecord(
        id="run_1",
        thread_id="thr_1",
        user_id="alice",
        assistant="analyst",
        engine=engine,
        model="gpt-4.1-mini",
        message="Chart my sales",
        created_at=now,
        deadline_at=now + timedelta(minutes=5),
        upstream_thread_id=thread_id,
        response_ids=[response_id],
    )


def _download(engine: ResponsesEngine | AssistantsEngine, file: GeneratedFile) -> bytes:
    with engine.download(file) as chunks:
        return b"".join(chunks)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (
        kind == b"IHDR"
        and zlib.crc32(data[12 : 16 + length]) == struct.unpack(">I", data[16 + length : 20 + length])[0]
    )
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _check_outputs(files: dict[str, bytes]) -> None:
    width, _ = _png_size(files["chart.png"])
    assert width == 3 * 8  # one 8-pixel bar per row of the CSV
    summary = files["summary.csv"].decode().splitlines()
    # every numeric column summed from the rows above
    assert summary == ["column,count,sum,mean", "orders,3,14.00,4.67", "total,3,1973.75,657.92"]


def test_responses_engine_stages_a_csv_and_brings_back_what_the_code_interpreter_wrote(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    engine = ResponsesEngine(openai_client)
    file_id = engine.upload_file("sales.csv", io.BytesIO(SALES_CSV), "text/csv", 86_400)
    upstream = openai_client.files.retrieve(file_id)
    assert upstream.purpose == "user_data" and upstream.expires_at == upstream.created_at + 86_400
    emulator.script(Plan.analyse_csv())
    conversation = engine.create_thread({})
    csv_file = RunFile(
        file_id="file_1",
        upstream_file_id=file_id,
        filename="sales.csv",
        content_type="text/csv",
        purpose="code_interpreter",
        key="k",
    )
    response_id = engine.start(_request(conversation, [csv_file]), "Chart my sales")
    run = _run("responses", conversation, response_id)
    polled = engine.poll(run)
    while polled.status != "completed":
        polled = engine.poll(run)

    assert sorted(file.name for file in polled.files) == ["chart.png", "summary.csv"]
    assert all(file.container_id for file in polled.files)  # container files, not Files API ones
    _check_outputs({file.name: _download(engine, file) for file in polled.files})
    create = next(e for e in emulator.exchanges if e.method == "POST" and e.path == "/v1/responses")
    tool = create.request_json["tools"][-1]
    assert tool == {"type": "code_interpreter", "container": {"type": "auto", "file_ids": [file_id]}}
    engine.delete_file(file_id)
    engine.delete_file(file_id)  # already gone: not an error
    assert not [f for f in openai_client.files.list().data if f.id == file_id]


def test_assistants_engine_attaches_the_csv_for_the_code_interpreter_and_finds_image_and_file_path(
    openai_client: OpenAI, emulator: EmulatorServer, registry: AssistantRegistry
) -> None:
    engine = AssistantsEngine(openai_client, registry)
    file_id = engine.upload_file("sales.csv", io.BytesIO(SALES_CSV), "text/csv", 0)
    assert openai_client.files.retrieve(file_id).purpose == "assistants"
    emulator.script(Plan.analyse_csv())
    thread = engine.create_thread({})
    csv_file = RunFile(
        file_id="file_1",
        upstream_file_id=file_id,
        filename="sales.csv",
        content_type="text/csv",
        purpose="code_interpreter",
        key="k",
    )
    run_id = engine.start(_request(thread, [csv_file]), "Chart my sales")
    run = _run("assistants", thread, run_id)
    polled = engine.poll(run)
    while polled.status != "completed":
        polled = engine.poll(run)

    create = next(e for e in emulator.exchanges if e.path.endswith("/runs") and e.method == "POST")
    message = create.request_json["additional_messages"][0]
    assert message["attachments"] == [{"file_id": file_id, "tools": [{"type": "code_interpreter"}]}]
    assert {"type": "code_interpreter"} in create.request_json["tools"]
    names = sorted(file.name for file in polled.files)
    assert names[1] == "summary.csv" and names[0].endswith(".png")  # image_file content has no name
    files = {("chart.png" if f.name.endswith(".png") else f.name): _download(engine, f) for f in polled.files}
    _check_outputs(files)
    assert all(file.container_id is None for file in polled.files)  # Files API files: deleted with the thread


def test_responses_engine_gives_input_files_to_the_model_as_input_file_parts(
    openai_client: OpenAI, emulator: EmulatorServer
) -> None:
    engine = ResponsesEngine(openai_client)
    file_id = engine.upload_file("brief.pdf", io.BytesIO(b"%PDF-1.7 brief"), "application/pdf", 0)
    conversation = engine.create_thread({})
    brief = RunFile(
        file_id="file_1",
        upstream_file_id=file_id,
        filename="brief.pdf",
        content_type="application/pdf",
        purpose="input",
        key="k",
    )
    emulator.script(Plan.message("Read it."))
    engine.start(_request(conversation, [brief]), "Summarise the brief")
    create = next(e for e in emulator.exchanges if e.method == "POST" and e.path == "/v1/responses")
    (message,) = create.request_json["input"]
    assert message["content"] == [
        {"type": "input_text", "text": "Summarise the brief"},
        {"type": "input_file", "file_id": file_id},
    ]
    assert create.request_json["tools"] == []  # no code interpreter without files for it

"""GET /v1/docs: Swagger UI over the API's own OpenAPI document, without a token and without the internet, and
a summary and a description for every operation it shows."""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.stack import LocalStack
from tests.support.programs import required_program

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@pytest.fixture(scope="module")
def document(local_stack: LocalStack) -> dict[str, Any]:
    from local.auth import issue_token

    response = httpx.get(
        f"{local_stack.api_url}/v1/openapi.json",
        headers={"Authorization": f"Bearer {issue_token('docs-reader')}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, item[method])
        for path, item in document["paths"].items()
        for method in HTTP_METHODS
        if method in item
    ]


def test_every_operation_has_a_summary_and_a_description(document: dict[str, Any]) -> None:
    found = operations(document)
    assert len(found) >= 17
    for method, path, operation in found:
        summary = operation.get("summary", "").strip()
        description = operation.get("description", "").strip()
        # Powertools' own summary, when a route gives none, is "METHOD /path": that says nothing new
        assert summary and summary != f"{method} {path}", f"{method} {path} has no summary of its own"
        assert len(description) > len(summary), f"{method} {path} has no description"


def test_the_docs_page_needs_no_token_and_loads_nothing_from_elsewhere(local_stack: LocalStack) -> None:
    # When a browser without a token opens the page
    response = httpx.get(f"{local_stack.api_url}/v1/docs", timeout=30)
    # Then it is Swagger UI, its script, style and document inline (no CDN: it works offline)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "SwaggerUIBundle(" in page and '"/v1/threads/{thread_id}/runs"' in page
    assert not re.search(r"<(script|link)\b[^>]*\b(src|href)=", page)
    # And the document itself still needs a token
    assert httpx.get(f"{local_stack.api_url}/v1/openapi.json", timeout=30).status_code == 401


def test_the_docs_page_renders_in_headless_chromium(
    local_stack: LocalStack, document: dict[str, Any], tmp_path: Path
) -> None:
    chromium = required_program("chromium", package="chromium")
    # Given the page opened by Chromium with its network features off (no update checks, no sync)
    dom = _rendered_dom(chromium, f"{local_stack.api_url}/v1/docs", tmp_path)
    # Then Swagger UI's script ran: it rendered the API's title and every operation, with its summary
    text = html.unescape(dom)
    assert 'class="swagger-ui"' in dom, dom[-2000:]
    assert 'class="title">threadrunner' in dom
    for method, path, operation in operations(document):
        assert f'data-path="{path}"' in text, f"{method} {path} not rendered"
        assert operation["summary"] in text, f"{method} {path}: summary not rendered"


def _rendered_dom(chromium: str, url: str, profile: Path) -> str:
    dom = ""
    for budget_ms in (10_000, 30_000):  # a slow, shared machine: give the script more time once
        command = [
            chromium,
            "--headless",
            "--no-sandbox",  # as root in a container, Chromium's sandbox cannot start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            url,
        ]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
        assert finished.returncode == 0, finished.stderr[-2000:]
        dom = finished.stdout
        if "opblock-summary-path" in dom:
            break
    return dom

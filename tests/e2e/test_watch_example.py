"""examples/watch_run.html in headless Chromium: it starts a run on the local stack and shows its events live
from the Server-Sent Events stream, then the answer."""

from __future__ import annotations

from pathlib import Path

import httpx

from local.auth import issue_token
from local.emulator import EmulatorServer, Plan
from local.stack import LocalStack
from tests.support.webdriver import headless_chromium


def test_the_browser_example_shows_a_completed_run_and_its_events(
    local_stack: LocalStack, upstream: EmulatorServer, tmp_path: Path
) -> None:
    upstream.script(
        Plan.tool_calls([("query_database", {"query": "SELECT COUNT(*) AS n FROM sales"})]),
        Plan.message("The sales table has 42 rows."),
    )
    with headless_chromium(tmp_path / "profile") as browser:
        # When a browser opens the example with a token, and it asks its question at once
        token = issue_token("browser-user")
        browser.open(f"{local_stack.api_url}/examples/watch_run.html#token={token}&autostart=1")
        # Then the page lists the run's events as they come, then shows the run completed with its answer
        status = browser.wait_for(
            "const s = document.getElementById('status');"
            "return ['completed', 'failed', 'cancelled', 'timed_out'].includes(s.textContent) || "
            "s.className === 'error' ? s.textContent : null;"
        )
        shown = browser.run("return [...document.querySelectorAll('#events li')].map(li => li.dataset.type);")
        answer = browser.run("return document.getElementById('answer').textContent;")
    assert status == "completed", (status, shown)
    assert shown[:2] == ["run.queued", "run.started"]
    assert "tool_call.completed" in shown and shown[-1] == "run.completed"
    assert answer == "The sales table has 42 rows."


def test_only_example_pages_are_served(local_stack: LocalStack) -> None:
    for path in ("/examples/../README.md", "/examples/missing.html", "/examples/watch_run.js"):
        assert httpx.get(local_stack.api_url + path, timeout=10).status_code == 404

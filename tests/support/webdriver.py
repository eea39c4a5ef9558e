"""A headless Chromium driven in real time through ChromeDriver's W3C WebDriver HTTP API (Debian's chromium
and chromium-driver), for pages that keep a connection open (a stream), which ``--dump-dom`` with virtual time
cannot wait for. Only what the browser tests need: open a URL, run a script, wait for a condition."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.programs import required_program


class Browser:
    def __init__(self, client: httpx.Client, session: str) -> None:
        self._client = client
        self._session = session

    def open(self, url: str) -> None:
        self._command("url", {"url": url})

    def run(self, script: str) -> Any:
        """The value of ``script`` (a function body: ``return ...``) in the page."""
        return self._command("execute/sync", {"script": script, "args": []})

    def wait_for(self, script: str, *, timeout: float = 60) -> Any:
        """Run ``script`` until it returns something truthy; that value."""
        deadline = time.monotonic() + timeout
        while not (value := self.run(script)):
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never satisfied: {script}")
            time.sleep(0.2)
        return value

    def _command(self, command: str, body: dict[str, Any]) -> Any:
        answer = self._client.post(f"/session/{self._session}/{command}", json=body)
        answer.raise_for_status()
        return answer.json()["value"]


@contextmanager
def headless_chromium(profile: Path) -> Iterator[Browser]:
    chromium = required_program("chromium", package="chromium")
    driver = required_program("chromedriver", package="chromium-driver")
    port = _free_port()
    process = subprocess.Popen(
        [driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            _wait_until_ready(client)
            arguments = [
                "--headless",
                "--no-sandbox",  # as root in a container, Chromium's sandbox cannot start
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                f"--user-data-dir={profile}",
            ]
            capabilities = {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": arguments},
            }
            created = client.post("/session", json={"capabilities": {"alwaysMatch": capabilities}})
            created.raise_for_status()
            session = created.json()["value"]["sessionId"]
            try:
                yield Browser(client, session)
            finally:
                client.delete(f"/session/{session}")
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_ready(client: httpx.Client, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/status").json()["value"]["ready"]:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("chromedriver did not start")
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

"""LoopbackServer: the one way the local stack serves a WSGI app on 127.0.0.1 (HTTP API, S3, emulator)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest
from werkzeug.wrappers import Response

from local.loopback import LoopbackServer


def _hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return Response(f"hello from {environ['PATH_INFO']}")(environ, start_response)


def test_it_serves_the_app_on_loopback_until_stopped() -> None:
    # Given a server on a free port
    server = LoopbackServer(_hello, name="test-loopback")

    # When it runs
    with server:
        url = server.url
        answer = httpx.get(f"{url}/ping")

    # Then it answered on 127.0.0.1, and the port is closed once stopped
    assert url.startswith("http://127.0.0.1:")
    assert answer.status_code == 200
    assert answer.text == "hello from /ping"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/ping")


def test_url_before_start_names_the_server() -> None:
    # Given a server not started
    server = LoopbackServer(_hello, name="test-loopback")

    # When its url is asked, Then the error says which server and what to do
    with pytest.raises(RuntimeError, match="test-loopback is not running: call start"):
        _ = server.url


def test_start_twice_keeps_one_server_and_stop_twice_is_harmless() -> None:
    # Given a running server
    server = LoopbackServer(_hello, name="test-loopback").start()
    try:
        url = server.url

        # When it is started again
        again = server.start()

        # Then it is the same server on the same port
        assert again is server
        assert server.url == url
    finally:
        server.stop()

    # And stopping again does nothing
    server.stop()
    with pytest.raises(RuntimeError):
        _ = server.url

"""``EmulatorServer``: the emulator on 127.0.0.1 in a daemon thread, for ``make demo`` and for tests."""

from __future__ import annotations

import threading
from datetime import date
from types import TracebackType
from typing import Any, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from local.emulator.app import EmulatorApp
from local.emulator.exchange import Exchange
from local.emulator.script import HttpErrorPlan, Plan


class _QuietHandler(WSGIRequestHandler):
    """No access log: tests and the demo have their own output (errors are still logged)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class EmulatorServer:
    """An OpenAI-compatible upstream on loopback.

    ``polls`` is how many retrieves a background response stays in progress before its final status
    (plans override it with ``Plan.slow``); ``poll_after_ms`` is the ``openai-poll-after-ms`` hint sent
    while it runs; ``api_key``, when set, is the only key accepted (else any non-empty one is);
    ``today`` overrides the date the demo policy falls back to when the instructions carry none.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        polls: int = 1,
        poll_after_ms: int = 500,
        api_key: str | None = None,
        today: date | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._app = EmulatorApp(
            polls=polls,
            poll_after_ms=poll_after_ms,
            api_key=api_key,
            today=(lambda: today) if today else None,
        )
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Serve in a daemon thread; calling it again while running does nothing."""
        if self._server is None:
            self._server = make_server(
                self._host, self._port, self._app, threaded=True, request_handler=_QuietHandler
            )
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="openai-emulator", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what ``OpenAI(base_url=...)`` takes."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return f"http://{self._host}:{self._server.server_port}/v1"

    def script(self, *plans: Plan | HttpErrorPlan) -> None:
        """Queue model turns (one per created response) and HTTP failures; the demo policy answers after."""
        self._app.script(*plans)

    @property
    def pending_plans(self) -> int:
        """Scripted turns and HTTP failures not used yet."""
        return self._app.pending_plans

    @property
    def exchanges(self) -> list[Exchange]:
        """Every request and answer so far, oldest first (a copy)."""
        return self._app.exchanges

    @property
    def internal_errors(self) -> list[str]:
        """Bugs in the emulator itself (answered as 500s); tests should expect none."""
        return self._app.internal_errors

    def reset(self) -> None:
        """Forget conversations, responses, files, the script and the exchanges (between tests)."""
        self._app.reset()

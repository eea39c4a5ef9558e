"""``LoopbackServer``: a WSGI app served on 127.0.0.1 by a threaded werkzeug server in a daemon thread.

The one way the local stack listens: the HTTP API, the S3 endpoint and the OpenAI emulator subclass it and
add only what they answer.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class QuietHandler(WSGIRequestHandler):
    """No access log: tests and the demo have their own output (errors are still logged)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class LoopbackServer:
    """Serves ``app`` from ``start()`` to ``stop()`` (or as a context manager); ``url`` is where it listens.

    ``name`` names the serving thread and the error when ``url`` is asked before ``start()``; ``port`` 0 takes
    a free port.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        name: str,
        port: int = 0,
        host: str = "127.0.0.1",
        request_handler: type[WSGIRequestHandler] = QuietHandler,
    ) -> None:
        self._wsgi_app = app
        self._name = name
        self._host = host
        self._port = port
        self._request_handler = request_handler
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://<host>:<port>``, the port chosen on ``start()`` when it was 0."""
        if self._server is None:
            raise RuntimeError(f"{self._name} is not running: call start() first")
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> Self:
        """Serve in a daemon thread; calling it again while running does nothing."""
        if self._server is None:
            self._server = make_server(
                self._host, self._port, self._wsgi_app, threaded=True, request_handler=self._request_handler
            )
            self._thread = threading.Thread(target=self._server.serve_forever, name=self._name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; calling it again, or before ``start()``, does nothing."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

"""``WebhookReceiver``: an HTTP server on loopback that records the webhooks POSTed to it, for tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from local.loopback import LoopbackServer


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.time()


class WebhookReceiver(LoopbackServer):
    """Records every request; answers the statuses queued in ``answers`` first, then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []
        self._changed = threading.Condition()
        super().__init__(self._app, name="webhook-receiver")

    @property
    def hook_url(self) -> str:
        """Where threadrunner's webhook route would be."""
        return f"{self.url}/v1/webhooks/openai"

    def clear(self) -> None:
        with self._changed:
            self.received.clear()
            self.answers.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """What was received once ``count`` requests came, or as it is after ``timeout`` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        with self._changed:
            self.received.append(Received(dict(request.headers), request.get_data(), time.time()))
            status = self.answers.pop(0) if self.answers else 200
            self._changed.notify_all()
        return Response("{}", status=status, mimetype="application/json")(environ, start_response)

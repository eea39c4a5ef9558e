"""``EmulatorServer``: the emulator on 127.0.0.1 in a daemon thread, for ``make demo`` and for tests."""

from __future__ import annotations

from datetime import date

from local.emulator.app import EmulatorApp
from local.emulator.exchange import Exchange
from local.emulator.script import HttpErrorPlan, Plan
from local.loopback import LoopbackServer


class EmulatorServer(LoopbackServer):
    """An OpenAI-compatible upstream on loopback.

    ``polls`` is how many retrieves a background response stays in progress before its final status
    (plans override it with ``Plan.slow``); ``poll_after_ms`` is the ``openai-poll-after-ms`` hint sent
    while it runs; ``api_key``, when set, is the only key accepted (else any non-empty one is);
    ``today`` overrides the date the demo policy falls back to when the instructions carry none;
    ``model_seconds`` makes it time-based: a background response is final that many seconds of wall time
    after its creation, however often it is polled (``threadrunner local --model-seconds``).
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
        model_seconds: float | None = None,
    ) -> None:
        self._app = EmulatorApp(
            polls=polls,
            poll_after_ms=poll_after_ms,
            api_key=api_key,
            today=(lambda: today) if today else None,
            model_seconds=model_seconds,
        )
        super().__init__(self._app, name="openai-emulator", port=port, host=host)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what ``OpenAI(base_url=...)`` takes."""
        return f"{self.url}/v1"

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

    def open_calls(self) -> list[str]:
        """What a client left open upstream, readably: background responses still running, and function
        calls a conversation still waits an output for (either keeps the conversation from going on)."""
        return self._app.open_calls()

    def completion_times(self) -> dict[str, float]:
        """Response id -> when the model finished it (wall clock, ``time.time()``), for final responses."""
        return self._app.completion_times()

    def reset(self) -> None:
        """Forget conversations, responses, files, the script and the exchanges (between tests)."""
        self._app.reset()

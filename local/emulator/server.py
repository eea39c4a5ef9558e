"""``EmulatorServer``: the emulator on 127.0.0.1 in a daemon thread, for ``make demo`` and for tests."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date

from openai.types.webhooks import WebhookEndpointWithSecret

from local.emulator.app import EmulatorApp
from local.emulator.exchange import Exchange
from local.emulator.hosted_tools import DEFAULT_WEB_RESULTS, HostedTools, McpRequest, McpToolSpec, WebResult
from local.emulator.script import HttpErrorPlan, Plan
from local.emulator.webhook_delivery import RESPONSE_EVENTS, WebhookDelivery, WebhookFaults
from local.loopback import LoopbackServer


class EmulatorServer(LoopbackServer):
    """An OpenAI-compatible upstream on loopback.

    ``polls`` is how many retrieves a background response stays in progress before its final status
    (plans override it with ``Plan.slow``); ``poll_after_ms`` is the ``openai-poll-after-ms`` hint sent
    while it runs; ``api_key``, when set, is the only key accepted (else any non-empty one is);
    ``today`` overrides the date the demo policy falls back to when the instructions carry none;
    ``model_seconds`` makes it time-based: a background response is final that many seconds of wall time
    after its creation, however often it is polled (``threadrunner local --model-seconds``).

    Background responses that end are announced to the webhook endpoints as signed webhooks; the
    ``*webhook*`` members below are the test side of that (local/emulator/webhook_delivery.py tells the details).
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

    def wait_for_exchanges(self, count: int, timeout: float = 5.0) -> list[Exchange]:
        """``exchanges`` once it holds ``count``, or as it is after ``timeout`` seconds. A streamed answer is
        recorded once its last byte is sent, which the client may have read a moment before."""
        deadline = time.monotonic() + timeout
        while len(exchanges := self.exchanges) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return exchanges

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
        """Forget conversations, responses, files, the script and the exchanges (between tests), and the
        webhook endpoints, deliveries and knobs."""
        self._app.reset()

    def stop(self) -> None:
        """Stop serving and stop the webhook thread (undelivered webhooks are forgotten)."""
        self._app.webhooks.close()
        super().stop()

    # Hosted tools and vector stores (local/emulator/hosted_tools.py, local/emulator/vector_stores.py); reset()
    # restores the defaults.
    def advance_vector_store_clock(self, *, days: float = 0, seconds: float = 0) -> None:
        """Move the vector stores' clock forward: a store whose ``expires_after.days`` have passed since its
        last activity shows ``expired`` (reset() sets the clock back)."""
        self._app.hosted(lambda stores, _: stores.advance_clock(days * 86_400 + seconds))

    def set_web_results(self, results: Sequence[WebResult] = DEFAULT_WEB_RESULTS) -> None:
        """What every ``web_search`` finds, in order (cited by ``url_citation`` annotations)."""

        def use(_: object, hosted: HostedTools) -> None:
            hosted.web_results = tuple(results)

        self._app.hosted(use)

    def add_mcp_server(self, url: str, tools: Sequence[McpToolSpec]) -> None:
        """A fake MCP server at ``url`` serving ``tools`` (replacing any there); the default table has
        ``https://mcp.example.com/mcp`` with ``lookup_order`` and ``cancel_order``."""

        def use(_: object, hosted: HostedTools) -> None:
            hosted.mcp_servers[url] = tuple(tools)

        self._app.hosted(use)

    @property
    def mcp_requests(self) -> list[McpRequest]:
        """Every request that reached a fake MCP server (``tools/list``, ``tools/call``), with the headers
        it carried, oldest first (a copy)."""
        return self._app.hosted(lambda _, hosted: list(hosted.mcp_requests))

    # Webhooks.
    def configure_webhooks(
        self,
        *,
        delay_seconds: float = 0.0,
        duplicates: int = 1,
        drop_next: int = 0,
        drop_probability: float = 0.0,
        seed: int = 0,
        reorder_batch: int = 0,
        reorder_wait_seconds: float = 2.0,
        retries: int = 3,
        retry_backoff_seconds: float = 0.05,
    ) -> None:
        """Set every webhook delivery knob at once (the defaults: prompt, once each, in order, retried 3
        times from 50 ms): wait ``delay_seconds`` before sending; send each delivery ``duplicates`` times
        (one webhook-id); never send the next ``drop_next`` deliveries, then drop each with
        ``drop_probability`` (seeded by ``seed``); hold deliveries until ``reorder_batch`` are held (or the
        first waited ``reorder_wait_seconds``) and send them newest first; retry a connection error or a
        non-2xx answer ``retries`` times after ``retry_backoff_seconds``, doubled each time."""
        self._app.webhooks.configure(
            WebhookFaults(
                delay_seconds=delay_seconds,
                duplicates=duplicates,
                drop_next=drop_next,
                drop_probability=drop_probability,
                seed=seed,
                reorder_batch=reorder_batch,
                reorder_wait_seconds=reorder_wait_seconds,
                retries=retries,
                retry_backoff_seconds=retry_backoff_seconds,
            )
        )

    def add_webhook_endpoint(
        self,
        url: str,
        *,
        name: str = "emulator",
        event_types: Sequence[str] = tuple(RESPONSE_EVENTS.values()),
        secret: str | None = None,
    ) -> WebhookEndpointWithSecret:
        """An endpoint, as ``client.webhooks.create`` makes it, signing with ``secret`` when given (else a
        new ``whsec_...``, in ``signing_secret``)."""
        return self._app.webhooks.add_endpoint(
            name=name, url=url, event_types=list(event_types), secret=secret
        )

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every delivery attempt and every dropped delivery, oldest first (a copy)."""
        return self._app.webhooks.deliveries

    def wait_for_webhook_deliveries(self, count: int, timeout: float = 5.0) -> list[WebhookDelivery]:
        """``webhook_deliveries`` once it holds ``count`` entries, or as it is after ``timeout`` seconds."""
        return self._app.webhooks.wait_for_deliveries(count, timeout)

    @property
    def pending_webhook_deliveries(self) -> int:
        """Deliveries scheduled, held for reordering, or waiting for a retry."""
        return self._app.webhooks.pending

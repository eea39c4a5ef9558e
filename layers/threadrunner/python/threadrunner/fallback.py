"""Graceful degradation: when a run's engine has an outage, the run goes on on the environment's fallback
engine (usually ``chat``, replaying our own message log), and a circuit breaker sends the next runs straight
there for a cooling period, after which one run tries the engine again.

Outage signals (what engines/retry.py could not retry away): no connection, timeouts of calls that create
nothing, 5xx and 429 rate limits after the retries, 404/410 (an endpoint or server that is gone). Not
outages: 429 ``insufficient_quota``, 400, 401, 403: another upstream would not help a bad request, and a
missing key or quota needs a person, not a detour.

A create whose outcome is unknown (UpstreamOutcomeUnknown: timed out, a 5xx or a garbled answer) is not an
outage either: the primary may be running that very turn, so creating it again on the fallback could answer
twice. The run fails instead, and the upstream response is cancelled where its id can be known
(workflow/lost_creates.py). It does open the circuit (``suspect``): an engine that leaves creates unanswered is in
trouble, and without that every run would fail the same way while it lasts, never reaching the fallback.
Runs during the cooling period start on the fallback before asking the primary anything, which is safe.

The switch happens in Start run, before the run has any model turn (workflow/start_steps.py). A run that has
started on an engine stays on it: a later outage fails it (after the workflow's retries), and its error
opens nothing, since Start run is where the next run's engine is chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from threadrunner import clock
from threadrunner.errors import (
    UpstreamNotFound,
    UpstreamOutcomeUnknown,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from threadrunner.settings import RunSettings
from threadrunner.stores.breakers import BreakerState, CircuitBreakerStore

OFF = "off"
_REASON_CHARS = 300


@dataclass(frozen=True)
class Route:
    """Which engine a run starts on, and why it is not its own."""

    engine: str
    fallback_from: str | None = None
    reason: str | None = None
    trial: bool = False  # the breaker's cooling period is over and this run tries the engine again


def is_outage(error: BaseException) -> bool:
    """The run may move to the fallback engine: the primary provably created nothing."""
    return isinstance(error, UpstreamUnavailable | UpstreamRateLimited | UpstreamNotFound)


def is_lost_create(error: BaseException) -> bool:
    """A create whose outcome the upstream left unknown: the primary may be running it. Not our own refusal
    to create a round again after an earlier attempt's unknown outcome (its cause is the conditional
    write's ClientError): that attempt already counted."""
    return isinstance(error, UpstreamOutcomeUnknown) and not isinstance(error.__cause__, ClientError)


class Fallback:
    def __init__(self, breakers: CircuitBreakerStore, settings: RunSettings) -> None:
        self._breakers = breakers
        self._settings = settings

    def _fallback_for(self, engine: str) -> str | None:
        fallback = self._settings.fallback_engine
        return None if fallback in (OFF, "", engine) else fallback

    def route(self, engine: str) -> Route:
        """Where a run of ``engine`` starts: there, unless its circuit is open."""
        fallback = self._fallback_for(engine)
        if fallback is None:
            return Route(engine)
        environment = self._settings.environment
        state = self._breakers.get(environment, engine)
        if state is None:
            return Route(engine)
        now = clock.now().timestamp()
        if now >= state.open_until and self._breakers.take_trial(
            environment, engine, now, now + self._settings.breaker_cooling_seconds
        ):
            return Route(engine, trial=True)
        return Route(
            fallback,
            fallback_from=engine,
            reason=f"{engine} is skipped after an outage (circuit open): {state.reason}"[:_REASON_CHARS],
        )

    def failed(self, engine: str, error: BaseException) -> Route | None:
        """``engine`` had an outage: open its circuit; the route to the fallback, or None (fallback off)."""
        fallback = self._fallback_for(engine)
        if fallback is None:
            return None
        return Route(fallback, fallback_from=engine, reason=self._open(engine, error))

    def suspect(self, engine: str, error: BaseException) -> None:
        """A create on ``engine`` got no settling answer: its run fails (see the module's docstring), the
        next runs go to the fallback until the cooling period is over (nothing happens with fallback off)."""
        if self._fallback_for(engine) is not None:
            self._open(engine, error)

    def _open(self, engine: str, error: BaseException) -> str:
        now = clock.now().timestamp()
        reason = f"{type(error).__name__}: {error}"[:_REASON_CHARS]
        self._breakers.open(
            BreakerState(
                environment=self._settings.environment,
                engine=engine,
                reason=reason,
                opened_at=now,
                open_until=now + self._settings.breaker_cooling_seconds,
            )
        )
        return reason

    def succeeded(self, route: Route) -> None:
        """A run started on its engine: a trial that worked closes the circuit."""
        if route.trial:
            self._breakers.close(self._settings.environment, route.engine)

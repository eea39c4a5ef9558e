"""SDK exceptions as our error names, shared by every engine that talks through the openai SDK."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import openai

from threadrunner.engines.retry import never_sent
from threadrunner.errors import (
    UpstreamError,
    UpstreamNotFound,
    UpstreamOutcomeUnknown,
    UpstreamQuotaExceeded,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)

# Refusals that retrying will not change, each with its own workflow error name.
_REFUSALS: dict[int, type[UpstreamError]] = {
    400: UpstreamRejected,
    401: UpstreamUnauthorized,
    403: UpstreamUnauthorized,
    404: UpstreamNotFound,
    410: UpstreamNotFound,
}


@contextmanager
def upstream_errors(*, creating: bool = False) -> Iterator[None]:
    """SDK exceptions become our error names (the workflow retries some of them by name).

    ``creating``: the call starts a model turn (a response, a run, tool outputs handed over). Such a call
    whose outcome the answer does not settle may have been accepted: UpstreamOutcomeUnknown, never retried
    and never an outage to fall back from (a second create could run the model twice). Only a refusal
    settles it (a 4xx, a 429), or a connection that was never made. A 5xx does not: a proxy's 502/504 may
    follow an accepted create, and so may the upstream's own 500/503. Rate limits and, for other calls,
    5xx arrive here after engines/retry.py retried them.
    """
    try:
        yield
    # The SDK's status errors are not chained (``from None``): their text holds the upstream's whole answer,
    # which may quote the key, and a chained exception is printed with every logged traceback.
    except openai.RateLimitError as error:
        if _code(error) == "insufficient_quota":
            raise UpstreamQuotaExceeded("the upstream account has no quota left") from None
        raise UpstreamRateLimited("the upstream rate-limited the request") from None
    except (openai.APITimeoutError, openai.APIConnectionError) as error:
        if creating and not never_sent(error.__cause__ or error):
            raise UpstreamOutcomeUnknown(
                f"the upstream did not answer a create call: {type(error).__name__}"
            ) from error
        raise UpstreamUnavailable(f"the upstream did not answer: {type(error).__name__}") from error
    except (json.JSONDecodeError, openai.APIResponseValidationError):
        # A garbled answer (a truncated body, a proxy's page): like a 5xx, unless it answered a create,
        # which may then have happened.
        if creating:
            raise UpstreamOutcomeUnknown(
                "the upstream's answer to a create call was not valid JSON"
            ) from None
        raise UpstreamUnavailable("the upstream's answer was not valid JSON") from None
    except openai.InternalServerError as error:
        if creating:
            raise UpstreamOutcomeUnknown(
                f"the upstream answered {error.status_code} to a create call, which it may have accepted"
            ) from None
        raise UpstreamUnavailable(f"the upstream answered {error.status_code}") from None
    except openai.APIStatusError as error:
        raise _REFUSALS.get(error.status_code, UpstreamError)(
            f"the upstream refused the request ({error.status_code}): {_message(error)}"
        ) from None


def upstream_exists(retrieve: Callable[[], object], upstream_id: str) -> bool:
    """Whether ``retrieve`` finds the upstream thread or conversation ``upstream_id``. False only for a 404
    that names it: a server (or a wrong base URL) answering 404 to everything is an outage, and forgetting
    the id would leak a conversation we could still delete later."""
    with upstream_errors():
        try:
            retrieve()
        except openai.NotFoundError as error:
            return upstream_id not in str(error.body or error.message)
    return True


def _code(error: openai.APIStatusError) -> str | None:
    return getattr(error, "code", None)


def _message(error: openai.APIStatusError) -> str:
    """The upstream's own words (``error.message`` of its body), not the SDK's "Error code: ..." wrapper,
    with any API key in them masked: a 401 may quote the key it was given, and this text reaches the run's
    error, the workflow's state and the logs."""
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return redact_keys(str(body["message"]))[:300]
    return redact_keys(str(error.message))[:300]


# OpenAI-style keys (sk-..., sk-proj-..., partly masked or not); other providers' keys look the same.
_KEY = re.compile(r"\bsk-[A-Za-z0-9_*.\-]{3,}")


def redact_keys(text: str) -> str:
    return _KEY.sub("sk-***", text)

"""After a create call whose outcome is unknown (UpstreamOutcomeUnknown: it timed out, or was answered by a
5xx or a garbled body): the model may be running that turn upstream, and nothing may create it again. The
run fails; what can be done is to stop the turn, where the engine can find it (Assistants: the thread's run
carrying our run id, or the run that took the tool outputs). Responses cannot look a response up: its turn
runs to its end, and the thread's next start answers any call it leaves open."""

from __future__ import annotations

import logging
from collections.abc import Callable

from threadrunner.errors import UpstreamOutcomeUnknown
from threadrunner.models.records import RunRecord
from threadrunner.workflow.context import StepContext

logger = logging.getLogger(__name__)


def cancel_lost_create(
    run: RunRecord, round_number: int, find: Callable[[], str | None], ctx: StepContext
) -> str | None:
    """Cancel round ``round_number``'s upstream run if ``find`` sees it; returns its id. Best effort: the
    run fails either way, and Finish run cancels the response it has recorded."""
    try:
        found = find()
        if found is not None:
            with_round = [*run.response_ids[:round_number], found]
            ctx.engine(run.engine).cancel(run.model_copy(update={"response_ids": with_round}))
            logger.warning("run %s: cancelled %s, created by a call whose answer was lost", run.id, found)
        return found
    except UpstreamOutcomeUnknown:
        return None  # the engine cannot look it up (Responses)
    except Exception:
        logger.warning("run %s: could not look for round %s upstream", run.id, round_number, exc_info=True)
        return None

"""GET /v1/usage: the caller's usage per UTC day, as the per-user counters hold it."""

from __future__ import annotations

from datetime import date, timedelta

from threadrunner import clock
from threadrunner.errors import InvalidRequestError
from threadrunner.models.usage import DailyUsage, UsageOut
from threadrunner.services.context import ApiContext

DEFAULT_DAYS = 7


def get_usage(ctx: ApiContext, user_id: str, first: date | None, last: date | None) -> UsageOut:
    last = last or clock.now().date()
    if first is None:
        if last - date.min < timedelta(days=DEFAULT_DAYS - 1):  # the week before would be before year 1
            raise InvalidRequestError("to: too early a day to count back from", field="to")
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidRequestError("from must not be after to", field="from")
    longest = ctx.cost_settings.max_usage_days
    if (last - first).days + 1 > longest:
        raise InvalidRequestError(f"from and to may be at most {longest} days apart", field="to")
    days = ctx.usage.between(user_id, first, last)
    return UsageOut.model_validate({"from": first, "to": last, "days": days, "total": _sum(days, last)})


def _sum(days: list[DailyUsage], last: date) -> DailyUsage:
    counters = [name for name in DailyUsage.model_fields if name != "day"]
    totals = {name: sum(getattr(day, name) for day in days) for name in counters}
    totals["cost_usd"] = round(totals["cost_usd"], 8)
    return DailyUsage.model_validate({"day": last, **totals})

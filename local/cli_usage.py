"""``threadrunner usage``: the caller's runs, tokens and estimated cost by UTC day."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from local.cli_api_client import LOCAL_API_URL, ApiUrl, AsJson, Token, api_client, print_json


def usage(
    from_: Annotated[
        datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="The first UTC day.")
    ] = None,
    to: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="The last UTC day.")] = None,
    api_url: ApiUrl = LOCAL_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Your runs, tokens and estimated cost by UTC day (default: the API's range)."""
    from rich.console import Console
    from rich.table import Table

    with api_client(api_url, token) as client:
        found = client.usage.get(from_=from_.date() if from_ else None, to=to.date() if to else None)
    if as_json:
        print_json(found)
        return
    table = Table("day", "runs", "prompt", "completion", "total tokens", "cost (USD)", title="Usage")
    for day in [*found.days, found.total]:
        label = "total" if day is found.total else day.day.isoformat()
        table.add_row(
            label,
            str(day.runs),
            str(day.prompt_tokens),
            str(day.completion_tokens),
            str(day.total_tokens),
            f"{day.cost_usd:.6f}" + (f" (+{day.unpriced_runs} unpriced)" if day.unpriced_runs else ""),
            end_section=day is found.days[-1] if found.days else False,
        )
    Console().print(table)

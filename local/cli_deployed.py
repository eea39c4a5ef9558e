"""The options of the commands run against a deployed environment after ``cdk deploy`` (``threadrunner
webhooks register``, ``threadrunner knowledge sync``): which environment, its region, its upstream."""

from __future__ import annotations

from typing import Annotated

import typer

Environment = Annotated[str, typer.Option(help="The deployed environment (its stack is threadrunner-ENV).")]
BaseUrl = Annotated[
    str | None, typer.Option(help="A compatible upstream's API base URL (default: OpenAI's).")
]
Region = Annotated[str | None, typer.Option(help="The stack's AWS region (default: the AWS CLI's).")]

"""What every command on the API shares (``chat``, ``runs``, ``files``, ``usage``): the ``--api-url``,
``--token`` and ``--json`` options, the client they make, and errors told in one line (exit status 1).

The token is ``--token``, else ``THREADRUNNER_TOKEN``, else, for the local stack only, one signed as
``threadrunner token`` signs it (for demo-user)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from pydantic import BaseModel
    from threadrunner.client import Threadrunner

LOCAL_API_URL = "http://127.0.0.1:8765"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
LOCAL_USER = "demo-user"  # whom `threadrunner token` signs for by default

ApiUrl = Annotated[
    str,
    typer.Option(
        "--api-url",
        envvar="THREADRUNNER_API_URL",
        help="The API: the local stack (`threadrunner local`) or a deployment's ApiUrl.",
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        envvar="THREADRUNNER_TOKEN",
        help="A JWT for the API (default for the local stack: one `threadrunner token` signs).",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]


def is_local(api_url: str) -> bool:
    return urlsplit(api_url).hostname in LOCAL_HOSTS


def api_token(api_url: str, token: str | None) -> str:
    if token:
        return token
    if is_local(api_url):
        from local.auth import issue_token

        return issue_token(LOCAL_USER)
    raise_usage(f"no token for {api_url}: pass --token or set THREADRUNNER_TOKEN")


@contextmanager
def api_client(api_url: str, token: str | None) -> Iterator[Threadrunner]:
    """A client for the command; any ThreadrunnerError it raises ends the command with that error in one
    line on stderr, exit status 1 (Ctrl-C: 130)."""
    from threadrunner.client import Threadrunner, ThreadrunnerError

    try:
        with Threadrunner(api_url, api_token(api_url, token)) as client:
            yield client
    except ThreadrunnerError as error:
        where = f" ({error.field})" if error.field else ""
        hint = ""
        if error.code == "connection_failed" and is_local(api_url):
            hint = "; start the local stack with `threadrunner local`"
        typer.echo(f"error: {error.code}: {error.message}{where}{hint}", err=True)
        raise typer.Exit(1) from error
    except KeyboardInterrupt as interrupt:
        raise typer.Exit(130) from interrupt


def print_json(model: BaseModel) -> None:
    typer.echo(model.model_dump_json(indent=2, by_alias=True))


def raise_usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)

"""``threadrunner files upload PATH --thread T``: the file declared, sent through its presigned POST and
staged, with progress; ``--json`` prints the ready file."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from threadrunner.models.records import FilePurpose

from local.cli_api_client import LOCAL_API_URL, ApiUrl, AsJson, Token, api_client, print_json

files_app = typer.Typer(no_args_is_help=True, help="Files for runs: upload one to a thread.")


@files_app.command()
def upload(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The file.")],
    thread: Annotated[str, typer.Option(help="The thread (thr_...) whose runs may take the file.")],
    purpose: Annotated[
        FilePurpose, typer.Option(help="code_interpreter: the model analyses it; input: tools read it.")
    ] = FilePurpose.code_interpreter,
    content_type: Annotated[
        str | None, typer.Option(help="Its media type (default: guessed from the name).")
    ] = None,
    api_url: ApiUrl = LOCAL_API_URL,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Upload PATH for THREAD's runs; prints the file's id once staging made it ready."""
    from rich.console import Console

    console = Console(highlight=False)
    with (
        api_client(api_url, token) as client,
        nullcontext() if as_json else console.status(f"uploading {path.name} and waiting for staging…"),
    ):
        file = client.files.upload(path, thread, purpose=purpose, content_type=content_type)
    if as_json:
        print_json(file)
        return
    console.print(
        f"[green]✓[/] {file.id} {file.filename} ({file.size_bytes} bytes, {file.content_type}): {file.status}"
    )

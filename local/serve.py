"""``threadrunner local``: the upstream the local stack talks to (a real one when OPENAI_API_KEY is set, else
the emulator), the banner it prints, and serving the stack (local/stack.py) until Ctrl-C."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.workflows import Completion
from local.stack import LocalStack


class Upstream(BaseModel):
    base_url: str
    api_key: str
    description: str
    overrides: dict[str, str]
    emulated: bool = False


class ServeSettings(BaseSettings):
    """What ``threadrunner local`` reads from the environment: a real upstream, or none (the emulator)."""

    model_config = SettingsConfigDict(extra="ignore")

    openai_api_key: SecretStr | None = None
    openai_base_url: str = "https://api.openai.com/v1"
    threadrunner_model: str | None = Field(default=None, description="overrides the environment's model")


@contextmanager
def local_upstream(model_seconds: float | None = None) -> Iterator[Upstream]:
    """The real upstream when OPENAI_API_KEY is set, else the emulator, running until the block ends
    (``model_seconds``: the emulator's model takes that many seconds of wall time per call)."""
    settings = ServeSettings()
    overrides = {"THREADRUNNER_MODEL": settings.threadrunner_model} if settings.threadrunner_model else {}
    if settings.openai_api_key is not None:
        yield Upstream(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key.get_secret_value(),
            description=f"upstream {settings.openai_base_url}",
            overrides=overrides,
        )
        return
    from local.emulator import EmulatorServer

    with EmulatorServer(port=0, model_seconds=model_seconds) as emulator:
        yield Upstream(
            base_url=emulator.base_url,
            api_key="local-emulator",
            description=f"the OpenAI emulator at {emulator.base_url} (set OPENAI_API_KEY to use a real upstream)",
            overrides=overrides,
            emulated=True,
        )


def cli_command(cwd: Path | None = None) -> str:
    """This ``threadrunner`` as a shell word that runs from ``cwd`` (default: here) with no activated venv:
    the script beside the running interpreter (``.venv/bin/threadrunner`` from the repository root), relative
    when it lies under ``cwd``, else absolute; plain ``threadrunner`` when there is no such script."""
    import shlex
    import sys

    script = Path(os.path.abspath(sys.executable)).parent / "threadrunner"
    if not script.is_file():
        return "threadrunner"
    here = Path(os.path.abspath(cwd or Path.cwd()))
    shown = str(script.relative_to(here)) if script.is_relative_to(here) else str(script)
    return shlex.quote(shown if "/" in shown else f"./{shown}")


def banner(api_url: str, upstream: str, cli: str) -> str:
    """What ``threadrunner local`` prints once it serves: each command runs as printed (``cli`` is
    ``cli_command()``)."""
    return (
        f"threadrunner local stack: {api_url}  (model: {upstream})\n"
        f"Get a token:  {cli} token --user alice\n"
        f'Try:          curl -s -X POST {api_url}/v1/threads -H "Authorization: Bearer '
        f'$({cli} token --user alice)" -H "Content-Type: application/json" '
        """-d '{"assistant": "data-analyst", "purpose": "demo"}'\n"""
        "Stop with Ctrl-C."
    )


# completion "webhook" with the emulator and no --model-seconds: its model takes this long per call.
EMULATED_MODEL_SECONDS = 0.5


def serve(port: int, model_seconds: float | None = None, completion: str | None = None) -> None:
    """Serve the local stack on 127.0.0.1:``port`` until Ctrl-C (or SIGTERM)."""
    import signal

    access_log = logging.getLogger("local.http_api")
    access_log.addHandler(logging.StreamHandler())
    access_log.setLevel(logging.INFO)
    if model_seconds is None and completion != "poll":
        # The emulator ends a response by itself (and signs its webhook) only when its model is time based.
        model_seconds = EMULATED_MODEL_SECONDS
    with ExitStack() as running:
        upstream_ = running.enter_context(local_upstream(model_seconds))
        base_url, api_key, upstream = upstream_.base_url, upstream_.api_key, upstream_.description
        overrides = upstream_.overrides
        # A real upstream cannot reach 127.0.0.1 with its webhooks: poll it.
        chosen = completion or ("webhook" if upstream_.emulated else "poll")
        mode: Completion = "webhook" if chosen == "webhook" else "poll"
        stack = running.enter_context(
            LocalStack(
                upstream_base_url=base_url,
                api_key=api_key,
                port=port,
                overrides=overrides,
                completion=mode,
            )
        )
        print(banner(stack.api_url, upstream, cli_command()), flush=True)
        stopped = threading.Event()
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, lambda *_: stopped.set())
        stopped.wait()
    print("local stack stopped")

"""Lambda, in process: ``functions/<folder>/handler.py`` called the way the Lambda runtime calls it.

The state machine reaches the handlers through moto (its Lambda tasks land in
``LambdaSimpleBackend.invoke``, which :meth:`LambdaDispatch.patch_moto` replaces) and the HTTP API adapter
calls :meth:`LambdaDispatch.invoke` directly, so both paths see the same events, context and error shape.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

from moto.awslambda_simple.models import LambdaSimpleBackend
from pydantic import BaseModel, ConfigDict, Field
from threadrunner.tools import registry
from threadrunner.tools.tool_lambda import TOOL_NAME_VARIABLE

FUNCTION_PREFIX = "threadrunner-local-"
TOOL_CODE_FOLDER = "run_tool"  # every tool's Lambda runs functions/run_tool (as infra deploys it)
logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]


class LambdaError(BaseModel):
    """What Lambda returns for an unhandled exception; Step Functions names the error after ``errorType``."""

    model_config = ConfigDict(populate_by_name=True)

    error_type: str = Field(alias="errorType")
    error_message: str = Field(alias="errorMessage")

    def to_payload(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class FunctionNotFoundError(LookupError):
    """No ``functions/<folder>/handler.py`` for that function name."""


@dataclass(frozen=True)
class FunctionAlias:
    """A function deployed from another function's code folder with its own environment (as CDK deploys
    functions/run_tool once per tool, each with its THREADRUNNER_TOOL_NAME)."""

    folder: str
    environment: Mapping[str, str] = field(default_factory=dict)


def tool_function_alias(function: str) -> FunctionAlias | None:
    """``tool_<name>`` for each tool registered when the function is first invoked -> functions/run_tool."""
    for tool in registry.TOOLS.values():
        if tool.function_id == function:
            return FunctionAlias(TOOL_CODE_FOLDER, {TOOL_NAME_VARIABLE: tool.name})
    return None


@dataclass(frozen=True)
class Invocation:
    """One invocation's outcome: the handler's JSON result, or the error Lambda would report."""

    payload: Any = None
    error: LambdaError | None = None


def _failure(error_type: str, message: str) -> Invocation:
    return Invocation(error=LambdaError(errorType=error_type, errorMessage=message))


@dataclass(frozen=True)
class LambdaContext:
    """The context object the Python runtime passes; Powertools reads these attributes."""

    function_name: str
    invoked_function_arn: str
    timeout_seconds: float
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    identity: None = None
    client_context: None = None
    _started: float = field(default_factory=time.monotonic)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[{self.function_version}]{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class LambdaDispatch:
    """Maps function names (``threadrunner-local-<folder>``, or their ARNs) to handlers and calls them.

    Handlers are imported once per dispatch (a cold start), then called concurrently: Map iterations and
    HTTP requests run in parallel threads, as separate Lambda instances would. A function without a folder
    of its own may be an alias (``aliases``: each tool's function runs functions/run_tool); it is imported
    as its own module, with its alias's environment set while it imports (its INIT): the process shares
    one environment, so per-function variables are read at import.
    """

    def __init__(
        self,
        functions_dir: Path,
        *,
        region: str,
        account: str,
        timeout_seconds: float = 60,
        aliases: Callable[[str], FunctionAlias | None] = tool_function_alias,
        timeout_for: Callable[[str], float] | None = None,
    ) -> None:
        self.functions_dir = functions_dir
        self.aliases = aliases
        self.region = region
        self.account = account
        self.timeout_seconds = timeout_seconds
        self.timeout_for = timeout_for  # a function's own timeout, by folder (else timeout_seconds)
        self._handlers: dict[str, Handler] = {}
        self._import_lock = threading.Lock()
        self._in_flight = threading.Condition()
        self._running = 0
        self._closed = False
        # Called after every invocation with the function's folder and its duration in seconds (the bench).
        self._observers: list[Callable[[str, float], None]] = []

    def function_name(self, folder: str) -> str:
        return f"{FUNCTION_PREFIX}{folder}"

    def function_arn(self, folder: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name(folder)}"

    def tool_functions(self) -> dict[str, str]:
        """Tool name -> the ARN of its own function, for every registered tool (Check run routes by it)."""
        return {tool.name: self.function_arn(tool.function_id) for tool in registry.TOOLS.values()}

    def folder_for(self, function: str) -> str:
        """``threadrunner-local-start_run``, its ARN, or either with a qualifier -> ``start_run``."""
        name = function.split(":function:", 1)[-1].split(":", 1)[0]
        if not name.startswith(FUNCTION_PREFIX):
            raise FunctionNotFoundError(f"function {function!r} is not a local threadrunner function")
        return name.removeprefix(FUNCTION_PREFIX)

    def invoke(self, function: str, event: Any) -> Invocation:
        """Call the handler with a JSON copy of ``event``; exceptions become the Lambda error shape."""
        with self._in_flight:
            if self._closed:
                return _failure("ServiceException", "stack stopped")
            self._running += 1
        try:
            return self._invoke(function, event)
        finally:
            with self._in_flight:
                self._running -= 1
                self._in_flight.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no handler runs; False if some were still running after ``timeout`` seconds."""
        with self._in_flight:
            return self._in_flight.wait_for(lambda: self._running == 0, timeout)

    def close(self, timeout: float) -> bool:
        """Refuse new invocations and wait for running ones; False if some were still running."""
        with self._in_flight:
            self._closed = True
            return self._in_flight.wait_for(lambda: self._running == 0, timeout)

    @contextmanager
    def observed(self, observer: Callable[[str, float], None]) -> Iterator[None]:
        """Call ``observer(folder, seconds)`` after each invocation while the block runs (counting them)."""
        self._observers.append(observer)
        try:
            yield
        finally:
            self._observers.remove(observer)

    def handler_for(self, folder: str) -> Handler:
        """The handler ``functions/<folder>`` runs as (imported on first use, as a cold start would)."""
        return self._handler(folder)

    @contextmanager
    def replaced(self, folder: str, handler: Handler) -> Iterator[None]:
        """Call ``handler`` instead of ``functions/<folder>`` while the block runs (fault injection: a function
        that keeps failing, as a broken deployment or a dependency outage would make it)."""
        original = self._handler(folder)
        with self._import_lock:
            self._handlers[folder] = handler
        try:
            yield
        finally:
            with self._import_lock:
                self._handlers[folder] = original

    @contextmanager
    def patch_moto(self) -> Iterator[None]:
        """Route moto's Lambda invocations (the state machine's tasks) to :meth:`invoke`."""
        dispatch = self

        def invoke(
            backend: LambdaSimpleBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: dict[str, str],
        ) -> bytes:
            outcome = dispatch.invoke(function_name, json.loads(body) if body else {})
            if outcome.error is not None:
                response_headers["x-amz-function-error"] = "Unhandled"
                return outcome.error.to_payload()
            return json.dumps(outcome.payload).encode()

        with mock.patch.object(LambdaSimpleBackend, "invoke", invoke):
            yield

    def _invoke(self, function: str, event: Any) -> Invocation:
        try:
            folder = self.folder_for(function)
            handler = self._handler(folder)
        except FunctionNotFoundError as error:
            return _failure("ResourceNotFoundException", str(error))
        except Exception as error:
            # Like a failed INIT phase: reported as an import error, retried on the next invocation.
            logger.exception("%s failed to import", function)
            return _failure("Runtime.ImportModuleError", str(error))
        context = LambdaContext(
            function_name=self.function_name(folder),
            invoked_function_arn=self.function_arn(folder),
            timeout_seconds=self.timeout_for(folder) if self.timeout_for else self.timeout_seconds,
        )
        started = time.monotonic()
        try:
            result = handler(json.loads(json.dumps(event)), context)
        except Exception as error:
            # Lambda logs the stack trace; the caller only gets the type and the message.
            logger.exception("%s failed (request %s)", context.function_name, context.aws_request_id)
            return _failure(type(error).__name__, str(error))
        finally:
            for observer in list(self._observers):
                observer(folder, time.monotonic() - started)
        try:
            return Invocation(payload=json.loads(json.dumps(result)))
        except (TypeError, ValueError) as error:
            return _failure("Runtime.MarshalError", str(error))

    def _handler(self, folder: str) -> Handler:
        with self._import_lock:
            if folder not in self._handlers:
                self._handlers[folder] = self._import_handler(folder)
            return self._handlers[folder]

    def _import_handler(self, folder: str) -> Handler:
        if not folder.isidentifier():
            raise FunctionNotFoundError(f"no handler for {self.function_name(folder)!r}")
        alias = None if (self.functions_dir / folder).is_dir() else self.aliases(folder)
        code_root = self.functions_dir / (alias.folder if alias else folder)
        path = code_root / "handler.py"
        if not path.is_file():
            raise FunctionNotFoundError(f"no handler for {self.function_name(folder)!r} at {path}")
        # A unique name per dispatch: every local stack gets its own cold start.
        module_name = f"local_lambda_{id(self):x}_{folder}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # pydantic and dataclasses resolve annotations through it
        # In Lambda the function's folder is the code root, so sibling modules import by their bare names.
        sys.path.insert(0, str(code_root))
        environment = dict(alias.environment) if alias else {}
        previous = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)  # under the import lock: no other function imports meanwhile
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
        finally:
            sys.path.remove(str(code_root))
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        handler = getattr(module, "lambda_handler", None)
        if not callable(handler):
            raise FunctionNotFoundError(f"{path} defines no lambda_handler(event, context)")
        return handler

"""The threadrunner API from Python, sync (``Threadrunner``) and async (``AsyncThreadrunner``), typed with the
API's own models; every error a ``ThreadrunnerError`` with the API's ``code``, ``message`` and ``field``.

    with Threadrunner("http://127.0.0.1:8765", token) as client:
        thread = client.threads.get_or_create("data-analyst", "weekly-report")
        run = client.runs.wait(client.runs.create(thread.id, "Sales by region?").id)

The only module of the library that imports httpx: no function imports this package.
"""

from threadrunner.client.async_client import AsyncThreadrunner
from threadrunner.client.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectionLostError,
    FileRejectedError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StorageError,
    ThreadrunnerError,
    WaitTimeoutError,
)
from threadrunner.client.run_following import TERMINAL_STATUSES, is_settled
from threadrunner.client.sync_client import Threadrunner

__all__ = [
    "TERMINAL_STATUSES",
    "AsyncThreadrunner",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ConnectionLostError",
    "FileRejectedError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "StorageError",
    "Threadrunner",
    "ThreadrunnerError",
    "WaitTimeoutError",
    "is_settled",
]

"""GET /v1/openapi.json: the app's OpenAPI document, with what this deployment enforces beyond the models (its
assistants, file types and sizes, message length, files per run), so that a request the document calls valid
is one the API takes, and one it refuses is refused (422). GET /v1/docs shows it in Swagger UI.

The docs page carries the document and Swagger UI's script and style inline (the copies Powertools ships): it
loads nothing from elsewhere, so it works offline and behind a strict egress policy, and it needs no token
(a browser opening a link sends none; "Authorize" takes one for trying the routes out)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Powertools' OpenAPI models and Swagger UI are imported when a document or page is first built, not at the
# API's INIT: most requests never build one.
if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    from threadrunner.settings import FileSettings, RunSettings

TITLE = "threadrunner"
VERSION = "1.0.0"
DESCRIPTION = (
    "Every request carries a JWT (Authorization: Bearer), whose sub (1 to 256 characters) is the user; OPTIONS "
    "needs none and answers a path's methods in Allow, as a 405 does for a method the path lacks. A body is "
    "application/json (else 415), UTF-8 text (a lone surrogate escape such as \\ud800 is none), nested at most "
    "32 levels, its integers at most 32 digits (else 422). API Gateway decodes a path before routing it: a / or "
    "? sent encoded in a parameter ends it. Rules of state or of two fields, which a schema cannot state, are a "
    "422 too: the caller's storage quota, a file of another thread, usage's from and to against each other and "
    "today."
)


def api_document(
    app: APIGatewayHttpResolver, *, assistants_dir: Path, files: FileSettings, runs: RunSettings
) -> dict[str, Any]:
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description=DESCRIPTION,
            security_schemes={"jwt": HTTPBearer(bearerFormat="JWT")},
            security=[{"jwt": []}],
        )
    )
    schemas = document["components"]["schemas"]
    thread = schemas["CreateThreadRequest"]["properties"]
    thread["assistant"]["enum"] = assistant_names(assistants_dir)
    upload = schemas["CreateFileRequest"]["properties"]
    upload["content_type"]["enum"] = list(files.allowed_file_types)
    upload["size_bytes"]["maximum"] = files.max_file_bytes
    run = schemas["CreateRunRequest"]["properties"]
    run["message"]["maxLength"] = min(run["message"]["maxLength"], runs.max_message_chars)
    run["file_ids"]["maxItems"] = min(run["file_ids"]["maxItems"], files.max_files_per_run)
    return document


def assistant_names(directory: Path) -> list[str]:
    """The assistants as code (``assistants/<name>.yaml``) a thread may be created for."""
    return sorted(path.stem for path in directory.glob("*.yaml"))


def docs_page(document: dict[str, Any]) -> str:
    """Swagger UI for ``document``, self-contained: the document, script and style are in the page."""
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    script, style = _swagger_ui_assets()
    # "</" inside a <script> would end it: a description may hold "</script>".
    spec = json.dumps(document).replace("</", "<\\/")
    page = generate_swagger_html(spec, script, style, swagger_base_url="", oauth2_config=None)
    return page.replace("<title>Swagger UI</title>", f"<title>{TITLE} API</title>", 1)


@cache
def _swagger_ui_assets() -> tuple[str, str]:
    """Swagger UI's bundle and style as Powertools ships them (read once per Lambda environment)."""
    import aws_lambda_powertools.event_handler.openapi.swagger_ui as swagger_ui

    folder = Path(swagger_ui.__file__).parent
    return (
        (folder / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (folder / "swagger-ui.min.css").read_text(encoding="utf-8"),
    )

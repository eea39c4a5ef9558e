"""The HTTP API's routes in API Gateway, one table for the CDK construct (infra/constructs/api.py) and the local
HTTP API (local/http_api.py), and how API Gateway picks the route a request takes.

Every method of every path under /v1/ reaches the API Lambda (``ANY``): the Lambda, which knows its paths,
answers a method a path lacks with 405 and ``Allow`` (API Gateway alone would answer 404). ``OPTIONS`` has a
route of its own without the JWT authorizer: a browser's CORS preflight carries no token, and API Gateway
sends a preflight to a matching route (``ANY`` would match it) rather than answering it, so the Lambda answers
OPTIONS, from its route table alone (API Gateway adds the CORS headers). ``GET /v1/docs`` (Swagger UI) has no
authorizer either: a browser opening the page sends no token, and the page shows the API's document, no data.
The routes that start work have their own keys, so that their stricter throttling (route settings) applies to
them alone. ``POST /v1/webhooks/openai`` goes to a Lambda of its own (``openai_webhook``), without the JWT
authorizer: the upstream signs its webhooks (Standard Webhooks), and the Lambda checks the signature.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROXY_PATH = "/v1/{proxy+}"


@dataclass(frozen=True)
class GatewayRoute:
    method: str  # an HTTP method, or ANY
    path: str  # API Gateway's template: {name} is one segment, {name+} the rest of the path
    authorized: bool = True  # behind the JWT authorizer
    function: str = "api"  # the Lambda (functions/<folder>) the route invokes

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


EVERY_METHOD = GatewayRoute("ANY", PROXY_PATH)
OPTIONS = GatewayRoute("OPTIONS", PROXY_PATH, authorized=False)
DOCS = GatewayRoute("GET", "/v1/docs", authorized=False)
CREATE_RUN = GatewayRoute("POST", "/v1/threads/{thread_id}/runs")
CREATE_FILE = GatewayRoute("POST", "/v1/files")
OPENAI_WEBHOOK = GatewayRoute("POST", "/v1/webhooks/openai", authorized=False, function="openai_webhook")
# The Assistants-v2-compatible API (threadrunner/compat): its own Lambda, the same JWT.
COMPAT = GatewayRoute("ANY", "/compat/v1/{proxy+}", function="compat_api")
ROUTES = (EVERY_METHOD, OPTIONS, DOCS, CREATE_RUN, CREATE_FILE, OPENAI_WEBHOOK, COMPAT)

_VARIABLE = re.compile(r"\{(\w+)(\+?)\}")


@dataclass(frozen=True)
class Selected:
    route: GatewayRoute
    path_parameters: dict[str, str]


def select(routes: tuple[GatewayRoute, ...], method: str, path: str) -> Selected | None:
    """The route API Gateway gives ``method path`` (a decoded path), with its path parameters; None: its 404.

    The most specific route wins: a path without a greedy variable over one with it, more literal segments over
    fewer, then a route for the method over ``ANY``."""
    candidates = []
    for route in routes:
        if route.method not in (method.upper(), "ANY"):
            continue
        found = _pattern(route.path).fullmatch(path)
        if found is None:
            continue
        greedy = route.path.endswith("+}")
        literal_segments = sum(1 for part in route.path.split("/") if part and not part.startswith("{"))
        rank = (greedy, -literal_segments, route.method == "ANY")
        candidates.append((rank, Selected(route, dict(found.groupdict()))))
    return min(candidates, key=lambda candidate: candidate[0])[1] if candidates else None


def _pattern(template: str) -> re.Pattern[str]:
    parts = []
    position = 0
    for variable in _VARIABLE.finditer(template):
        parts.append(re.escape(template[position : variable.start()]))
        name, greedy = variable.groups()
        parts.append(f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)")
        position = variable.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts), re.DOTALL)  # a decoded path may hold a line break

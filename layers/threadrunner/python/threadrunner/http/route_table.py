"""Which methods each path of the API has, read from the app's own OpenAPI document (never a list kept by
hand): a method a path lacks is a 405 naming the ones it has in ``Allow``, and OPTIONS answers with them.

Powertools routes a path parameter only when every character of it is one of ``SEGMENT_CHARACTERS``; a
documented path and method whose parameter holds another is a 422 naming it (as the parameter's own pattern
would), not a 404 for a route that exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import _SAFE_URI, _UNSAFE_URI

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAMETER = re.compile(r"\{([^}/]+)\}")
# What Powertools matches a path parameter with (api_gateway._NAMED_GROUP_BOUNDARY_PATTERN).
_ROUTABLE = re.compile(rf"^[{_SAFE_URI}{_UNSAFE_URI}\w]+$")
# What a path parameter may hold, as documented: what Powertools routes, but %, since API Gateway decodes a
# path twice (a % reaches the API only sent as %2525; %25 alone is a 400 of API Gateway's).
PATH_PARAMETER_PATTERN = rf"^[{_SAFE_URI}{_UNSAFE_URI.replace('%', '')}\w]+$"


@dataclass(frozen=True)
class PathMethods:
    template: str  # as documented: /v1/threads/{thread_id}
    methods: frozenset[str]  # upper case
    with_body: frozenset[str]  # the methods that read a request body

    def unroutable_parameter(self, path: str) -> str | None:
        """The first parameter of ``path`` (an instance of this one) that Powertools does not route, if any."""
        found = _matcher(self.template).fullmatch(path)
        return next(
            (
                name
                for name, value in (found.groupdict() if found else {}).items()
                if not _ROUTABLE.match(value)
            ),
            None,
        )

    @property
    def allow(self) -> str:
        """The ``Allow`` header: the path's methods and OPTIONS, which the API answers for every path."""
        return ", ".join(sorted(self.methods | {"OPTIONS"}))


class RouteTable:
    def __init__(self, document: dict[str, Any]) -> None:
        self._paths: list[tuple[re.Pattern[str], PathMethods]] = []
        for template, item in document.get("paths", {}).items():
            operations = {method: item[method] for method in HTTP_METHODS if method in item}
            entry = PathMethods(
                template=template,
                methods=frozenset(method.upper() for method in operations),
                with_body=frozenset(
                    method.upper() for method, op in operations.items() if "requestBody" in op
                ),
            )
            self._paths.append((_matcher(template), entry))
        # A literal segment beats a parameter, as in routing: /v1/users/me/data is not /v1/threads/{id}.
        self._paths.sort(key=lambda found: found[1].template.count("{"))

    def find(self, path: str) -> PathMethods | None:
        """The documented path ``path`` is an instance of (a parameter is any one segment), if any."""
        return next((entry for pattern, entry in self._paths if pattern.fullmatch(path)), None)

    def reads_body(self, method: str, path: str) -> bool:
        entry = self.find(path)
        return entry is not None and method.upper() in entry.with_body


def _matcher(template: str) -> re.Pattern[str]:
    parts = []
    position = 0
    for parameter in _PARAMETER.finditer(template):
        parts.append(re.escape(template[position : parameter.start()]))
        parts.append(f"(?P<{parameter.group(1)}>[^/]+)")
        position = parameter.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts))

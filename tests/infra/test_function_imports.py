"""What each kind of function imports, measured (each handler in a fresh interpreter, tracing on as in
Lambda), against what it must not import at INIT and against the dependency layers it ships: no function
ships a package it never imports, none lacks one it does. Timing: ``threadrunner bench imports``."""

from __future__ import annotations

import sys
from functools import cache
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from threadrunner.function_kinds import FunctionKind

from infra.bundling import (
    DEPENDENCY_LAYERS,
    DependencyLayer,
    layer_distributions,
    runtime_provided_distributions,
    runtime_requirements,
)
from infra.constants import ALL_FUNCTIONS, LambdaName
from local.handler_imports import Probe, lambda_environment, run_all
from tests.infra.synth import Synthesized, render

# Library modules a kind loads on first use, not at INIT: the engines (openai), the SQL tools' database code.
ENGINES = ("threadrunner.engines.responses", "threadrunner.engines.chat", "threadrunner.engines.files")
ON_FIRST_USE: dict[FunctionKind, tuple[str, ...]] = {
    FunctionKind.api: (),
    FunctionKind.model: ENGINES,
    FunctionKind.housekeeping: ENGINES,
    # the fan-out and webhook delivery: their handlers import all of their library; the AWS SDK and urllib3
    # on first use are the runtime's own
    FunctionKind.events: (),
    FunctionKind.tools: (
        "threadrunner.tools.sql_policy",
        "threadrunner.tools.sqlite_guard",
        "threadrunner.tools.postgres",
    ),
}
MODEL_PACKAGES = {"openai", "httpx", "httpx2"}
SQL_PACKAGES = {"sqlalchemy", "sqlglot", "psycopg"}
NOT_AT_INIT: dict[FunctionKind, set[str]] = {
    FunctionKind.api: MODEL_PACKAGES | SQL_PACKAGES,
    FunctionKind.housekeeping: MODEL_PACKAGES | SQL_PACKAGES,
    FunctionKind.model: MODEL_PACKAGES | SQL_PACKAGES,  # openai on first use: about a second of INIT
    FunctionKind.tools: MODEL_PACKAGES | {"sqlglot", "psycopg"},  # SQLAlchemy: traced (X-Ray patches it)
    FunctionKind.events: MODEL_PACKAGES | SQL_PACKAGES,  # and never shipped: core layer only
}
# Imported here because this environment has them (tests and local mode install them), only when installed.
OPTIONAL_IMPORTS = {
    "certifi",  # botocore.httpsession: its CA bundle if installed, else the runtime's own
    "mypy-extensions",  # sqlglot.helper: mypyc attributes if installed (mypy's), else plain classes
}


@cache
def probes() -> dict[str, Probe]:
    """Every function (each tool's Lambda too), two interpreters at a time."""
    calls = [
        (
            name.code_folder,
            lambda_environment(kind=name.kind.value, tool=getattr(name, "tool", None)),
            ON_FIRST_USE[name.kind],
        )
        for name in ALL_FUNCTIONS
    ]
    return dict(zip((name.value for name in ALL_FUNCTIONS), run_all(calls), strict=True))


def distributions_of(packages: frozenset[str]) -> set[str]:
    """The installed distributions that provide these top-level packages (the standard library's: none)."""
    providers = metadata.packages_distributions()
    found = set()
    for package in packages - set(sys.stdlib_module_names) - {"threadrunner", "handler"}:
        found.update(canonicalize_name(name) for name in providers.get(package, ()))
    return found


@pytest.mark.parametrize("name", ALL_FUNCTIONS, ids=str)
def test_a_handler_imports_only_what_its_kind_uses_at_init(name: LambdaName) -> None:
    imported = probes()[name.value].at_init

    assert not imported & NOT_AT_INIT[name.kind], f"{name} ({name.kind}) imports at INIT"


@pytest.mark.parametrize("name", ALL_FUNCTIONS, ids=str)
def test_a_functions_layers_ship_what_it_imports_and_no_package_it_never_imports(
    dev: Synthesized, name: LambdaName
) -> None:
    installed = list(metadata.distributions())
    contents = layer_distributions(runtime_requirements(), installed)
    layers = {
        f"<{key}>": DependencyLayer(value["Properties"]["Description"].rsplit(": ", 1)[1])
        for key, value in dev.resources("AWS::Lambda::LayerVersion").items()
        if value["Properties"]["Description"].startswith("threadrunner runtime dependencies: ")
    }
    attached = [layers[render(layer)] for layer in dev.function(name)[1]["Properties"]["Layers"]
                if render(layer) in layers]  # fmt: skip
    shipped = set().union(*(contents[layer] for layer in attached))
    imported = (
        distributions_of(probes()[name.value].on_use)
        - runtime_provided_distributions(installed)
        - OPTIONAL_IMPORTS
    )

    # Given the kind's layers, as CDK attaches them
    assert sorted(attached) == sorted(DEPENDENCY_LAYERS[name.kind])
    # Then everything the function imports is in them
    assert imported <= shipped, f"{name} imports {sorted(imported - shipped)}, not in its layers"
    # And every requirement its kind's own layers add to core (shared by every function) is one it imports
    added = set().union(*(contents[layer] for layer in attached if layer is not DependencyLayer.core))
    roots = {canonicalize_name(Requirement(requirement).name) for requirement in runtime_requirements()}
    assert added & roots <= imported, f"{name} ships {sorted(added & roots - imported)}, never imported"

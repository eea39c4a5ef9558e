"""`make demo` installs the runtime and the `local` extra only: no CDK, lint, type-check, test or fuzz tool,
and local mode imports nothing beyond them. `dev` (what `make test` adds) is `local` plus those tools."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
DEV_ONLY = {
    "aws-cdk-lib",
    "constructs",
    "cdk-nag",
    "cfn-lint",
    "openapi-core",
    "pytest",
    "pytest-xdist",
    "ruff",
    "mypy",
    "types-pyyaml",
    "schemathesis",
    "hypothesis",
}
FIRST_PARTY = {"threadrunner", "local", "functions", "infra"}
# What local mode runs: the CLI, the stack, the demo, and the code the stack calls in process.
SOURCES = [ROOT / "local", ROOT / "layers" / "threadrunner" / "python" / "threadrunner", ROOT / "functions"]
LOCAL_MODULES = [
    "local.cli",
    "local.stack",
    "local.serve",
    "local.demo",
    "local.emulator",
    "local.http_api",
    "local.auth",
]


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(line).name) for line in requirements}


@cache
def lean_closure() -> frozenset[str]:
    """The distributions `pip install -e '.[local]'` brings: runtime and local requirements, transitively
    (read from what is installed here, which holds at least as much)."""
    seen: set[str] = set()
    pending = [Requirement(line) for line in PROJECT["dependencies"] + EXTRAS["local"]]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name == "threadrunner":  # a self-reference: its extras
            pending += [Requirement(line) for extra in requirement.extras for line in EXTRAS[extra]]
            continue
        if name in seen:
            continue
        seen.add(name)
        environments = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
        for line in metadata.requires(name) or []:
            dependency = Requirement(line)
            if dependency.marker is None or any(dependency.marker.evaluate(env) for env in environments):
                pending.append(dependency)
    return frozenset(seen)


@cache
def top_level_distributions() -> dict[str, frozenset[str]]:
    """Each importable top-level name -> the installed distributions that provide it."""
    return {
        top_level: frozenset(canonicalize_name(name) for name in distributions)
        for top_level, distributions in metadata.packages_distributions().items()
    }


def distributions_of(top_level: str) -> frozenset[str]:
    return top_level_distributions().get(top_level, frozenset())


def test_the_local_extra_has_no_dev_only_tool_and_dev_builds_on_it() -> None:
    assert names(EXTRAS["local"]) & DEV_ONLY == set()
    assert "threadrunner[local]" in EXTRAS["dev"]
    assert names(EXTRAS["dev"]) - {"threadrunner"} >= DEV_ONLY - {"hypothesis"}
    # Every requirement stays pinned.
    for line in PROJECT["dependencies"] + EXTRAS["local"] + EXTRAS["dev"]:
        requirement = Requirement(line)
        assert requirement.name == "threadrunner" or str(requirement.specifier).startswith("=="), line


def test_nothing_dev_only_comes_in_transitively() -> None:
    assert lean_closure() & DEV_ONLY == set()


def imports_in(path: Path) -> set[str]:
    """Top-level names a file imports anywhere (functions included), except under ``if TYPE_CHECKING``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def test_local_mode_imports_only_runtime_and_local_packages() -> None:
    # Given every import in local mode's code, lazy ones inside functions included
    imported = {
        (str(path.relative_to(ROOT)), name)
        for source in SOURCES
        for path in source.rglob("*.py")
        for name in imports_in(path)
        if name not in sys.stdlib_module_names and name not in FIRST_PARTY
    }
    # Then each comes from a distribution the lean install has
    outside = sorted((path, name) for path, name in imported if not distributions_of(name) & lean_closure())
    assert outside == []


# Run in a fresh interpreter where every package outside the lean install cannot be imported, as in a venv
# `make demo` made (optional imports, such as httpx's of click, then fall back as they would there).
LEAN_PROBE = """
import importlib.abc, json, sys
blocked = set(json.loads(sys.argv[1]))

class Lean(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the lean install)", name=name)
        return None

sys.meta_path.insert(0, Lean())
for name in sys.argv[2:]:
    __import__(name)
print(sorted({name.partition(".")[0] for name in sys.modules} & blocked))
"""


def test_the_local_entry_points_import_in_a_lean_install() -> None:
    # Given an interpreter that can import only the runtime, the local extra and the venv's own pip/setuptools
    allowed = lean_closure() | {"pip", "setuptools", "wheel"}
    blocked = sorted(
        top_level
        for top_level, distributions in top_level_distributions().items()
        if top_level not in FIRST_PARTY and not distributions & allowed
    )
    assert "aws_cdk" in blocked and "mypy" in blocked
    # When it imports what `threadrunner demo` and `threadrunner local` load
    result = subprocess.run(
        [sys.executable, "-c", LEAN_PROBE, json.dumps(blocked), *LOCAL_MODULES],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    # Then it succeeds and loaded nothing from outside
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"

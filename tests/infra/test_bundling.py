"""Layer bundling without Docker: the threadrunner layer for real, the dependency layer's pip call faked."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

from infra import bundling


def test_cdk_bundles_the_threadrunner_layer_locally(tmp_path: Path) -> None:
    # Given a stack holding only the layer, with bundling on (the default)
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "LayerOnly")
    lambda_.LayerVersion(stack, "Library", code=bundling.library_layer_code())

    # When CDK synthesizes it (through jsii, calling our ILocalBundling instead of Docker)
    app.synth()

    # Then the staged asset is the layer: library, assistants and the sample database
    (asset,) = [path for path in (tmp_path / "cdk.out").iterdir() if path.name.startswith("asset.")]
    assert (asset / "python" / "threadrunner" / "__init__.py").is_file()
    assert (asset / "python" / "threadrunner" / "stores" / "tables.py").is_file()
    assert not list(asset.rglob("__pycache__")) and not list(asset.rglob("*.pyc"))
    assert (asset / "assistants" / "data-analyst.yaml").is_file()
    with sqlite3.connect(f"file:{asset / 'data' / 'sample.db'}?mode=ro", uri=True) as database:
        tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sales", "customers", "products"} <= tables


def test_runtime_requirements_are_the_projects_dependencies_without_boto3() -> None:
    requirements = bundling.runtime_requirements()

    assert any(requirement.startswith("aws-lambda-powertools") for requirement in requirements)
    assert any(requirement.startswith("pydantic==") for requirement in requirements)
    assert not any(requirement.startswith(("boto3", "moto", "aws-cdk-lib")) for requirement in requirements)


def test_the_cache_key_follows_the_requirement_list() -> None:
    key = bundling.requirements_key(("a==1", "b==2"))

    assert key == bundling.requirements_key(("b==2", "a==1"))
    assert key != bundling.requirements_key(("a==1", "b==3"))


def test_dependencies_are_installed_once_for_the_lambda_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_pip(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        site = Path(command[command.index("--target") + 1])
        for package in ("pydantic", "botocore", "botocore-1.40.0.dist-info", "boto3"):
            (site / package).mkdir(parents=True)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(bundling.subprocess, "run", fake_pip)

    first = bundling.cached_dependencies(("pydantic==2.14.4",), cache_dir=tmp_path)
    second = bundling.cached_dependencies(("pydantic==2.14.4",), cache_dir=tmp_path)

    assert first == second and len(calls) == 1
    (command,) = calls
    assert command[-1] == "pydantic==2.14.4"
    for argument in ("--only-binary=:all:", "--no-compile", "manylinux2014_x86_64", "3.12"):
        assert argument in command
    # The runtime provides boto3 and botocore; only what it lacks is in the layer.
    assert sorted(path.name for path in (first / "python").iterdir()) == ["pydantic"]
    assert [path.name for path in tmp_path.iterdir()] == [first.name]


def _distribution(site: Path, name: str, requires: list[str], files: list[str]) -> None:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    (info / "METADATA").write_text("\n".join([*metadata, *(f"Requires-Dist: {r}" for r in requires)]) + "\n")
    for file in files:
        (site / file).parent.mkdir(parents=True, exist_ok=True)
        (site / file).write_text("")
    record = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{path},,\n" for path in record))


def test_the_bundle_splits_into_layers_by_what_each_requirement_needs(tmp_path: Path) -> None:
    # Given one bundle: core needs pydantic (and a Windows-only package), openai shares pydantic and needs
    # httpx2, sqlglot needs nothing, and botocore's urllib3 stayed behind (the runtime has both)
    site = tmp_path / "python"
    _distribution(site, "pydantic", ['colorama; sys_platform == "win32"'], ["pydantic/__init__.py"])
    _distribution(site, "openai", ["pydantic", "httpx2"], ["openai/__init__.py", "bin/openai"])
    _distribution(site, "httpx2", [], ["httpx2/__init__.py"])
    _distribution(site, "sqlglot", ['duckdb; extra == "dev"'], ["sqlglot/__init__.py"])
    _distribution(site, "colorama", [], ["colorama/__init__.py"])
    _distribution(site, "urllib3", [], ["urllib3/__init__.py"])
    requirements = ("pydantic==1.0", "openai==1.0", "sqlglot==1.0")

    # When it is split
    files = {
        layer: {str(path) for path in bundling.layer_files(tmp_path, layer, requirements)}
        for layer in bundling.DependencyLayer
    }

    # Then each package is in one layer, the one of the first requirement that needs it on the runtime
    core, model, tools = (files[layer] for layer in bundling.DependencyLayer)
    assert "python/pydantic/__init__.py" in core and "python/pydantic-1.0.dist-info/RECORD" in core
    assert {"python/openai/__init__.py", "python/httpx2/__init__.py"} <= model
    assert tools == {
        "python/sqlglot/__init__.py",
        *(f"python/sqlglot-1.0.dist-info/{f}" for f in ("METADATA", "RECORD")),
    }
    everything = core | model | tools
    assert not any(name in path for path in everything for name in ("colorama", "urllib3", "bin/"))
    assert len(everything) == len(core) + len(model) + len(tools)

"""The Lambda layers, bundled on this machine: no Docker, no credentials, and no network once cached.

The threadrunner layer (the library, assistants, the sample database) goes to every function; the runtime
dependencies are resolved and installed once, then split into layers by what each kind of function imports
(``DEPENDENCY_LAYERS``): no function ships a package it never imports.

CDK calls ``try_bundle`` before it would fall back to Docker; returning True means the output is ready, so
the dummy image given to ``BundlingOptions`` is never pulled.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from enum import StrEnum
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from threadrunner.function_kinds import FunctionKind

from infra.constants import ASSISTANTS_DIR, BUILD_CACHE_DIR, LIBRARY_DIR, PYPROJECT, REPO_ROOT

# The Lambda runtime the wheels must fit: CPython 3.12 on x86_64 (see infra/constructs/functions.py).
PIP_PLATFORM_ARGS = (
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "manylinux_2_28_x86_64",
    "--implementation",
    "cp",
    "--python-version",
    "3.12",
    "--only-binary=:all:",
)
# The runtime ships these (and keeps them patched); bundling botocore would also cost ~80 MB of the
# layer's 250 MB limit. aws-xray-sdk pulls botocore in.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")


class DependencyLayer(StrEnum):
    core = "core"  # Powertools (and X-Ray's SDK), pydantic, settings, YAML: every function
    model = "model"  # the openai SDK and what it needs beyond core
    tools = "tools"  # the SQL tools' parser, engine and PostgreSQL driver


# The requirements (pyproject's dependencies, by name) that only some kinds import; the rest is core.
LAYER_REQUIREMENTS: dict[DependencyLayer, frozenset[str]] = {
    DependencyLayer.model: frozenset({"openai"}),
    DependencyLayer.tools: frozenset({"sqlglot", "sqlalchemy", "psycopg"}),
}
DEPENDENCY_LAYERS: dict[FunctionKind, tuple[DependencyLayer, ...]] = {
    FunctionKind.api: (DependencyLayer.core,),
    FunctionKind.model: (DependencyLayer.core, DependencyLayer.model),
    # Cleanup, staging and repair delete, upload and cancel upstream: the openai SDK, on first use.
    FunctionKind.housekeeping: (DependencyLayer.core, DependencyLayer.model),
    FunctionKind.tools: (DependencyLayer.core, DependencyLayer.tools),
    # The fan-out signs with botocore and posts with urllib3, both the runtime's own: core only.
    FunctionKind.events: (DependencyLayer.core,),
}
# Environment markers of the Lambda runtime, to read the wheels' own requirements as it would.
TARGET_MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "implementation_name": "cpython",
    "implementation_version": "3.12.0",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "platform_release": "",
    "platform_version": "",
}

_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
# Never used: local bundling always succeeds or raises. CDK requires an image all the same.
_UNUSED_IMAGE = cdk.DockerImage.from_registry("none")
# The directory CDK treats as the assets' source; the bundlers read what they need themselves.
_SOURCE_DIR = str(REPO_ROOT / "layers" / "threadrunner")


def build_library_layer(output_dir: Path) -> None:
    """The threadrunner layer: /opt/python/threadrunner, /opt/assistants and /opt/data/sample.db."""
    from threadrunner.tools.sample_data import build_sample_database

    shutil.copytree(LIBRARY_DIR, output_dir / "python" / "threadrunner", ignore=_IGNORED, dirs_exist_ok=True)
    shutil.copytree(ASSISTANTS_DIR, output_dir / "assistants", ignore=_IGNORED, dirs_exist_ok=True)
    (output_dir / "data").mkdir(parents=True, exist_ok=True)
    build_sample_database(output_dir / "data" / "sample.db")


def runtime_requirements(pyproject: Path = PYPROJECT) -> tuple[str, ...]:
    """``[project.dependencies]``: what the Lambdas need besides the runtime itself."""
    with pyproject.open("rb") as file:
        return tuple(tomllib.load(file)["project"]["dependencies"])


def requirements_key(requirements: tuple[str, ...]) -> str:
    """Names a dependency bundle: the same requirements for the same platform give the same key."""
    text = "\n".join((*sorted(requirements), *PIP_PLATFORM_ARGS, *RUNTIME_PROVIDED))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached_dependencies(requirements: tuple[str, ...], cache_dir: Path = BUILD_CACHE_DIR) -> Path:
    """The installed dependencies (a directory holding ``python/``), built once per requirement list."""
    bundle = cache_dir / f"dependency-layer-{requirements_key(requirements)}"
    if bundle.is_dir():
        return bundle
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(
        dir=cache_dir, prefix="building-", ignore_cleanup_errors=True
    ) as building:
        install_dependencies(requirements, Path(building) / "python")
        try:
            # A rename is atomic: a concurrent synth sees either no bundle or a whole one.
            Path(building).rename(bundle)
        except OSError:
            if not bundle.is_dir():
                raise
    return bundle


def install_dependencies(requirements: tuple[str, ...], site: Path) -> None:
    subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments, pinned requirements
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            # Compiling here would produce bytecode for this interpreter, not for the runtime's 3.12.
            "--no-compile",
            "--target",
            str(site),
            *PIP_PLATFORM_ARGS,
            *requirements,
        ],
        check=True,
    )
    for installed in site.iterdir():
        if installed.name.split("-")[0] in RUNTIME_PROVIDED:
            shutil.rmtree(installed)


@jsii.implements(cdk.ILocalBundling)
class LibraryLayerBundler:
    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: Any) -> bool:
        build_library_layer(Path(output_dir))
        return True


def library_layer_code() -> lambda_.Code:
    # Hashed by output: the layer also holds assistants/ and the sample database, which live elsewhere.
    return lambda_.Code.from_asset(
        _SOURCE_DIR,
        asset_hash_type=cdk.AssetHashType.OUTPUT,
        bundling=cdk.BundlingOptions(image=_UNUSED_IMAGE, local=LibraryLayerBundler()),
    )


def layer_of(requirement: str) -> DependencyLayer:
    name = canonicalize_name(Requirement(requirement).name)
    return next((layer for layer, names in LAYER_REQUIREMENTS.items() if name in names), DependencyLayer.core)


def layer_distributions(
    requirements: tuple[str, ...], installed: Iterable[metadata.Distribution]
) -> dict[DependencyLayer, frozenset[str]]:
    """The distributions (canonical names) each layer holds: its requirements and what they require on the
    runtime, from ``installed`` (a bundle's, or this environment's), never those the runtime provides. One
    needed by core is in core only."""
    by_name = _by_name(installed)
    roots: dict[DependencyLayer, list[Requirement]] = {layer: [] for layer in DependencyLayer}
    for requirement in requirements:
        roots[layer_of(requirement)].append(Requirement(requirement))
    core = _closure(roots[DependencyLayer.core], by_name)
    return {
        layer: frozenset(core if layer is DependencyLayer.core else _closure(roots[layer], by_name) - core)
        for layer in DependencyLayer
    }


def runtime_provided_distributions(installed: Iterable[metadata.Distribution]) -> frozenset[str]:
    """What the runtime's boto3 brings (botocore's urllib3, dateutil...), read from ``installed``."""
    by_name = _by_name(installed)
    return frozenset(_closure([Requirement(name) for name in RUNTIME_PROVIDED], by_name, stop=frozenset()))


def _by_name(installed: Iterable[metadata.Distribution]) -> dict[str, metadata.Distribution]:
    return {str(canonicalize_name(distribution.metadata["Name"])): distribution for distribution in installed}


def _closure(
    roots: Iterable[Requirement],
    installed: Mapping[str, metadata.Distribution],
    stop: frozenset[str] = frozenset(RUNTIME_PROVIDED),
) -> set[str]:
    found: set[str] = set()
    seen: set[tuple[str, str]] = set()
    todo = list(roots)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in stop or name not in installed:
            continue  # the runtime's own, or not for this platform (a marker left it out)
        found.add(name)
        extras = {"", *requirement.extras}
        if all((name, extra) in seen for extra in extras):
            continue
        seen.update((name, extra) for extra in extras)
        for text in installed[name].requires or ():
            needed = Requirement(text)
            if needed.marker is None or any(
                needed.marker.evaluate({**TARGET_MARKERS, "extra": extra}) for extra in extras
            ):
                todo.append(needed)
    return found


def layer_files(bundle: Path, layer: DependencyLayer, requirements: tuple[str, ...]) -> list[PurePosixPath]:
    """The files of ``bundle`` (``python/...``) that ``layer`` ships, from its distributions' RECORDs."""
    site = bundle / "python"
    installed = list(metadata.distributions(path=[str(site)]))
    wanted = layer_distributions(requirements, installed)[layer]
    files: list[PurePosixPath] = []
    for distribution in installed:
        if canonicalize_name(distribution.metadata["Name"]) not in wanted:
            continue
        for path in distribution.files or ():
            relative = PurePosixPath(str(path))
            # Console scripts (bin/) and anything outside the site: never imported in a Lambda.
            if relative.parts[0] in ("..", "bin") or not (site / relative).is_file():
                continue
            files.append(PurePosixPath("python") / relative)
    return files


@jsii.implements(cdk.ILocalBundling)
class DependencyLayerBundler:
    """One layer's part of the dependency bundle (resolved and installed once for every layer)."""

    def __init__(self, requirements: tuple[str, ...], layer: DependencyLayer) -> None:
        self.requirements = requirements
        self.layer = layer

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: Any) -> bool:
        bundle = cached_dependencies(self.requirements)
        for file in layer_files(bundle, self.layer, self.requirements):
            target = Path(output_dir) / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(bundle / file, target)
        return True


def dependency_layers_code() -> dict[DependencyLayer, lambda_.Code]:
    """Each dependency layer's code, hashed by the requirement list and the layer: an unchanged list needs
    neither pip nor an upload."""
    requirements = runtime_requirements()
    return {
        layer: lambda_.Code.from_asset(
            _SOURCE_DIR,
            asset_hash=f"{requirements_key(requirements)}-{layer}",
            asset_hash_type=cdk.AssetHashType.CUSTOM,
            bundling=cdk.BundlingOptions(
                image=_UNUSED_IMAGE, local=DependencyLayerBundler(requirements, layer)
            ),
        )
        for layer in DependencyLayer
    }

"""The two Lambda layers, bundled on this machine: no Docker, no credentials, and no network once cached.

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
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

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


@jsii.implements(cdk.ILocalBundling)
class DependencyLayerBundler:
    def __init__(self, requirements: tuple[str, ...]) -> None:
        self.requirements = requirements

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: Any) -> bool:
        shutil.copytree(cached_dependencies(self.requirements), output_dir, dirs_exist_ok=True)
        return True


def library_layer_code() -> lambda_.Code:
    # Hashed by output: the layer also holds assistants/ and the sample database, which live elsewhere.
    return lambda_.Code.from_asset(
        _SOURCE_DIR,
        asset_hash_type=cdk.AssetHashType.OUTPUT,
        bundling=cdk.BundlingOptions(image=_UNUSED_IMAGE, local=LibraryLayerBundler()),
    )


def dependency_layer_code() -> lambda_.Code:
    # Hashed by the requirement list, so an unchanged list needs neither pip nor an upload.
    requirements = runtime_requirements()
    return lambda_.Code.from_asset(
        _SOURCE_DIR,
        asset_hash=requirements_key(requirements),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=cdk.BundlingOptions(image=_UNUSED_IMAGE, local=DependencyLayerBundler(requirements)),
    )

"""The Makefile: `make demo`/`make local` install the lean extra only, `make local PORT=...` is honoured, and the
Node.js targets say what is missing before installing or running anything."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
NODE_MESSAGE = "Node.js 18+ and npm are needed for the CDK CLI"

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def dry_run(*arguments: str) -> str:
    """`make -n` from the repository root (nothing runs), with no PORT or ENV from the caller's environment."""
    environment = {key: value for key, value in os.environ.items() if key not in {"PORT", "ENV", "MAKEFLAGS"}}
    return subprocess.run(
        [str(MAKE), "--no-print-directory", "-n", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_local_serves_on_the_given_port() -> None:
    assert "threadrunner local --port 8766" in dry_run("local", "PORT=8766")


def test_make_local_defaults_to_8765() -> None:
    assert "threadrunner local --port 8765" in dry_run("local")


@pytest.mark.parametrize("target", ["demo", "local"])
def test_the_local_targets_install_the_local_extra_only(target: str) -> None:
    # -B: as from a fresh clone, every stamp out of date
    commands = dry_run("-B", target)
    assert "pip install --quiet -e '.[local]'" in commands
    assert ".[dev]" not in commands


@pytest.mark.parametrize("target", ["test", "lint", "typecheck", "unit", "synth"])
def test_the_dev_targets_add_the_dev_extra_after_the_local_one(target: str) -> None:
    commands = dry_run("-B", target)
    assert 0 <= commands.index("-e '.[local]'") < commands.index("-e '.[dev]'")


def run_without_node(tmp_path: Path, target: str, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    """`make TARGET` in a copy of the Makefile alone, with only ``bin_dir`` on PATH (the recipes run in
    /bin/bash, named by the Makefile, so its builtins need no PATH)."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    return subprocess.run(
        [str(MAKE), "--no-print-directory", target],
        cwd=tmp_path,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("target", ["synth", "diff", "deploy", "test", "infra"])
def test_without_node_the_cdk_targets_say_so_before_installing_anything(tmp_path: Path, target: str) -> None:
    # Given a PATH with neither node nor npm
    empty = tmp_path / "bin"
    empty.mkdir()
    # When a target that needs Node.js runs
    result = run_without_node(tmp_path, target, empty)
    # Then it stops at once with the message, before the venv or npm
    assert result.returncode != 0
    assert NODE_MESSAGE in result.stderr
    assert "https://nodejs.org" in result.stderr
    assert "command not found" not in result.stderr
    assert not (tmp_path / ".venv").exists()
    assert "pip install" not in result.stdout


def test_an_old_node_is_named(tmp_path: Path) -> None:
    # Given Node.js 16 and npm on PATH
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "node").write_text('#!/bin/sh\nif [ "$1" = "-p" ]; then echo 16; else echo v16.20.2; fi\n')
    (bin_dir / "npm").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("node", "npm"):
        (bin_dir / tool).chmod(0o755)
    # When `make synth` runs
    result = run_without_node(tmp_path, "synth", bin_dir)
    # Then the message names the version found
    assert result.returncode != 0
    assert "Found Node.js v16.20.2." in result.stderr
    assert NODE_MESSAGE in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_ci_runs_make_test() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()

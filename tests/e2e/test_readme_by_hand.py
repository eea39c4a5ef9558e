"""The README's by-hand commands, run as a newcomer types them: every ```bash block after a
``<!-- by-hand: <step> -->`` comment, in order, in one bash session, against the local stack. The README cannot
drift from what works: a command that fails, or a step whose output changed, fails this test."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from local.emulator import EmulatorServer
from local.stack import LocalStack
from tests.support.programs import required_program

REPO_ROOT = Path(__file__).resolve().parents[2]
_STEP = re.compile(r"<!-- by-hand: ([\w-]+) -->\s*```bash\n(.*?)```", re.DOTALL)
_RUN_ID = r"run_[0-9a-z]{26}"

# What each step prints when it works (regular expressions, searched in the step's output).
EXPECTED = {
    "setup": [],
    "create-thread": [r"^thread: thr_[0-9a-z]{26}$"],
    "run": [rf"^run {_RUN_ID}: completed$", r"^user: What were total sales by region", r"^tool: called \w+"],
    "upload": [r"^upload: 204$", r"^ready$", rf"^run {_RUN_ID}: completed$"],
    "cancel": [r"^cancelled$", r"^cancel: 20[02]$", rf"^run {_RUN_ID}: cancelled$"],
}


def by_hand_steps(readme: str) -> list[tuple[str, str]]:
    return [(name, body) for name, body in _STEP.findall(readme)]


def test_the_readme_has_the_by_hand_steps() -> None:
    steps = by_hand_steps((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    assert [name for name, _ in steps] == list(EXPECTED)
    every_command = "\n".join(body for _, body in steps)
    # The newcomer's pitfalls: a JSON body without its Content-Type, a token missing from a call
    commands = every_command.replace("\\\n", " ").splitlines()
    posts = [command for command in commands if "curl " in command and " -d " in command]
    assert len(posts) >= 5
    for command in posts:
        assert '-H "Content-Type: application/json"' in command, command
    for command in (command for command in commands if "curl " in command and "$API" in command):
        assert '-H "Authorization: Bearer $TOKEN"' in command, command
    assert "$API/v1/" in every_command and "http://127.0.0.1:8765" in every_command


@pytest.fixture
def slow_polls(configure: Callable[..., None]) -> None:
    """Runs that take a second or two, as on a laptop: the cancel step cancels a run still in progress."""
    configure(THREADRUNNER_POLL_FIRST_SECONDS="1", THREADRUNNER_POLL_MAX_SECONDS="1")


def test_the_by_hand_commands_work(
    local_stack: LocalStack, upstream: EmulatorServer, slow_polls: None, tmp_path: Path
) -> None:
    bash = required_program("bash", package="bash")
    required_program("curl", package="curl")
    steps = by_hand_steps((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    # Given the commands as the README has them, each step's output fenced by a marker line
    script = ["set -euo pipefail"]
    for name, body in steps:
        script += [f"echo '::step {name}'", body]
    # When bash runs them from a fresh directory holding the repository's .venv (files they write land there)
    (tmp_path / ".venv").symlink_to(REPO_ROOT / ".venv")
    finished = subprocess.run(
        [bash, "-c", "\n".join(script)],
        cwd=tmp_path,
        env={**os.environ, "API": local_stack.api_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Then every step ran (exit 0) and printed what it should
    assert finished.returncode == 0, f"{finished.stdout[-3000:]}\n{finished.stderr[-3000:]}"
    outputs = dict(re.findall(r"^::step ([\w-]+)\n(.*?)(?=^::step |\Z)", finished.stdout, re.M | re.S))
    assert list(outputs) == list(EXPECTED), finished.stdout
    for name, patterns in EXPECTED.items():
        for pattern in patterns:
            assert re.search(pattern, outputs[name], re.M), f"step {name}: no {pattern!r} in\n{outputs[name]}"

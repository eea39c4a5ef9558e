"""The banner `threadrunner local` prints: its commands run as printed from the repository root, with no
activated venv."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from local.serve import banner, cli_command

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(os.path.abspath(sys.executable)).parent / "threadrunner"
needs_script = pytest.mark.skipif(
    not SCRIPT.is_file(), reason="no threadrunner script beside this interpreter"
)


@needs_script
def test_the_command_is_the_script_beside_the_interpreter() -> None:
    assert cli_command(SCRIPT.parents[2]) == f"{SCRIPT.parent.parent.name}/bin/threadrunner"
    assert cli_command(SCRIPT.parent) == "./threadrunner"
    assert cli_command(Path("/")) == str(SCRIPT.relative_to("/"))
    assert cli_command(SCRIPT.parents[2] / "elsewhere-not-under-the-venv") == str(SCRIPT)


def test_the_banner_uses_the_command_it_is_given() -> None:
    text = banner("http://127.0.0.1:8766", "the emulator", ".venv/bin/threadrunner")
    assert "http://127.0.0.1:8766/v1/threads" in text
    assert "Get a token:  .venv/bin/threadrunner token --user alice" in text
    assert '"Authorization: Bearer $(.venv/bin/threadrunner token --user alice)"' in text
    assert '-H "Content-Type: application/json"' in text
    assert "threadrunner token" not in text.replace(".venv/bin/threadrunner token", "")


def read_banner(process: subprocess.Popen[str], errors: Path, timeout: float = 90) -> dict[str, str]:
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    shown: dict[str, str] = {}
    while True:
        line = lines.get(timeout=timeout)
        if line is None:
            raise AssertionError(f"threadrunner local ended before its banner: {errors.read_text()[-3000:]}")
        label, _, rest = line.partition(":")
        shown[label.strip()] = rest.strip()
        if line.startswith("Stop with Ctrl-C."):
            return shown


@needs_script
def test_the_banner_commands_work_as_printed(tmp_path: Path) -> None:
    # Given `threadrunner local --port 0` started by its script from the repository root, with no venv on
    # PATH and no upstream configured (the emulator answers)
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONHOME"} and not key.startswith(("OPENAI_", "THREADRUNNER_"))
    }
    environment["PATH"] = os.pathsep.join(
        part
        for part in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
        if part != str(SCRIPT.parent)
    )
    errors = tmp_path / "stderr.log"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [str(SCRIPT), "local", "--port", "0"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        shown = read_banner(process, errors)
        # When the banner's token command runs as printed, from the repository root
        token = subprocess.run(
            ["/bin/bash", "-c", shown["Get a token"]],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        # Then it prints a JWT
        assert token.returncode == 0, token.stderr
        assert token.stdout.strip().count(".") == 2
        # And the curl command creates a thread
        if shutil.which("curl", path=environment["PATH"]):
            created = subprocess.run(
                ["/bin/bash", "-c", shown["Try"]],
                cwd=ROOT,
                env=environment,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert created.returncode == 0, created.stderr
            thread = json.loads(created.stdout)
            assert thread["assistant"] == "data-analyst"
            assert thread["id"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

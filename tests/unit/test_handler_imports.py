"""No handler imports openai at cold start (about a second): model steps load it on first use (engine_for)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
PROBE = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(module.lambda_handler)
print("openai" in sys.modules)
"""


@pytest.mark.parametrize("folder", sorted(path.parent.name for path in FUNCTIONS.glob("*/handler.py")))
def test_no_handler_imports_openai_at_cold_start(folder: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(FUNCTIONS / folder / "handler.py")],
        capture_output=True,
        text=True,
        check=True,
        env={"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true", "PATH": ""},
    )
    assert result.stdout.strip() == "False", f"{folder} imports openai at cold start"

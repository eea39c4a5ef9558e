"""The upstream key never passes through CDK: whatever the shell that synthesizes or deploys holds, no
template, asset manifest or construct tree of any environment contains it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.synth import ENVIRONMENTS, build_app

# A recognisable key, and the places a careless deploy would have it.
TEST_KEY = "sk-test-synth-4c1d0e7f9a2b"
KEY_VARIABLES = ("OPENAI_API_KEY", "THREADRUNNER_OPENAI_API_KEY", "THREADRUNNER_API_KEY")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_synthesized_file_holds_the_key(
    environment: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the key in the environment of the process that synthesizes (as `make deploy` might be run)
    for variable in KEY_VARIABLES:
        monkeypatch.setenv(variable, TEST_KEY)

    # When the environment's app is synthesized to a cloud assembly
    app, stack = build_app(environment, outdir=str(tmp_path))
    assembly = app.synth()

    # Then its template, manifests and construct tree (every text file but the staged code assets) lack it
    written = [
        path
        for path in Path(assembly.directory).rglob("*")
        if path.is_file() and not any(part.startswith("asset.") for part in path.relative_to(tmp_path).parts)
    ]
    template = Path(assembly.directory) / stack.template_file
    assert template in written
    for path in written:
        assert TEST_KEY not in path.read_text(errors="replace"), path.relative_to(tmp_path)

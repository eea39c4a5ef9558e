"""`make synth` checks the assistants' definitions first: a typo'd key or tool fails the synth, naming the file,
the line and the key, instead of failing runs after a deploy."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
from threadrunner.assistant_validation import AssistantDefinitionError

from infra import app as cdk_app
from infra.app import build
from tests.infra.synth import CDK_CONTEXT


def fresh_app() -> cdk.App:
    return cdk.App(context={**CDK_CONTEXT, "env": "dev", "aws:cdk:bundling-stacks": []})


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (
            "name: helper\ninstructions: x\ntools:\n  - get_table_schema\n  - get_wether\n",
            r"helper\.yaml:5: tools\[1\]: unknown tool 'get_wether'.*\(registered: .*query_database",
        ),
        ("name: helper\ninstructions: x\ntemperature: 0.2\n", r"helper\.yaml:3: temperature: unknown key"),
        (
            "name: helper\ninstructions: x\ntools:\n  - name: query_database\n    approval: maybe\n",
            r"helper\.yaml:5: tools\[0\]\.approval: Input should be 'none' or 'required'",
        ),
    ],
)
def test_a_bad_definition_fails_the_synth_naming_file_line_and_key(
    tmp_path: Path, text: str, named: str
) -> None:
    # Given an assistants folder with one bad definition
    (tmp_path / "helper.yaml").write_text(text)
    app = fresh_app()

    # When the app is built, Then it fails before any stack exists
    with pytest.raises(AssistantDefinitionError, match=named):
        build(app, assistants_dir=tmp_path)
    assert app.node.children == []


def test_cdk_synth_exits_with_the_problems(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given `cdk synth` (app.py's main) over a folder with a typo'd tool
    (tmp_path / "helper.yaml").write_text("name: helper\ninstructions: x\ntools: [query_databse]\n")
    monkeypatch.setattr(cdk_app, "ASSISTANTS_DIR", tmp_path)

    # Then it exits with the message, not a traceback
    with pytest.raises(
        SystemExit, match=r"^threadrunner: .*helper\.yaml:3: tools\[0\]: unknown tool 'query_databse'"
    ):
        cdk_app.main()

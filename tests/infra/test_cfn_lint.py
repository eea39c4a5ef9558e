"""cfn-lint on the synthesized templates of dev and prod."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file

from tests.infra.synth import synthesize

# W3005 (DependsOn already implied by a GetAtt): CDK makes each Lambda and the state machine depend on
# their whole role construct, i.e. the role *and* its policy, so permissions exist before first use. The
# policy half is needed; the role half repeats the GetAtt. Every other check stays on.
IGNORED_CHECKS = ["W3005"]


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_cfn_lint_reports_nothing(environment: str, tmp_path: Path) -> None:
    template = tmp_path / f"threadrunner-{environment}.template.json"
    template.write_text(json.dumps(synthesize(environment).template))

    matches = lint_file(
        template, ManualArgs(ignore_checks=IGNORED_CHECKS, regions=["us-east-1", "eu-west-1"])
    )

    assert [str(match) for match in matches] == []

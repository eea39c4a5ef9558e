"""cdk-nag's AwsSolutions pack finds nothing unacknowledged, and every acknowledgment says why."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from tests.infra.synth import ENVIRONMENTS, build_app


def findings(scope: cdk.App | cdk.Stack) -> list[str]:
    report = AwsSolutionsChecks().validate_scope(scope)
    return [
        f"{violation.rule_name} at {resource.construct_path}"
        for violation in report.violations
        for resource in violation.violating_resources
    ]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_unacknowledged_aws_solutions_errors_or_warnings(environment: str) -> None:
    app, _ = build_app(environment)

    assert findings(app) == []


def test_the_checks_do_report_an_unprotected_bucket() -> None:
    # Given a bucket with none of the protections the stack adds
    stack = cdk.Stack(cdk.App(), "Bare")
    s3.Bucket(stack, "Bare")

    # Then the same checks name what is missing (so an empty list above means something)
    rules = {finding.split(" at ")[0] for finding in findings(stack)}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_every_acknowledgment_is_an_aws_solutions_rule_with_a_reason() -> None:
    _, stack = build_app("prod")

    acknowledged = {}
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                acknowledged.update(entry.data)

    assert acknowledged, "expected the stack's few documented acknowledgments"
    for rule, reason in acknowledged.items():
        assert rule.removeprefix("Annotation::").startswith("AwsSolutions-"), rule
        assert len(reason) >= 40, f"{rule}: say why, not just that ({reason!r})"


def test_an_environment_with_a_database_secret_is_clean_too() -> None:
    app, _ = build_app("staging", database_secret_name="threadrunner/staging/warehouse")

    assert findings(app) == []

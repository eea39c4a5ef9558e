"""Encryption at rest (tables, buckets, queues, log groups), X-Ray on every function and the state machine,
and what happens to data when a stack goes: RETAIN and deletion protection in prod, DESTROY in dev."""

from __future__ import annotations

from typing import Any

import pytest

from infra.constants import ALL_FUNCTIONS, FunctionName
from infra.constructs.log_groups import LOGS_KEY_ACTIONS
from tests.infra.synth import AUTO_DELETE_PROVIDER, ENVIRONMENTS, Synthesized, render, synthesize

# Data that outlives a run: what prod keeps when its stack is deleted.
DATA_TYPES = (
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::Cognito::UserPool",
    "AWS::KMS::Key",
    "AWS::SecretsManager::Secret",
)


def logs_key(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    logical_id = synthesized.stack.resolve(synthesized.stack.log_groups.key.key_arn)["Fn::GetAtt"][0]
    return logical_id, synthesized.template["Resources"][logical_id]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_log_group_is_encrypted_with_the_stacks_own_rotated_key(environment: str) -> None:
    synthesized = synthesize(environment)
    key_id, key = logs_key(synthesized)

    # Every log group (functions, state machine, API access logs) uses the one key
    groups = synthesized.resources("AWS::Logs::LogGroup")
    # one per function (tools included) + the state machine's + the API's access logs
    assert len(groups) == len(ALL_FUNCTIONS) + 2
    for logical_id, group in groups.items():
        assert render(group["Properties"].get("KmsKeyId")) == f"<{key_id}.Arn>", logical_id
    # which rotates, and which CloudWatch Logs may use for this account's log groups in this region only
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    (logs,) = [s for s in statements if s.get("Sid") == "CloudWatchLogsOfThisAccountAndRegion"]
    assert render(logs["Principal"]["Service"]) == "logs.<AWS::Region>.amazonaws.com"
    assert logs["Action"] == list(LOGS_KEY_ACTIONS) and logs["Effect"] == "Allow"
    context = render(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert context == "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*"


def test_the_api_access_logs_go_to_an_encrypted_log_group(dev: Synthesized) -> None:
    _, stage = dev.only("AWS::ApiGatewayV2::Stage")
    destination = render(stage["Properties"]["AccessLogSettings"]["DestinationArn"])
    group = dev.template["Resources"][destination.strip("<>").removesuffix(".Arn")]
    assert group["Type"] == "AWS::Logs::LogGroup" and "KmsKeyId" in group["Properties"]


def test_queues_and_buckets_are_encrypted_at_rest(dev: Synthesized) -> None:
    queues = dev.resources("AWS::SQS::Queue")
    assert queues, "the dead-letter queues (cleanup, uploads, reconciler) are in the template"
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    for bucket in dev.resources("AWS::S3::Bucket").values():
        (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_every_function_and_the_state_machine_are_traced_with_x_ray(dev: Synthesized) -> None:
    for name in FunctionName:
        assert dev.function(name)[1]["Properties"]["TracingConfig"] == {"Mode": "Active"}, name
    _, machine = dev.only("AWS::StepFunctions::StateMachine")
    assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}


def test_prod_retains_and_protects_its_data(prod: Synthesized) -> None:
    for resource_type in DATA_TYPES:
        found = prod.resources(resource_type)
        assert found, resource_type
        for logical_id, resource in found.items():
            assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain"), (
                logical_id
            )
    for table in prod.resources("AWS::DynamoDB::Table").values():
        assert table["Properties"]["DeletionProtectionEnabled"] is True
        assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    (pool,) = prod.resources("AWS::Cognito::UserPool").values()
    assert pool["Properties"]["DeletionProtection"] == "ACTIVE"


def test_dev_destroys_its_data_with_the_stack(dev: Synthesized) -> None:
    for resource_type in DATA_TYPES:
        for logical_id, resource in dev.resources(resource_type).items():
            assert resource["DeletionPolicy"] == "Delete", logical_id
    for table in dev.resources("AWS::DynamoDB::Table").values():
        assert table["Properties"].get("DeletionProtectionEnabled", False) is False
    (pool,) = dev.resources("AWS::Cognito::UserPool").values()
    assert pool["Properties"].get("DeletionProtection", "INACTIVE") == "INACTIVE"


def test_dev_empties_its_buckets_when_the_stack_goes_and_prod_never_does(
    dev: Synthesized, prod: Synthesized
) -> None:
    # S3 deletes only empty buckets: in dev, CDK's provider empties each one first
    emptied = {
        render(r["Properties"]["BucketName"]) for r in dev.resources("Custom::S3AutoDeleteObjects").values()
    }
    assert emptied == {f"<{logical_id}>" for logical_id in dev.resources("AWS::S3::Bucket")}
    # and prod has no such provider at all
    assert prod.resources("Custom::S3AutoDeleteObjects") == {}
    assert not [key for key in prod.template["Resources"] if key.startswith(AUTO_DELETE_PROVIDER)]

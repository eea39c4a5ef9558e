"""DynamoDB tables from threadrunner.stores.tables, and the files bucket's protections."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match
from threadrunner.stores.tables import ALL_TABLES, IDEMPOTENCY, RUNS, THREADS, TableSpec

from tests.infra.synth import Synthesized, render


def table(synthesized: Synthesized, spec: TableSpec) -> dict[str, Any]:
    construct = synthesized.stack.storage.tables[spec.logical_name]
    logical_id = synthesized.stack.resolve(construct.node.default_child.logical_id)  # type: ignore[union-attr]
    properties: dict[str, Any] = synthesized.template["Resources"][logical_id]["Properties"]
    assert properties["KeySchema"][0]["AttributeName"] == spec.partition_key
    return properties


def files_bucket(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    logical_id = synthesized.stack.resolve(synthesized.stack.storage.bucket.bucket_name)["Ref"]
    return logical_id, synthesized.template["Resources"][logical_id]["Properties"]


def test_threads_expire_through_ttl_on_expires_at(dev: Synthesized) -> None:
    threads = table(dev, THREADS)

    assert threads["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert threads["KeySchema"] == [
        {"AttributeName": THREADS.partition_key, "KeyType": "HASH"},
        {"AttributeName": THREADS.sort_key, "KeyType": "RANGE"},
    ]
    # Cleanup will read what expired from the stream's old image.
    assert threads["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_runs_are_listed_per_thread_and_while_active_through_their_indexes(dev: Synthesized) -> None:
    runs = table(dev, RUNS)

    indexes = runs["GlobalSecondaryIndexes"]
    assert [index["IndexName"] for index in indexes] == [spec.name for spec in RUNS.indexes]
    assert [spec.name for spec in RUNS.indexes] == ["by_thread", "active_runs"]
    for index, spec in zip(indexes, RUNS.indexes, strict=True):
        assert index["KeySchema"] == [
            {"AttributeName": spec.partition_key, "KeyType": "HASH"},
            {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
        ]
        assert index["Projection"] == {"ProjectionType": "ALL"}
    # webhook waits expire by themselves (runs and their ledgers set no expires_at: they go with their thread)
    assert runs["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_idempotency_records_expire_through_ttl_in_a_partition_per_user(
    dev: Synthesized,
) -> None:
    idempotency = table(dev, IDEMPOTENCY)

    # One partition per user (deleting a user's data takes their records), Powertools' hash as the sort key
    assert idempotency["KeySchema"] == [
        {"AttributeName": "user_id", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert idempotency["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert "StreamSpecification" not in idempotency


def test_every_table_is_on_demand_recoverable_and_encrypted(dev: Synthesized) -> None:
    for spec in ALL_TABLES:
        properties = table(dev, spec)
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert properties["SSESpecification"] == {"SSEEnabled": True}


def test_prod_keeps_its_data_when_the_stack_goes_and_dev_does_not(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized, policy, protected in ((dev, "Delete", False), (prod, "Retain", True)):
        for resource in synthesized.resources("AWS::DynamoDB::Table").values():
            assert resource["DeletionPolicy"] == policy
            assert resource["Properties"].get("DeletionProtectionEnabled", False) is protected
        for resource in synthesized.resources("AWS::S3::Bucket").values():
            assert resource["DeletionPolicy"] == policy


def test_the_bucket_blocks_public_access_and_is_encrypted(dev: Synthesized) -> None:
    _, bucket = files_bucket(dev)

    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert "VersioningConfiguration" not in bucket


def test_every_bucket_refuses_requests_without_tls(dev: Synthesized) -> None:
    for logical_id in dev.resources("AWS::S3::Bucket"):
        dev.assertions.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": logical_id},
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Action": "s3:*",
                                    "Principal": {"AWS": "*"},
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_uploads_and_outputs_expire_and_incomplete_uploads_are_aborted(dev: Synthesized) -> None:
    _, bucket = files_bucket(dev)

    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-uploads"] == {
        "Id": "expire-uploads",
        "Prefix": "uploads/",
        "ExpirationInDays": 2,
        "Status": "Enabled",
    }
    assert rules["expire-outputs"] == {
        "Id": "expire-outputs",
        "Prefix": "outputs/",
        "ExpirationInDays": 30,
        "Status": "Enabled",
    }
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_the_bucket_logs_access_to_a_separate_bucket_and_serves_browser_posts_and_gets(
    dev: Synthesized,
) -> None:
    logical_id, bucket = files_bucket(dev)

    target = render(bucket["LoggingConfiguration"]["DestinationBucketName"])
    assert target.startswith("<") and target != f"<{logical_id}>"
    assert target.strip("<>") in dev.resources("AWS::S3::Bucket")
    (cors,) = bucket["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedMethods"] == ["POST", "GET"]  # presigned uploads and downloads
    assert cors["AllowedOrigins"] == dev.stack.node.try_get_context("environments")["dev"]["allowed_origins"]

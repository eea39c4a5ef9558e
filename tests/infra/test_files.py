"""Files in the template: S3 sends object events to EventBridge, a rule routes uploads to stage_file with
retries and dead letters, stage_file's exact rights, and the per-environment limits and expiries."""

from __future__ import annotations

import json

from threadrunner.models import records

from infra.constants import STAGED_PREFIX, UPLOADS_PREFIX, FunctionName
from tests.infra.synth import Synthesized, actions, render, resources_of, synthesize_with
from tests.infra.test_storage import files_bucket


def _logical_id(synthesized: Synthesized, construct: object) -> str:
    return str(synthesized.stack.resolve(construct.node.default_child.logical_id))  # type: ignore[attr-defined]


def test_object_events_reach_stage_file_for_uploads_only(dev: Synthesized) -> None:
    bucket_id, bucket = files_bucket(dev)
    assert bucket["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    rule = dev.template["Resources"][_logical_id(dev, dev.stack.files.rule)]["Properties"]
    pattern = rule["EventPattern"]
    assert (pattern["source"], pattern["detail-type"]) == (["aws.s3"], ["Object Created"])
    assert [render(name) for name in pattern["detail"]["bucket"]["name"]] == [f"<{bucket_id}>"]
    assert pattern["detail"]["object"] == {"key": [{"prefix": "uploads/"}]}
    (target,) = rule["Targets"]
    stage_file = dev.function(FunctionName.stage_file)[0]
    assert render(target["Arn"]) == f"<{stage_file}.Arn>"
    # EventBridge retries, then keeps the event in an encrypted queue that raises an alarm
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    dead_letters = _logical_id(dev, dev.stack.files.dead_letters)
    assert render(target["DeadLetterConfig"]["Arn"]) == f"<{dead_letters}.Arn>"
    assert dev.template["Resources"][dead_letters]["Properties"]["SqsManagedSseEnabled"] is True
    alarm = dev.template["Resources"][_logical_id(dev, dev.stack.files.dead_letters_alarm)]["Properties"]
    assert render(alarm["Dimensions"][0]["Value"]) == f"<{dead_letters}.QueueName>"


def test_stage_file_reads_uploads_writes_file_records_and_reads_the_upstream_key(dev: Synthesized) -> None:
    statements = dev.role_statements(FunctionName.stage_file)
    granted = {
        action: render(resource) for s in statements for action in actions(s) for resource in resources_of(s)
    }
    threads = _logical_id(dev, dev.stack.storage.threads_table)
    tables = {
        render(resource)
        for s in statements
        for action in actions(s)
        if action.startswith("dynamodb:")
        for resource in resources_of(s)
    }
    assert tables == {f"<{threads}.Arn>"}  # file records live in the threads table, and nothing else
    assert "secretsmanager:GetSecretValue" in granted
    assert "s3:ListBucket" not in granted


def test_only_staging_writes_staged_files_and_presigned_posts_reach_only_uploads(dev: Synthesized) -> None:
    # A replayed presigned POST (the API's rights, its exact key) cannot reach the bytes of a staged file
    assert STAGED_PREFIX == records.STAGED_PREFIX and UPLOADS_PREFIX == records.UPLOADS_PREFIX
    bucket = dev.stack.resolve(dev.stack.storage.bucket.bucket_arn)["Fn::GetAtt"][0]
    staged, uploads = f"<{bucket}.Arn>/{STAGED_PREFIX}*", f"<{bucket}.Arn>/{UPLOADS_PREFIX}*"
    writers = {
        name
        for name in FunctionName
        for s in dev.role_statements(name)
        if {"s3:PutObject", "s3:PutObject*", "s3:*"} & set(actions(s))
        and staged in {render(resource) for resource in resources_of(s)}
    }
    assert writers == {FunctionName.stage_file}
    api_puts = {
        render(resource)
        for s in dev.role_statements(FunctionName.api)
        if "s3:PutObject" in actions(s)
        for resource in resources_of(s)
    }
    assert uploads in api_puts and staged not in api_puts
    # and the staging rule fires on uploads only, never on its own copies
    rule = dev.template["Resources"][_logical_id(dev, dev.stack.files.rule)]["Properties"]
    assert rule["EventPattern"]["detail"]["object"] == {"key": [{"prefix": UPLOADS_PREFIX}]}


def test_limits_and_expiries_come_from_the_environment() -> None:
    files = {
        "max_file_bytes": 1000,
        "allowed_types": ["text/csv"],
        "max_files_per_run": 3,
        "chat_inline_bytes": 800,
        "user_quota_bytes": 5000,
        "upload_url_seconds": 300,
        "download_url_seconds": 600,
        "upstream_file_days": 2,
        "uploads_expire_days": 1,
        "outputs_expire_days": 7,
    }
    synthesized = synthesize_with("staging", files=files)
    _, bucket = files_bucket(synthesized)
    days = {rule["Id"]: rule.get("ExpirationInDays") for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert (days["expire-uploads"], days["expire-staged-files"], days["expire-outputs"]) == (1, 1, 7)
    # The API checks the chat inline limit, the model steps inline up to it.
    for name in (
        FunctionName.api,
        FunctionName.stage_file,
        FunctionName.start_run,
        FunctionName.submit_tool_outputs,
    ):
        variables = synthesized.function(name)[1]["Properties"]["Environment"]["Variables"]
        assert variables["THREADRUNNER_MAX_FILE_BYTES"] == "1000"
        assert json.loads(variables["THREADRUNNER_ALLOWED_FILE_TYPES"]) == ["text/csv"]
        assert variables["THREADRUNNER_MAX_FILES_PER_RUN"] == "3"
        assert variables["THREADRUNNER_CHAT_INLINE_BYTES"] == "800"
        assert variables["THREADRUNNER_USER_QUOTA_BYTES"] == "5000"
        assert variables["THREADRUNNER_UPLOAD_URL_SECONDS"] == "300"
        assert variables["THREADRUNNER_DOWNLOAD_URL_SECONDS"] == "600"
        assert variables["THREADRUNNER_UPSTREAM_FILE_SECONDS"] == str(2 * 24 * 3600)

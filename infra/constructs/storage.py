"""DynamoDB tables (declared once in threadrunner.stores.tables) and the files bucket."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct
from threadrunner.stores.tables import ALL_TABLES, IDEMPOTENCY, MESSAGES, RUNS, THREADS, TableSpec

from infra.config import EnvironmentConfig
from infra.constants import (
    COMPAT_FILES_PREFIX,
    MESSAGES_PREFIX,
    OUTPUTS_PREFIX,
    STAGED_PREFIX,
    UPLOADS_PREFIX,
)

# How the keys under each prefix are named: ids known only at run time, so grants end in "<prefix>*".
OBJECT_KEYS = {
    MESSAGES_PREFIX: "Message bodies too large for DynamoDB are keyed messages/<thread id>/<message id>, "
    "named at run time.",
    OUTPUTS_PREFIX: "Generated files are keyed outputs/<thread id>/<run id>/<name>, named at run time.",
    UPLOADS_PREFIX: "Uploads are keyed uploads/<user>/<file id>, a new key per file, known at run time.",
    STAGED_PREFIX: "Staged files are keyed staged/<user>/<file id>, a new key per file, known at run time.",
    COMPAT_FILES_PREFIX: "Uploads through the Assistants-compatible API are keyed compat/<user>/<file id>, known "
    "at run time.",
}

# Exact actions: what the stores call (TransactWriteItems is authorized per item as Put/Update/Delete/Check).
TABLE_READ_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
)
TABLE_WRITE_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
)
# Threads live days; their TTL deletions reach cleanup through this stream (old image = what to clean).
# Runs: each new event of a run's event log (``event#<seq>`` items) reaches the fan-out (infra/constructs/
# run_event_fanout.py) through this one; the new image is the whole event.
_STREAMED = {
    THREADS.logical_name: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
    RUNS.logical_name: dynamodb.StreamViewType.NEW_IMAGE,
}


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.tables = {spec.logical_name: self._table(spec, config) for spec in ALL_TABLES}
        self.access_logs_bucket = self._access_logs_bucket(config)
        self.bucket = self._files_bucket(config)

    @property
    def threads_table(self) -> dynamodb.Table:
        return self.tables[THREADS.logical_name]

    @property
    def runs_table(self) -> dynamodb.Table:
        return self.tables[RUNS.logical_name]

    @property
    def messages_table(self) -> dynamodb.Table:
        return self.tables[MESSAGES.logical_name]

    @property
    def idempotency_table(self) -> dynamodb.Table:
        return self.tables[IDEMPOTENCY.logical_name]

    def grant_tables(
        self, grantee: iam.IGrantable, *, read: tuple[TableSpec, ...], write: tuple[TableSpec, ...]
    ) -> None:
        """Exact item actions on exactly these tables, and reads of their indexes (named, no ``index/*``)."""
        if read:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=list(TABLE_READ_ACTIONS), resources=self._arns(read, indexes=True)
                )
            )
        if write:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=list(TABLE_WRITE_ACTIONS), resources=self._arns(write, indexes=False)
                )
            )

    def grant_put_outputs(self, grantee: iam.IGrantable) -> None:
        """Generated files stream in (upload_fileobj: multipart past 8 MB, aborted on failure)."""
        self._grant_objects(grantee, ["s3:PutObject", "s3:AbortMultipartUpload"], OUTPUTS_PREFIX)

    def grant_presign(self, grantee: iam.IGrantable) -> None:
        """Presigned URLs act with their signer's rights: POST into uploads/, GET from outputs/."""
        self._grant_objects(grantee, ["s3:PutObject"], UPLOADS_PREFIX)
        self._grant_objects(grantee, ["s3:GetObject"], OUTPUTS_PREFIX)

    def grant_compat_files(self, grantee: iam.IGrantable) -> None:
        """The Assistants-compatible API: its users' uploads (kept, read, deleted), copied into uploads/ for
        staging when a message attaches them, and the generated files it serves."""
        self._grant_objects(grantee, ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], COMPAT_FILES_PREFIX)
        self._grant_objects(grantee, ["s3:PutObject"], UPLOADS_PREFIX)
        self._grant_objects(grantee, ["s3:GetObject"], OUTPUTS_PREFIX)

    def grant_stage_uploads(self, grantee: iam.IGrantable) -> None:
        """Copy each upload to its file's own key under staged/ (CopyObject: read the source, put the copy),
        then delete the upload; read the copy to check it and hand it upstream; delete a refused file's copy.
        Only staging writes under staged/: a presigned POST (the API's rights) cannot."""
        self._grant_objects(grantee, ["s3:GetObject", "s3:DeleteObject"], UPLOADS_PREFIX)
        self._grant_objects(grantee, ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], STAGED_PREFIX)

    def grant_read_files(self, grantee: iam.IGrantable) -> None:
        """Read staged files only: the chat engine inlines a run's text files from there."""
        self._grant_objects(grantee, ["s3:GetObject"], STAGED_PREFIX)

    def send_events_to_eventbridge(self) -> None:
        """Object events go to EventBridge (a bucket property): a rule routes uploads to staging. A direct
        bucket notification would need CDK's notification custom resource (a Lambda with a managed policy)."""
        cfn_bucket: s3.CfnBucket = self.bucket.node.default_child  # type: ignore[assignment]
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(
                event_bridge_enabled=True
            )
        )

    def grant_scan(self, grantee: iam.IGrantable, spec: TableSpec) -> None:
        """A whole-table read: only the daily sweep needs one."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["dynamodb:Scan"], resources=self._arns((spec,), indexes=False))
        )

    def grant_message_bodies(self, grantee: iam.IGrantable, *, read: bool, write: bool) -> None:
        """Message bodies too large for DynamoDB, under messages/ only."""
        actions = (["s3:GetObject"] if read else []) + (["s3:PutObject"] if write else [])
        self._grant_objects(grantee, actions, MESSAGES_PREFIX)

    def grant_cleanup(self, grantee: iam.IGrantable) -> None:
        """List and delete what a thread left in the bucket: message bodies and generated files (listed by
        prefix), and files' uploads and staged copies (deleted by key)."""
        prefixes = [f"{MESSAGES_PREFIX}*", f"{OUTPUTS_PREFIX}*", f"{COMPAT_FILES_PREFIX}*"]
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": prefixes}},
            )
        )
        self._grant_objects(
            grantee,
            ["s3:DeleteObject"],
            MESSAGES_PREFIX,
            OUTPUTS_PREFIX,
            UPLOADS_PREFIX,
            STAGED_PREFIX,
            COMPAT_FILES_PREFIX,
        )

    def _grant_objects(self, grantee: iam.IGrantable, actions: list[str], *prefixes: str) -> None:
        """``actions`` on any key under each prefix, and cdk-nag told why on the grantee itself: the keys are
        named by ids known only at run time (AwsSolutions-IAM5 on ``<prefix>*``)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=actions, resources=[self.bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]
            )
        )
        bucket = Stack.of(self).get_logical_id(self.bucket.node.default_child)  # type: ignore[arg-type]
        Validations.of(grantee.grant_principal).acknowledge(  # type: ignore[arg-type]
            *(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{prefix}*]", reason=OBJECT_KEYS[prefix]
                )
                for prefix in prefixes
            )
        )

    def _arns(self, specs: tuple[TableSpec, ...], *, indexes: bool) -> list[str]:
        arns = []
        for spec in specs:
            table = self.tables[spec.logical_name]
            arns.append(table.table_arn)
            if indexes:
                arns.extend(f"{table.table_arn}/index/{index.name}" for index in spec.indexes)
        return arns

    def _table(self, spec: TableSpec, config: EnvironmentConfig) -> dynamodb.Table:
        string = dynamodb.AttributeType.STRING
        table = dynamodb.Table(
            self,
            f"{spec.logical_name.title()}Table",
            partition_key=dynamodb.Attribute(name=spec.partition_key, type=string),
            sort_key=dynamodb.Attribute(name=spec.sort_key, type=string),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=spec.ttl_attribute,
            stream=_STREAMED.get(spec.logical_name),
            deletion_protection=config.is_production,
            removal_policy=config.cdk_removal_policy,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=dynamodb.Attribute(name=index.partition_key, type=string),
                sort_key=dynamodb.Attribute(name=index.sort_key, type=string),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table

    def _access_logs_bucket(self, config: EnvironmentConfig) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            # S3 server access logging delivers only to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365))],
            removal_policy=config.cdk_removal_policy,
            auto_delete_objects=not config.is_production,
        )
        Validations.of(bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This is the access-log bucket itself; logging it to itself would loop.",
            ),
        )
        return bucket

    def _files_bucket(self, config: EnvironmentConfig) -> s3.Bucket:
        return s3.Bucket(
            self,
            "FilesBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=False,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="files-bucket/",
            lifecycle_rules=[
                # Uploads are copied to staged/ within seconds (or refused): what is left is a hand-over that
                # never happened. Staged copies last as long: the chat engine inlines from them.
                s3.LifecycleRule(
                    id="expire-uploads",
                    prefix=UPLOADS_PREFIX,
                    expiration=Duration.days(config.files.uploads_expire_days),
                ),
                s3.LifecycleRule(
                    id="expire-staged-files",
                    prefix=STAGED_PREFIX,
                    expiration=Duration.days(config.files.uploads_expire_days),
                ),
                s3.LifecycleRule(
                    id="expire-outputs",
                    prefix=OUTPUTS_PREFIX,
                    expiration=Duration.days(config.files.outputs_expire_days),
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)
                ),
            ],
            # Browsers upload straight to S3 with presigned POST, and fetch generated files with presigned GET.
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.POST, s3.HttpMethods.GET],
                    allowed_origins=list(config.allowed_origins),
                    allowed_headers=["*"],
                    max_age=3000,
                )
            ]
            if config.allowed_origins
            else None,
            removal_policy=config.cdk_removal_policy,
            # Outside prod a deleted stack takes its bucket too, which S3 allows only once it is empty.
            auto_delete_objects=not config.is_production,
        )

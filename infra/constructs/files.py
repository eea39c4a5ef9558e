"""Files: uploads land in S3 (presigned POST), S3 sends Object Created to EventBridge, a rule hands those
under uploads/ to stage_file, which copies each to staged/ (the file's bytes from then on), checks the copy
and creates the upstream file. Failed deliveries are retried by EventBridge and then dead-lettered, with an
alarm."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from threadrunner.stores.tables import THREADS

from infra.config import EnvironmentConfig
from infra.constants import UPLOADS_PREFIX, FunctionName
from infra.constructs.dead_letters import dead_letters
from infra.constructs.functions import FunctionFactory
from infra.constructs.storage import Storage


class Files(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: Storage,
        functions: FunctionFactory,
    ) -> None:
        super().__init__(scope, construct_id)
        self.stage_file: lambda_.Function = functions.create(FunctionName.stage_file)
        # File records live in the threads table; uploads are copied to staged/ (the file's bytes) and deleted.
        storage.grant_tables(self.stage_file, read=(THREADS,), write=(THREADS,))
        storage.grant_stage_uploads(self.stage_file)
        self.dead_letters, self.dead_letters_alarm = dead_letters(
            self,
            destination_of="the upload rule",
            alarm_description="An upload could not be staged after retries; its file stays pending.",
        )
        storage.send_events_to_eventbridge()
        self.rule = events.Rule(
            self,
            "UploadCreated",
            description="Uploads under uploads/ go to stage_file",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [storage.bucket.bucket_name]},
                    "object": {"key": [{"prefix": UPLOADS_PREFIX}]},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.stage_file,
                    retry_attempts=2,
                    max_event_age=Duration.hours(1),
                    dead_letter_queue=self.dead_letters,
                )
            ],
        )

"""Upstream completion by webhook: the endpoint's Lambda (``POST /v1/webhooks/openai``, routed by the Api
construct) and the signing secret it verifies with, which ``threadrunner webhooks register`` fills in after
deploying. Deployed in every environment; only ``completion: "webhook"`` makes runs wait for it
(infra/workflows), and a webhook that nobody waits for leaves a marker that expires."""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, CfnOutput, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct
from threadrunner.stores.tables import RUNS

from infra.config import EnvironmentConfig
from infra.constants import FunctionName, OutputName, webhook_secret_name
from infra.constructs.functions import FunctionFactory
from infra.constructs.storage import Storage


class Webhooks(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        storage: Storage,
        functions: FunctionFactory,
        state_machine_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        name = webhook_secret_name(config.name)
        # The signing secret never passes through CDK: it starts as {"webhook_secret": ""} plus a generated
        # placeholder field; the endpoint answers 401 to everything until `webhooks register` fills it in.
        self.secret = secretsmanager.Secret(
            self,
            "SigningSecret",
            secret_name=name,
            description=f"threadrunner {config.name}: the upstream's webhook signing secret "
            '{"webhook_secret": "whsec_..."}',
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"webhook_secret": ""}),
                generate_string_key="placeholder",
            ),
            removal_policy=config.cdk_removal_policy,
        )
        Validations.of(self.secret).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="The upstream issues and rotates the signing secret (`threadrunner webhooks register`).",
            ),
        )
        self.function = functions.create(
            FunctionName.openai_webhook, environment={"THREADRUNNER_OPENAI_WEBHOOK_SECRET_NAME": name}
        )
        self.secret.grant_read(self.function)
        # The webhook records the response's end and hands the waiting run's token back: the runs table
        # and SendTaskSuccess on this environment's state machine only.
        storage.grant_tables(self.function, read=(RUNS,), write=(RUNS,))
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["states:SendTaskSuccess"], resources=[state_machine_arn])
        )
        CfnOutput(
            Stack.of(self),
            OutputName.webhook_secret_name.value,
            value=name,
            description="The webhook signing secret: `threadrunner webhooks register --env "
            f"{config.name}` fills it in (or put the dashboard's whsec_... here)",
        )

"""The upstream (OpenAI or compatible) API key: a Secrets Manager secret operators fill in after deploying."""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, CfnOutput, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.constants import OutputName, secret_name


class UpstreamSecret(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        # The key never passes through CDK or CloudFormation: the secret starts as {"api_key": ""} plus a
        # generated placeholder field, and the Lambdas refuse to call the model until the key is set.
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            secret_name=secret_name(config.name),
            description=f'threadrunner {config.name}: the upstream API key, bare or as {{"api_key": "..."}}',
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({"api_key": ""}),
                generate_string_key="placeholder",
            ),
            removal_policy=config.cdk_removal_policy,
        )
        Validations.of(self.secret).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="A third-party API key: an operator rotates it at the provider, no Lambda can.",
            ),
        )
        CfnOutput(
            Stack.of(self),
            OutputName.secret_name.value,
            value=secret_name(config.name),
            description=(
                "Put the upstream API key here after deploying: aws secretsmanager put-secret-value "
                f'--secret-id {secret_name(config.name)} --secret-string \'{{"api_key": "sk-..."}}\''
            ),
        )

        # Engines with their own upstream may have their own key, in a secret an operator created.
        self.engine_secrets = [
            secretsmanager.Secret.from_secret_name_v2(
                self, f"{engine.capitalize()}Secret", upstream.secret_name
            )
            for engine, upstream in sorted(config.engine_upstreams.items())
            if upstream.secret_name is not None
        ]

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """GetSecretValue on the upstream secrets only (the default key needs no KMS grant)."""
        arns = [self.secret.secret_arn]
        # A secret known by name only: its ARN ends in a random six-character suffix.
        arns += [f"{secret.secret_arn}-??????" for secret in self.engine_secrets]
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=arns)
        )

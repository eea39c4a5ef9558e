"""Live push for browsers: an AppSync Events API with the namespace ``runs``, one channel per run
(``/runs/<user id>/<run id>``, threadrunner.run_event_fanout.run_channel).

Subscribing takes the environment's JWT, as the HTTP API does: the stack's Cognito user pool (its app client
only), or the ``jwt`` issuer (OIDC, its audiences). The namespace's onSubscribe rule
(infra/appsync/runs_channel.js) lets a caller subscribe only to their own runs' channels. Publishing takes IAM
only: the fan-out Lambda, whose role may ``appsync:EventPublish`` on this namespace alone.
"""

from __future__ import annotations

import re

from aws_cdk import CfnOutput, Stack, Token
from aws_cdk import aws_appsync as appsync
from aws_cdk import aws_iam as iam
from constructs import Construct
from threadrunner.run_event_fanout import CHANNEL_NAMESPACE

from infra.config import EnvironmentConfig
from infra.constants import REPO_ROOT, SERVICE_NAME, OutputName
from infra.constructs.identity import Identity

RUNS_CHANNEL_CODE = REPO_ROOT / "infra" / "appsync" / "runs_channel.js"
IAM = appsync.AppSyncAuthorizationType.IAM


def audience_pattern(audience: list[str]) -> str:
    """AppSync's OIDC ``clientId`` is a regular expression matched against the token's ``aud``: exactly one
    of the audiences the HTTP API's JWT authorizer accepts (the stack's own app client id, a token until
    deployed, is letters and digits: nothing to escape)."""
    return (
        "^("
        + "|".join(value if Token.is_unresolved(value) else re.escape(value) for value in audience)
        + ")$"
    )


class LiveEvents(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, identity: Identity
    ) -> None:
        super().__init__(scope, construct_id)
        if identity.user_pool is not None:
            self.user_auth = appsync.AppSyncAuthorizationType.USER_POOL
            user_provider = appsync.AppSyncAuthProvider(
                authorization_type=self.user_auth,
                cognito_config=appsync.AppSyncCognitoConfig(
                    user_pool=identity.user_pool, app_id_client_regex=audience_pattern(identity.audience)
                ),
            )
        else:
            self.user_auth = appsync.AppSyncAuthorizationType.OIDC
            user_provider = appsync.AppSyncAuthProvider(
                authorization_type=self.user_auth,
                open_id_connect_config=appsync.AppSyncOpenIdConnectConfig(
                    oidc_provider=identity.issuer, client_id=audience_pattern(identity.audience)
                ),
            )
        self.api = appsync.EventApi(
            self,
            "EventApi",
            api_name=f"{SERVICE_NAME}-{config.name}-live",
            authorization_config=appsync.EventApiAuthConfig(
                auth_providers=[user_provider, appsync.AppSyncAuthProvider(authorization_type=IAM)],
                # Browsers connect and subscribe with their JWT; only IAM principals publish.
                connection_auth_mode_types=[self.user_auth],
                default_subscribe_auth_mode_types=[self.user_auth],
                default_publish_auth_mode_types=[IAM],
            ),
        )
        self.runs = appsync.ChannelNamespace(
            self,
            "RunsNamespace",
            api=self.api,
            channel_namespace_name=CHANNEL_NAMESPACE,
            authorization_config=appsync.NamespaceAuthConfig(
                subscribe_auth_mode_types=[self.user_auth], publish_auth_mode_types=[IAM]
            ),
            # Inline (the rule reads in the template, no asset to upload): who may subscribe to which channel.
            code=appsync.Code.from_inline(RUNS_CHANNEL_CODE.read_text()),
        )
        stack = Stack.of(self)
        CfnOutput(
            stack,
            OutputName.live_events_http_endpoint.value,
            value=f"https://{self.api.http_dns}/event",
            description="AppSync Events HTTP endpoint of live run events (the host for a subscription's "
            "authorization header)",
        )
        CfnOutput(
            stack,
            OutputName.live_events_realtime_endpoint.value,
            value=f"wss://{self.api.realtime_dns}/event/realtime",
            description="AppSync Events WebSocket: subscribe to /runs/<your sub>/<run id with - for _> with "
            "your JWT",
        )

    @property
    def http_domain(self) -> str:
        return self.api.http_dns

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        """``appsync:EventPublish`` on the ``runs`` namespace of this API only."""
        self.runs.grant_publish(grantee)

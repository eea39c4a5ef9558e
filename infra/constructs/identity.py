"""Who may call the API: the environment's JWT issuer, or a Cognito user pool the stack creates."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnOutput, Duration, Stack, Validations
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.constants import SERVICE_NAME, OutputName


class Identity(Construct):
    """``issuer`` and ``audience`` for the API's JWT authorizer."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.user_pool: cognito.UserPool | None = None
        if config.jwt is not None:
            self.issuer = str(config.jwt.issuer).rstrip("/")
            self.audience = list(config.jwt.audience)
            return
        self.user_pool = self._user_pool(config)
        client = self.user_pool.add_client(
            "ApiClient",
            user_pool_client_name=f"{SERVICE_NAME}-{config.name}-api",
            auth_flows=cognito.AuthFlow(user_srp=True),
            # A public client (a browser or mobile app cannot keep a secret): the authorization code grant with
            # PKCE, back to the environment's own URLs only. No implicit grant (tokens in the URL fragment),
            # no client credentials (no secret to hold them).
            generate_secret=False,
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(
                    authorization_code_grant=True, implicit_code_grant=False, client_credentials=False
                ),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=list(config.oauth_callback_urls),
                logout_urls=list(config.oauth_logout_urls) or None,
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            access_token_validity=Duration.hours(1),
            id_token_validity=Duration.hours(1),
        )
        # Members of this group are operators: the kill switch routes (/v1/admin/...) are theirs.
        cognito.CfnUserPoolGroup(
            self,
            "AdminGroup",
            user_pool_id=self.user_pool.user_pool_id,
            group_name=config.admin_group,
            description="threadrunner operators: list active runs of all users and cancel them",
        )
        self.issuer = self.user_pool.user_pool_provider_url
        self.audience = [client.user_pool_client_id]
        stack = Stack.of(self)
        CfnOutput(stack, OutputName.user_pool_id.value, value=self.user_pool.user_pool_id)
        CfnOutput(stack, OutputName.user_pool_client_id.value, value=client.user_pool_client_id)

    def _user_pool(self, config: EnvironmentConfig) -> cognito.UserPool:
        pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"{SERVICE_NAME}-{config.name}",
            # Operators add users: the API holds per-user data and costs model tokens per call.
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            deletion_protection=config.is_production,
            removal_policy=config.cdk_removal_policy,
        )
        Validations.of(pool).acknowledge(
            Acknowledgment(
                id="AwsSolutions-COG2",
                reason="TOTP MFA is offered, not required: the pool is the default sign-in for trying the "
                "API; an environment with real users names its own issuer in cdk.json (jwt).",
            ),
            Acknowledgment(
                id="AwsSolutions-COG8",
                reason="Threat protection needs the Cognito Plus plan (billed per user); an environment "
                "that needs it names its own issuer in cdk.json (jwt).",
            ),
        )
        return pool

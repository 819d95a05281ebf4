"""boto3 sessions and clients for Organizations, IAM and STS, and readable errors that name
the IAM action a refused call needs.

Credentials come only from the standard AWS chain (environment, profile, web identity /
IRSA, container or instance role); with ``cloud_meta.assume_roles`` the publisher assumes
each role in turn (``sts:AssumeRole``) to read that account's IAM users and roles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from falconet.errors import SensorError
from falconet.sensors.cloudtrail.aws import Backoff, error_code

__all__ = ["AwsError", "Backoff", "Clients", "describe", "pages"]

#: The IAM action behind each API operation the publishers call.
ACTIONS = {
    "list_accounts": "organizations:ListAccounts",
    "list_tags_for_resource": "organizations:ListTagsForResource",
    "list_users": "iam:ListUsers",
    "list_roles": "iam:ListRoles",
    "list_user_tags": "iam:ListUserTags",
    "list_role_tags": "iam:ListRoleTags",
    "assume_role": "sts:AssumeRole",
}
_ACCESS = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
_CREDENTIALS = {
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
    "InvalidClientTokenId", "UnrecognizedClientException", "InvalidToken",
}  # fmt: skip


class AwsError(SensorError):
    """An AWS call failed; ``setup`` says whether an operator must fix something
    (credentials, permissions, no organisation) rather than wait for a retry to help."""

    def __init__(self, message: str, *, setup: bool) -> None:
        super().__init__(message)
        self.setup = setup


def describe(exc: BaseException, operation: str, target: str = "") -> AwsError:
    """One line for the operator naming the IAM action needed (never secrets)."""
    from botocore.exceptions import (
        ConnectTimeoutError,
        CredentialRetrievalError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    action = ACTIONS.get(operation, operation)
    what = f"call {action}" + (f" on {target}" if target else "")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return AwsError(
            f"cannot {what}: no usable AWS credentials ({exc}); the standard chain is read: "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity (IRSA), "
            "container or instance role",
            setup=True,
        )
    if isinstance(exc, NoRegionError):
        return AwsError(f"cannot {what}: no AWS region; set cloud_meta.region", setup=True)
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return AwsError(f"cannot {what}: the endpoint cannot be reached ({exc})", setup=False)
    code = error_code(exc)
    if code in _ACCESS:
        return AwsError(
            f"cannot {what}: access denied ({code}); allow {action} to the publisher's role "
            "(docs/sensors/cloud-meta.md lists the policy)",
            setup=True,
        )
    if code in _CREDENTIALS:
        return AwsError(
            f"cannot {what}: AWS refused the credentials ({code}); check the credential chain "
            "and the clock",
            setup=True,
        )
    if code == "AWSOrganizationsNotInUseException":
        return AwsError(
            f"cannot {what}: this account is not in an organisation; use "
            "cloud_meta.accounts_file (and cloud_meta.organizations: false)",
            setup=True,
        )
    if code:
        message = getattr(exc, "response", {}).get("Error", {}).get("Message", "")
        return AwsError(f"cannot {what}: {code}" + (f": {message}" if message else ""), setup=False)
    return AwsError(f"cannot {what}: {exc}", setup=False)


def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def pages(client: Any, operation: str, key: str, target: str = "", **params: Any) -> Iterator[Any]:
    """Every item of ``key`` over the pages of ``operation``; :class:`AwsError` on failure."""
    try:
        paginator = client.get_paginator(operation)
        for page in paginator.paginate(**params):
            yield from page.get(key) or ()
    except _errors() as exc:
        raise describe(exc, operation, target) from None


class Clients:
    """Creates the clients of one set of credentials (the chain's, or an assumed role's)."""

    def __init__(self, region: str, endpoint_url: str, session: Any = None) -> None:
        import boto3

        self.region = region
        self.endpoint_url = endpoint_url
        self.session = session or boto3.session.Session(region_name=region or None)

    def client(self, service: str) -> Any:
        from botocore.config import Config as BotoConfig

        conf = BotoConfig(
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=10,
            read_timeout=30,
            user_agent_extra="falconet-cloud-meta",
        )
        region = self.region or self.session.region_name or "us-east-1"
        try:
            return self.session.client(
                service, region_name=region, endpoint_url=self.endpoint_url or None, config=conf
            )
        except _errors() as exc:
            raise describe(exc, f"create the {service} client") from None

    def assume(self, role_arn: str, session_name: str = "falconet-cloud-meta") -> Clients:
        """The clients of ``role_arn``'s temporary credentials (``sts:AssumeRole``)."""
        import boto3

        try:
            creds = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)[
                "Credentials"
            ]
        except _errors() as exc:
            raise describe(exc, "assume_role", role_arn) from None
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self.region or self.session.region_name,
        )
        return Clients(self.region, self.endpoint_url, session)


def call(fn: Callable[[], Any], operation: str, target: str = "") -> Any:
    """Run one AWS call; any failure becomes an :class:`AwsError`."""
    try:
        return fn()
    except _errors() as exc:
        raise describe(exc, operation, target) from None

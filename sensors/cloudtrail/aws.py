"""boto3 clients for S3 and SQS, readable AWS errors, and backoff with jitter.

Credentials come only from the standard AWS chain (environment, shared config and
profiles, web identity / IRSA, container and instance roles); falconet's configuration
never holds them. The region and an endpoint override (MinIO, LocalStack, moto, a VPC
endpoint) come from ``cloudtrail.region`` and ``cloudtrail.endpoint_url``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from falconet.errors import SensorError

#: Error codes that mean "the configuration or the permissions are wrong", not "try again".
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
    "InvalidClientTokenId", "UnrecognizedClientException", "InvalidToken", "TokenRefreshRequired",
}  # fmt: skip
_ACCESS_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "AllAccessDisabled",
    "KMS.AccessDeniedException",
}
_MISSING_CODES = {
    "NoSuchBucket": "the bucket does not exist",
    "AWS.SimpleQueueService.NonExistentQueue": "the queue does not exist",
    "QueueDoesNotExist": "the queue does not exist",
    "NoSuchKey": "the object does not exist (deleted, or expired by a lifecycle rule)",
}
_QUEUE_URL_REGION = re.compile(
    r"^https?://(?:sqs\.([a-z0-9-]+)\.amazonaws\.com|([a-z0-9-]+)\.queue\.amazonaws\.com)/"
)


def region_of_queue_url(url: str) -> str:
    """The region in an AWS queue URL (``https://sqs.eu-west-1.amazonaws.com/…``), else ``""``."""
    m = _QUEUE_URL_REGION.match(url)
    return (m.group(1) or m.group(2)) if m else ""


def make_client(service: str, region: str, endpoint_url: str, read_timeout: float = 60.0) -> Any:
    """A boto3 client for ``service`` with standard retries and sane timeouts."""
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError

    extra: dict[str, Any] = {}
    if service == "s3" and endpoint_url:
        extra["s3"] = {"addressing_style": "path"}  # MinIO/moto/LocalStack endpoints
    conf = BotoConfig(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=10,
        read_timeout=read_timeout,
        user_agent_extra="falconet-cloudtrail",
        **extra,
    )
    try:
        session = boto3.session.Session(region_name=region or None)
        return session.client(service, endpoint_url=endpoint_url or None, config=conf)
    except (BotoCoreError, ValueError) as exc:
        raise SensorError(describe(exc, f"create the {service} client")) from None


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def describe(exc: BaseException, action: str) -> str:
    """One line for the operator: what failed, why, and what to check (never secrets)."""
    from botocore.exceptions import (
        ConnectTimeoutError,
        CredentialRetrievalError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
        return (
            f"cannot {action}: no usable AWS credentials ({exc}); the standard chain is read: "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity (IRSA), "
            "container or instance role"
        )
    if isinstance(exc, NoRegionError):
        return f"cannot {action}: no AWS region; set cloudtrail.region or AWS_REGION"
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return (
            f"cannot {action}: the endpoint cannot be reached ({exc}); check "
            "cloudtrail.endpoint_url, cloudtrail.region and the network"
        )
    code = error_code(exc)
    if code in _CREDENTIAL_CODES:
        return f"cannot {action}: AWS refused the credentials ({code}); check the credential chain and the clock"
    if code in _ACCESS_CODES:
        return (
            f"cannot {action}: access denied ({code}); the role needs the permissions listed in "
            "docs/sensors/cloudtrail.md (and kms:Decrypt when the trail uses SSE-KMS)"
        )
    if code in _MISSING_CODES:
        return f"cannot {action}: {_MISSING_CODES[code]} ({code})"
    if code:
        message = getattr(exc, "response", {}).get("Error", {}).get("Message", "")
        return f"cannot {action}: {code}" + (f": {message}" if message else "")
    return f"cannot {action}: {exc}"


def is_setup_error(exc: BaseException) -> bool:
    """Errors an operator must fix (credentials, access, a missing bucket or queue)."""
    from botocore.exceptions import NoCredentialsError, NoRegionError, PartialCredentialsError

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, NoRegionError)):
        return True
    code = error_code(exc)
    return code in _CREDENTIAL_CODES or code in _ACCESS_CODES or code in _MISSING_CODES


def aws_errors() -> tuple[type[BaseException], ...]:
    """The exception types a boto3 call raises for AWS or transport problems."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def check(call: Callable[[], Any], action: str) -> Any:
    """Run one AWS call at start-up; any failure becomes a :class:`SensorError`."""
    try:
        return call()
    except aws_errors() as exc:
        raise SensorError(describe(exc, action)) from None


class Backoff:
    """Exponential backoff with jitter: ``base``·2ⁿ capped at ``cap``, each delay drawn
    uniformly from its upper half (so retries of many collectors spread out)."""

    __slots__ = ("base", "cap", "failures", "_random")

    def __init__(
        self, base: float = 1.0, cap: float = 60.0, rng: Callable[[], float] = random.random
    ) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0
        self._random = rng

    def next(self) -> float:
        """The delay before the next attempt (counts one more failure)."""
        self.failures += 1
        return self.delay(self.failures)

    def delay(self, attempt: int) -> float:
        """The delay after ``attempt`` failures in a row (1 for the first)."""
        ceiling = min(self.cap, self.base * 2 ** min(max(attempt, 1) - 1, 30))
        return ceiling / 2 + self._random() * ceiling / 2

    def reset(self) -> None:
        self.failures = 0

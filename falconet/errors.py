"""The one root exception of falconet and its direct families.

Every error falconet raises on purpose derives from :class:`FalconetError`, so a caller
(the CLI, a worker) can catch one type and turn it into a clear message instead of a
traceback.
"""

from __future__ import annotations


class FalconetError(Exception):
    """Root of every error falconet raises on purpose."""


class ConfigError(FalconetError):
    """A configuration file or environment variable is invalid."""


class InputError(FalconetError):
    """An input (file, stream record) cannot be read or decoded."""


class RuleLoadError(FalconetError):
    """A rules load failed; ``result`` holds every error and warning with positions."""

    def __init__(self, message: str, result: object | None = None) -> None:
        super().__init__(message)
        self.result = result


class PublishError(FalconetError):
    """Events could not be delivered to Kafka (broker unreachable, record too large, timeout)."""


class SensorError(FalconetError):
    """A sensor cannot start or run (missing capability, kernel feature, bad source)."""


class SinkError(FalconetError):
    """A destination refused or could not take a batch.

    ``retryable`` says whether sending the same batch again can help (a timeout, 408, 429,
    5xx, a reset connection) or not (bad credentials, a payload the service rejects);
    ``retry_after`` is the delay the service asked for (seconds), when it said one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status

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

"""The collector's settings (``cloudtrail.*``, docs/configuration.md), checked once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from falconet.config import Config
from falconet.errors import ConfigError

from .checkpoint import default_path
from .keys import parse_since

SQS = "sqs"
BUCKET = "bucket"
DIRECTORY = "directory"


@dataclass(frozen=True, slots=True)
class CollectorOptions:
    """Where the collector reads from and how (see docs/sensors/cloudtrail.md)."""

    sqs_queue_url: str = ""
    bucket: str = ""
    prefix: str = ""
    directory: str = ""
    region: str = ""
    endpoint_url: str = ""
    checkpoint_file: str = ""
    poll_seconds: float = 60.0
    since: str = ""  # YYYY/MM/DD day folder, or ""
    max_in_flight: int = 4
    sqs_wait_seconds: int = 20
    visibility_seconds: int = 300
    once: bool = False
    #: Local files younger than this are left for the next scan (they may still be written).
    settle_seconds: float = 2.0
    #: On stop, how long acknowledged-but-unconfirmed deliveries are waited for.
    drain_seconds: float = 5.0

    @property
    def mode(self) -> str:
        return SQS if self.sqs_queue_url else BUCKET if self.bucket else DIRECTORY

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_file) if self.checkpoint_file else default_path()

    @classmethod
    def from_config(cls, cfg: Config, *, once: bool = False) -> CollectorOptions:
        """The options from ``cloudtrail.*``; :class:`ConfigError` naming the key when wrong."""
        get = cfg.__getitem__
        since = str(get("cloudtrail.since")).strip()
        if since:
            try:
                since = parse_since(since)
            except ValueError:
                raise ConfigError(
                    f"cloudtrail.since must be a date (YYYY-MM-DD), not {since!r}"
                ) from None
        opts = cls(
            sqs_queue_url=str(get("cloudtrail.sqs_queue_url")).strip(),
            bucket=str(get("cloudtrail.bucket")).strip(),
            prefix=str(get("cloudtrail.prefix")),
            directory=str(get("cloudtrail.directory")).strip(),
            region=str(get("cloudtrail.region")).strip(),
            endpoint_url=str(get("cloudtrail.endpoint_url")).strip(),
            checkpoint_file=str(get("cloudtrail.checkpoint_file")).strip(),
            poll_seconds=float(get("cloudtrail.poll_seconds")),
            since=since,
            max_in_flight=int(get("cloudtrail.max_in_flight")),
            sqs_wait_seconds=int(get("cloudtrail.sqs_wait_seconds")),
            visibility_seconds=int(get("cloudtrail.visibility_seconds")),
            once=once,
        )
        opts.validate()
        return opts

    def validate(self) -> None:
        chosen = [k for k, v in (("cloudtrail.sqs_queue_url", self.sqs_queue_url),
                                 ("cloudtrail.bucket", self.bucket),
                                 ("cloudtrail.directory", self.directory)) if v]  # fmt: skip
        if len(chosen) != 1:
            raise ConfigError(
                "the CloudTrail collector needs exactly one source: cloudtrail.sqs_queue_url "
                "(--sqs-queue-url), cloudtrail.bucket (--bucket) or cloudtrail.directory "
                f"(--directory); {'none is set' if not chosen else 'got ' + ' and '.join(chosen)}"
            )
        for key, url in (
            ("cloudtrail.sqs_queue_url", self.sqs_queue_url),
            ("cloudtrail.endpoint_url", self.endpoint_url),
        ):
            if url and not url.startswith(("https://", "http://")):
                raise ConfigError(f"{key} must be an http(s) URL, not {url!r}")
        if self.bucket and ("/" in self.bucket or self.bucket.startswith("s3:")):
            raise ConfigError(
                f"cloudtrail.bucket is a bucket name (the folder goes in cloudtrail.prefix), not {self.bucket!r}"
            )
        if self.directory and not os.path.isdir(self.directory):
            raise ConfigError(f"cloudtrail.directory {self.directory!r} is not a directory")
        bounds = (
            ("cloudtrail.poll_seconds", self.poll_seconds, 1, 86400),
            ("cloudtrail.max_in_flight", self.max_in_flight, 1, 64),
            ("cloudtrail.sqs_wait_seconds", self.sqs_wait_seconds, 0, 20),
            ("cloudtrail.visibility_seconds", self.visibility_seconds, 2, 43200),
        )
        for key, value, low, high in bounds:
            if not low <= value <= high:
                raise ConfigError(f"{key} must be between {low} and {high}, not {value:g}")

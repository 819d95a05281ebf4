"""The publisher's settings (``cloud_meta.*``), resolved once and checked.

Each setting is read, lowest precedence first, from its default, the configuration file
(``falconet/config.py`` declares the keys), its ``FALCONET_*``
environment variable, and the command line.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from falconet.config import Config, Setting, section
from falconet.config import resolve as resolve_settings
from falconet.errors import ConfigError

from .records import ACCOUNT_ID, TagKeys

IMDS_IPV4 = "http://169.254.169.254"
IMDS_IPV6 = "http://[fd00:ec2::254]"

#: declared in falconet/config.py (block "sensor.cloud_meta"), like every setting
SETTINGS: tuple[Setting, ...] = section("cloud_meta.")


def resolve(
    cfg: Config | None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Every ``cloud_meta.*`` value: command line, else environment, else the configuration
    file, else the default."""
    return resolve_settings("cloud_meta.", cfg, overrides, env)


def _keys(text: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in text.split(",") if k.strip())


@dataclass(frozen=True, slots=True)
class Options:
    """What to publish and how (docs/sensors/cloud-meta.md)."""

    imds: bool = False
    node_name: str = ""
    imds_endpoint: str = IMDS_IPV4
    imds_timeout: float = 2.0
    imds_refresh_seconds: float = 300.0
    accounts: bool = False
    organizations: bool = True
    accounts_file: str = ""
    identities: bool = False
    assume_roles: tuple[str, ...] = ()
    refresh_seconds: float = 900.0
    tag_keys: TagKeys = TagKeys()
    region: str = ""
    endpoint_url: str = ""
    publisher_id: str = "cloud-meta"
    metrics_port: int = 0
    once: bool = False

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(m for m, on in (("imds", self.imds), ("accounts", self.accounts),
                                     ("identities", self.identities)) if on)  # fmt: skip

    @classmethod
    def from_config(
        cls,
        cfg: Config | None,
        overrides: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        once: bool = False,
    ) -> Options:
        """Resolve and check; :class:`ConfigError` naming the setting when something is wrong."""
        v = resolve(cfg, overrides, env)
        endpoint = v["cloud_meta.imds_endpoint"].strip().rstrip("/")
        if not endpoint:
            endpoint = IMDS_IPV6 if v["cloud_meta.imds_ipv6"] else IMDS_IPV4
        node = v["cloud_meta.node_name"].strip()
        if not node:
            host = cfg.values.get("syscall.host", "") if cfg is not None else ""
            node = str(host or "").strip() or socket.gethostname()
        opts = cls(
            imds=v["cloud_meta.imds"],
            node_name=node,
            imds_endpoint=endpoint,
            imds_timeout=float(v["cloud_meta.imds_timeout_seconds"]),
            imds_refresh_seconds=float(v["cloud_meta.imds_refresh_seconds"]),
            accounts=v["cloud_meta.accounts"],
            organizations=v["cloud_meta.organizations"],
            accounts_file=v["cloud_meta.accounts_file"].strip(),
            identities=v["cloud_meta.identities"],
            assume_roles=_keys(v["cloud_meta.assume_roles"]),
            refresh_seconds=float(v["cloud_meta.refresh_seconds"]),
            tag_keys=TagKeys(
                environment=_keys(v["cloud_meta.tags_environment"]),
                criticality=_keys(v["cloud_meta.tags_criticality"]),
                owner=_keys(v["cloud_meta.tags_owner"]),
                team=_keys(v["cloud_meta.tags_team"]),
            ),
            region=v["cloud_meta.region"].strip(),
            endpoint_url=v["cloud_meta.endpoint_url"].strip(),
            publisher_id=v["cloud_meta.publisher_id"].strip(),
            metrics_port=v["cloud_meta.metrics_port"],
            once=once,
        )
        opts.validate()
        return opts

    def validate(self) -> None:
        if not self.modes:
            raise ConfigError(
                "nothing to publish: choose --imds (cloud_meta.imds), --accounts "
                "(cloud_meta.accounts) and/or --identities (cloud_meta.identities)"
            )
        if self.accounts and not (self.organizations or self.accounts_file):
            raise ConfigError(
                "cloud_meta.accounts needs a source: cloud_meta.organizations (the default) "
                "or cloud_meta.accounts_file"
            )
        if self.accounts_file and not os.path.isfile(self.accounts_file):
            raise ConfigError(f"cloud_meta.accounts_file {self.accounts_file!r} is not a file")
        for key, url in (("cloud_meta.imds_endpoint", self.imds_endpoint),
                         ("cloud_meta.endpoint_url", self.endpoint_url)):  # fmt: skip
            if url and not url.startswith(("http://", "https://")):
                raise ConfigError(f"{key} must be an http(s) URL, not {url!r}")
        for arn in self.assume_roles:
            parts = arn.split(":")
            if (
                len(parts) < 6
                or parts[2] != "iam"
                or not ACCOUNT_ID.match(parts[4])
                or not parts[5].startswith("role/")
            ):
                raise ConfigError(f"cloud_meta.assume_roles: {arn!r} is not an IAM role ARN")
        if not self.publisher_id:
            raise ConfigError("cloud_meta.publisher_id must not be empty")
        bounds = (
            ("cloud_meta.imds_timeout_seconds", self.imds_timeout, 1, 60),
            ("cloud_meta.imds_refresh_seconds", self.imds_refresh_seconds, 10, 86400),
            ("cloud_meta.refresh_seconds", self.refresh_seconds, 60, 86400),
            ("cloud_meta.metrics_port", self.metrics_port, 0, 65535),
        )
        for key, value, low, high in bounds:
            if not low <= value <= high:
                raise ConfigError(f"{key} must be between {low} and {high}, not {value:g}")

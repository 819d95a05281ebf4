"""The publisher's settings (``k8s_meta.*``), resolved and checked once at start.

Each setting is read, highest first, from the command line, its ``FALCONET_K8S_META_*``
environment variable, the configuration file (keys declared in ``falconet/config.py``),
and the default of :data:`SETTINGS` (docs/sensors/k8s-meta.md shows the table).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from falconet.config import SETTINGS as ALL_SETTINGS
from falconet.config import Config
from falconet.errors import ConfigError

from .translate import DEFAULT_ANNOTATION_EXCLUDES, Filters

#: (key, default, meaning), from the declarations in falconet/config.py ("sensor.k8s_meta")
SETTINGS: tuple[tuple[str, Any, str], ...] = tuple(
    (s.key, s.default, s.doc) for s in ALL_SETTINGS if s.key.startswith("k8s_meta.")
)

_DEFAULTS = {key: default for key, default, _ in SETTINGS}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_name(key: str) -> str:
    return "FALCONET_" + key.upper().replace(".", "_")


def _raw(key: str, cfg: Config | None, env: Mapping[str, str], overrides: Mapping[str, Any]) -> Any:
    if overrides.get(key) is not None:
        return overrides[key]
    if env_name(key) in env:
        return env[env_name(key)]
    if cfg is not None and key in cfg.values:
        return cfg.values[key]
    return _DEFAULTS[key]


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{key} must be true or false, not {value!r}")


def _int(key: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be an integer, not {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{key} must be between {low} and {high}, not {number}")
    return number


@dataclass(frozen=True, slots=True)
class K8sMetaSettings:
    """Everything the publisher needs from the configuration."""

    kubeconfig: str = ""
    context: str = ""
    cluster: str = ""
    publish_containers: bool = True
    annotation_max_bytes: int = 1024
    annotation_excludes: tuple[str, ...] = DEFAULT_ANNOTATION_EXCLUDES
    page_size: int = 500
    watch_timeout_s: int = 300
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    owner_sync_timeout_s: float = 30.0
    metrics_port: int = 0

    @property
    def filters(self) -> Filters:
        return Filters(self.annotation_excludes, self.annotation_max_bytes, self.cluster)

    @classmethod
    def load(
        cls,
        cfg: Config | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> K8sMetaSettings:
        """The settings; :class:`ConfigError` names the key of a bad value."""
        env = os.environ if env is None else env
        overrides = overrides or {}

        def get(key: str) -> Any:
            return _raw(key, cfg, env, overrides)

        initial = _int(
            "k8s_meta.backoff_initial_ms", get("k8s_meta.backoff_initial_ms"), 1, 600_000
        )
        cap = _int("k8s_meta.backoff_max_ms", get("k8s_meta.backoff_max_ms"), 1, 3_600_000)
        if cap < initial:
            raise ConfigError(
                "k8s_meta.backoff_max_ms must not be under k8s_meta.backoff_initial_ms"
            )
        return cls(
            kubeconfig=str(get("k8s_meta.kubeconfig")).strip(),
            context=str(get("k8s_meta.context")).strip(),
            cluster=str(get("k8s_meta.cluster")).strip(),
            publish_containers=_bool(
                "k8s_meta.publish_containers", get("k8s_meta.publish_containers")
            ),
            annotation_max_bytes=_int(
                "k8s_meta.annotation_max_bytes", get("k8s_meta.annotation_max_bytes"), 0, 1 << 20
            ),
            annotation_excludes=tuple(
                k.strip() for k in str(get("k8s_meta.annotation_excludes")).split(",") if k.strip()
            ),
            page_size=_int("k8s_meta.page_size", get("k8s_meta.page_size"), 1, 10_000),
            watch_timeout_s=_int(
                "k8s_meta.watch_timeout_seconds", get("k8s_meta.watch_timeout_seconds"), 1, 3600
            ),
            backoff_initial_s=initial / 1000.0,
            backoff_max_s=cap / 1000.0,
            owner_sync_timeout_s=float(
                _int(
                    "k8s_meta.owner_sync_timeout_seconds",
                    get("k8s_meta.owner_sync_timeout_seconds"),
                    0,
                    3600,
                )
            ),
            metrics_port=_int("k8s_meta.metrics_port", get("k8s_meta.metrics_port"), 0, 65535),
        )

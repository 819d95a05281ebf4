"""The publisher's settings (``k8s_meta.*``), resolved and checked once at start.

Each setting is read, highest first, from the command line, its ``FALCONET_K8S_META_*``
environment variable, the configuration file (keys declared in ``falconet/config.py``),
and the default of :data:`SETTINGS` (docs/sensors/k8s-meta.md shows the table).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from falconet.config import Config, in_range, resolve, section
from falconet.errors import ConfigError

from .translate import DEFAULT_ANNOTATION_EXCLUDES, Filters

#: (key, default, meaning), from the declarations in falconet/config.py ("sensor.k8s_meta")
SETTINGS: tuple[tuple[str, Any, str], ...] = tuple(
    (s.key, s.default, s.doc) for s in section("k8s_meta.")
)


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
        v = resolve("k8s_meta.", cfg, overrides, env)
        initial = in_range(
            "k8s_meta.backoff_initial_ms", v["k8s_meta.backoff_initial_ms"], 1, 600_000
        )
        cap = in_range("k8s_meta.backoff_max_ms", v["k8s_meta.backoff_max_ms"], 1, 3_600_000)
        if cap < initial:
            raise ConfigError(
                "k8s_meta.backoff_max_ms must not be under k8s_meta.backoff_initial_ms"
            )
        return cls(
            kubeconfig=str(v["k8s_meta.kubeconfig"]).strip(),
            context=str(v["k8s_meta.context"]).strip(),
            cluster=str(v["k8s_meta.cluster"]).strip(),
            publish_containers=v["k8s_meta.publish_containers"],
            annotation_max_bytes=in_range(
                "k8s_meta.annotation_max_bytes", v["k8s_meta.annotation_max_bytes"], 0, 1 << 20
            ),
            annotation_excludes=tuple(
                k.strip() for k in str(v["k8s_meta.annotation_excludes"]).split(",") if k.strip()
            ),
            page_size=in_range("k8s_meta.page_size", v["k8s_meta.page_size"], 1, 10_000),
            watch_timeout_s=in_range(
                "k8s_meta.watch_timeout_seconds", v["k8s_meta.watch_timeout_seconds"], 1, 3600
            ),
            backoff_initial_s=initial / 1000.0,
            backoff_max_s=cap / 1000.0,
            owner_sync_timeout_s=float(
                in_range(
                    "k8s_meta.owner_sync_timeout_seconds",
                    v["k8s_meta.owner_sync_timeout_seconds"],
                    0,
                    3600,
                )
            ),
            metrics_port=in_range("k8s_meta.metrics_port", v["k8s_meta.metrics_port"], 0, 65535),
        )

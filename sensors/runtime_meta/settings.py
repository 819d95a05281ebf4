"""The publisher's settings (``runtime_meta.*``), resolved and checked once at start.

Each setting is read, highest first, from the command line, its
``FALCONET_RUNTIME_META_*`` environment variable, the configuration file (keys declared in
``falconet/config.py``), and the default of :data:`SETTINGS` (docs/sensors/runtime-meta.md shows the table).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from falconet.config import Config, in_range, resolve, section
from falconet.errors import ConfigError

RUNTIMES = ("docker", "containerd", "cri-o")

#: Where each runtime listens by default, in the order ``auto`` tries them.
DEFAULT_SOCKETS: dict[str, tuple[str, ...]] = {
    "cri-o": ("/var/run/crio/crio.sock", "/run/crio/crio.sock"),
    "containerd": ("/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock"),
    "docker": ("/var/run/docker.sock", "/run/docker.sock"),
}

#: (key, default, meaning), from the declarations in falconet/config.py ("sensor.runtime_meta")
SETTINGS: tuple[tuple[str, Any, str], ...] = tuple(
    (s.key, s.default, s.doc) for s in section("runtime_meta.")
)


@dataclass(frozen=True, slots=True)
class RuntimeMetaSettings:
    """Everything the publisher needs from the configuration."""

    runtime: str = "auto"
    socket: str = ""
    node: str = ""
    poll_s: float = 2.0
    resync_s: float = 300.0
    request_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    metrics_port: int = 0

    @classmethod
    def load(
        cls,
        cfg: Config | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> RuntimeMetaSettings:
        """The settings; :class:`ConfigError` names the key of a bad value."""
        env = os.environ if env is None else env
        v = resolve("runtime_meta.", cfg, overrides, env)
        runtime = str(v["runtime_meta.runtime"]).strip().lower()
        runtime = {"crio": "cri-o"}.get(runtime, runtime)
        if runtime not in ("auto", *RUNTIMES):
            raise ConfigError(
                f"runtime_meta.runtime must be auto, {', '.join(RUNTIMES)}, not {runtime!r}"
            )
        initial = in_range(
            "runtime_meta.backoff_initial_ms", v["runtime_meta.backoff_initial_ms"], 1, 600_000
        )
        cap = in_range(
            "runtime_meta.backoff_max_ms", v["runtime_meta.backoff_max_ms"], 1, 3_600_000
        )
        if cap < initial:
            raise ConfigError(
                "runtime_meta.backoff_max_ms must not be under runtime_meta.backoff_initial_ms"
            )
        node = str(v["runtime_meta.node"]).strip()
        node = node or env.get("NODE_NAME", "").strip() or socket.gethostname()
        return cls(
            runtime=runtime,
            socket=str(v["runtime_meta.socket"]).strip(),
            node=node,
            poll_s=float(
                in_range("runtime_meta.poll_seconds", v["runtime_meta.poll_seconds"], 1, 3600)
            ),  # fmt: skip
            resync_s=float(
                in_range("runtime_meta.resync_seconds", v["runtime_meta.resync_seconds"], 0, 86_400)
            ),  # fmt: skip
            request_timeout_s=float(
                in_range(
                    "runtime_meta.request_timeout_seconds",
                    v["runtime_meta.request_timeout_seconds"],
                    1,
                    600,
                )
            ),  # fmt: skip
            backoff_initial_s=initial / 1000.0,
            backoff_max_s=cap / 1000.0,
            metrics_port=in_range(
                "runtime_meta.metrics_port", v["runtime_meta.metrics_port"], 0, 65535
            ),  # fmt: skip
        )

    def candidates(self) -> list[tuple[str, str]]:
        """(runtime, socket path) to try, in order."""
        runtimes = RUNTIMES[::-1] if self.runtime == "auto" else (self.runtime,)
        out = []
        for runtime in runtimes:
            paths = (self.socket,) if self.socket else DEFAULT_SOCKETS[runtime]
            out += [(runtime, path) for path in paths]
        return out

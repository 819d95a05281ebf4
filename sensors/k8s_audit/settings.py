"""The audit webhook's settings (``k8s_audit.*``), resolved and checked once at start."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from falconet.config import Config
from falconet.errors import ConfigError

log = logging.getLogger("falconet.sensor.k8s_audit")

#: Highest k8s_audit.max_request_bytes: any one event of a body this size still fits in
#: a Kafka record (falconet.kafka.MAX_MESSAGE_BYTES) once wrapped in its envelope.
MAX_REQUEST_BYTES = 15 * 1024 * 1024

#: Longest a client may take to send a request body once its headers arrived.
BODY_READ_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Everything the webhook needs from the configuration (the token is kept apart)."""

    listen_address: str = "0.0.0.0"
    port: int = 9765
    path: str = "/k8s-audit"
    tls_cert_file: str = ""
    tls_key_file: str = ""
    client_ca_file: str = ""
    allowed_cns: frozenset[str] = frozenset()
    token_file: str = ""
    insecure_http: bool = False
    max_request_bytes: int = 12 * 1024 * 1024
    max_event_bytes: int = 262_144
    cluster: str = ""
    publish_timeout_s: float = 10.0
    retry_after_s: int = 5
    max_inflight: int = 16
    metrics_port: int = 0

    @property
    def tls(self) -> bool:
        return not self.insecure_http

    @property
    def client_certs(self) -> bool:
        return bool(self.client_ca_file)

    @classmethod
    def from_config(cls, cfg: Config) -> WebhookSettings:
        """The settings of ``cfg``; :class:`ConfigError` names the key of a bad value."""
        path = str(cfg["k8s_audit.path"]).strip() or "/"
        if not path.startswith("/"):
            raise ConfigError(f"k8s_audit.path must start with '/', not {path!r}")
        if path in ("/healthz", "/readyz", "/livez"):
            raise ConfigError(f"k8s_audit.path {path!r} is taken by the health endpoints")
        settings = cls(
            listen_address=str(cfg["k8s_audit.listen_address"]).strip(),
            port=_int(cfg, "k8s_audit.port", 0, 65535),
            path=path,
            tls_cert_file=str(cfg["k8s_audit.tls_cert_file"]),
            tls_key_file=str(cfg["k8s_audit.tls_key_file"]) or str(cfg["k8s_audit.tls_cert_file"]),
            client_ca_file=str(cfg["k8s_audit.client_ca_file"]),
            allowed_cns=frozenset(
                cn.strip() for cn in str(cfg["k8s_audit.allowed_cns"]).split(",") if cn.strip()
            ),
            token_file=str(cfg["k8s_audit.token_file"]),
            insecure_http=bool(cfg["k8s_audit.insecure_http"]),
            max_request_bytes=_int(cfg, "k8s_audit.max_request_bytes", 1024, MAX_REQUEST_BYTES),
            max_event_bytes=_int(cfg, "input.k8s_audit_max_event_bytes", 0, 1 << 31),
            cluster=str(cfg["k8s_audit.cluster"]),
            publish_timeout_s=_int(cfg, "k8s_audit.publish_timeout_ms", 1, 600_000) / 1000.0,
            retry_after_s=_int(cfg, "k8s_audit.retry_after", 1, 3600),
            max_inflight=_int(cfg, "k8s_audit.max_inflight", 1, 4096),
            metrics_port=_int(cfg, "k8s_audit.metrics_port", 0, 65535),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse combinations that cannot work or would be unsafe without saying so."""
        if self.tls and not self.tls_cert_file:
            raise ConfigError(
                "the audit webhook serves HTTPS: set k8s_audit.tls_cert_file (and "
                "k8s_audit.tls_key_file), or pass --insecure-http for development"
            )
        if self.insecure_http and self.client_ca_file:
            raise ConfigError(
                "k8s_audit.client_ca_file needs TLS: it cannot be used with k8s_audit.insecure_http"
            )
        if self.allowed_cns and not self.client_ca_file:
            raise ConfigError("k8s_audit.allowed_cns needs k8s_audit.client_ca_file")
        if self.publish_timeout_s >= 30:
            log.warning(
                "k8s_audit.publish_timeout_ms=%d is not under the API server's 30 s webhook timeout: "
                "it gives up (and retries) before the webhook answers 503",
                int(self.publish_timeout_s * 1000),
            )


def _int(cfg: Config, key: str, low: int, high: int) -> int:
    value = int(cfg[key])
    if not low <= value <= high:
        raise ConfigError(f"{key} must be between {low} and {high}, not {value}")
    return value

"""The webhook's TLS: the server certificate, client-certificate verification, rotation.

With ``k8s_audit.client_ca_file`` the server asks every client for a certificate and
verifies one that is presented against that CA: a certificate from another CA (or an
expired one) fails the handshake. A client without a certificate still completes it, so
the kubelet's probes reach ``/healthz`` and ``/readyz``; the webhook path then answers 401
(see :mod:`.auth`). The server certificate is loaded again when its files change, so a
certificate rotated by cert-manager (or a Secret update) is served without a restart.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass
from typing import Any

from falconet.errors import ConfigError

from .settings import WebhookSettings

log = logging.getLogger("falconet.sensor.k8s_audit")


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


@dataclass(slots=True)
class ServerTLS:
    """An :class:`ssl.SSLContext` for the webhook, reloadable in place."""

    cert_file: str
    key_file: str
    client_ca_file: str = ""
    context: ssl.SSLContext | None = None
    _stamp: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def from_settings(cls, settings: WebhookSettings) -> ServerTLS:
        tls = cls(settings.tls_cert_file, settings.tls_key_file, settings.client_ca_file)
        tls.context = tls._build()
        return tls

    def _build(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.options |= ssl.OP_NO_COMPRESSION
        self._load_chain(ctx)
        if self.client_ca_file:
            try:
                ctx.load_verify_locations(cafile=self.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"k8s_audit.client_ca_file {self.client_ca_file}: cannot load the CA: {_why(exc)}"
                ) from None
            # verify a certificate when one is presented; requiring one is the webhook
            # path's decision, so that probes without certificates reach the health paths
            ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    def _load_chain(self, ctx: ssl.SSLContext) -> None:
        try:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load the server certificate {self.cert_file} with key {self.key_file}: "
                f"{_why(exc)} (k8s_audit.tls_cert_file, k8s_audit.tls_key_file)"
            ) from None
        self._stamp = (_mtime(self.cert_file), _mtime(self.key_file))

    def reload_if_changed(self) -> bool:
        """Load the certificate again if its files changed; new handshakes use it.

        A half-written pair (a key that does not match yet) keeps the old certificate and
        is tried again at the next call.
        """
        if self.context is None:
            return False
        stamp = (_mtime(self.cert_file), _mtime(self.key_file))
        if stamp == self._stamp or 0.0 in stamp:
            return False
        try:
            self._load_chain(self.context)
        except ConfigError as exc:
            log.warning("k8s_audit.tls_reload_failed error=%s", exc)
            return False
        log.info("k8s_audit.tls_reloaded cert=%s", self.cert_file)
        return True


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def peer_common_names(transport: Any) -> tuple[bool, list[str]]:
    """Whether the connection presented a verified client certificate, and its subject CNs."""
    if transport is None:
        return False, []
    cert = transport.get_extra_info("peercert")
    if not cert:
        return False, []
    names = [value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"]
    return True, names

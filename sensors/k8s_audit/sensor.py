"""The audit webhook as a :class:`~falconet.sensors.base.Sensor`: listen, serve, stop cleanly.

``setup()`` checks the credentials and TLS files and binds the port, so a bad certificate
or a port in use stops the command before anything runs. ``run(emit)`` serves on its own
asyncio loop until ``stop()``; then readiness turns 503, the listening socket closes, the
requests in flight finish (each bounded by ``k8s_audit.publish_timeout_ms``), and ``run``
returns for the runner to flush the publisher.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from falconet.errors import ConfigError, SensorError
from falconet.event import K8S_AUDIT
from falconet.inputs import RecordDecoder
from falconet.sensors.base import Emitter, SensorStats

from .auth import Authenticator
from .ingest import Ingest
from .server import WebhookApp
from .settings import WebhookSettings
from .tls import ServerTLS

log = logging.getLogger("falconet.sensor.k8s_audit")

#: How often the certificate and token files are checked for rotation (seconds).
RELOAD_INTERVAL_S = 30.0


def bind(address: str, port: int) -> socket.socket:
    """A listening TCP socket (IPv6 ``::`` also takes IPv4); :class:`SensorError` if not."""
    try:
        infos = socket.getaddrinfo(
            address or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise SensorError(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(512)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise SensorError(
            f"cannot listen on {address}:{port}: {exc.strerror or exc} (k8s_audit.listen_address, "
            "k8s_audit.port)"
        ) from None
    return sock


class K8sAuditSensor:
    """The Kubernetes audit webhook (docs/sensors/k8s-audit.md)."""

    name = "k8s_audit"
    source = K8S_AUDIT

    def __init__(self, settings: WebhookSettings, token: str = "", host: str | None = None) -> None:
        self.settings = settings
        self.stats = SensorStats()
        self.decoder = RecordDecoder(host, settings.cluster, settings.max_event_bytes)
        #: The Kafka key of every batch: the cluster, else this webhook's host.
        self.key = settings.cluster or self.decoder.host or "k8s_audit"
        #: Set once the server accepts connections; ``port`` is then the bound port.
        self.started = threading.Event()
        self.port = 0
        self._token = token
        self._auth: Authenticator | None = None
        self._tls: ServerTLS | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        scheme = "https" if self.settings.tls else "http"
        host = self.settings.listen_address
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}{self.settings.path}"

    def setup(self) -> None:
        s = self.settings
        self._auth = Authenticator(self._token, s.token_file, s.client_certs, s.allowed_cns)
        if self._auth.anonymous and not s.insecure_http:
            raise ConfigError(
                "the audit webhook needs authentication: set FALCONET_K8S_AUDIT_TOKEN or "
                "k8s_audit.token_file (bearer token), and/or k8s_audit.client_ca_file (client "
                "certificates)"
            )
        self._tls = ServerTLS.from_settings(s) if s.tls else None
        self._sock = bind(s.listen_address, s.port)
        self.port = self._sock.getsockname()[1]
        if s.insecure_http:
            log.warning(
                "k8s_audit.INSECURE plain HTTP on port %d: audit events%s travel unencrypted; "
                "for development only",
                self.port, " and bearer tokens" if self._auth.token_required else "",
            )  # fmt: skip
        if self._auth.anonymous:
            log.warning(
                "k8s_audit.INSECURE no authentication: anyone reaching the port can post audit events"
            )
        if not s.cluster:
            log.warning("k8s_audit.no_cluster envelopes carry no 'cluster' (set k8s_audit.cluster)")

    def run(self, emit: Emitter) -> None:
        if self._sock is None:
            raise SensorError("setup() was not called")
        asyncio.run(self._serve(emit))

    def stop(self) -> None:
        """Stop serving; callable from a signal handler or another thread."""
        self._stopping = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed meanwhile
                pass

    async def _serve(self, emit: Emitter) -> None:
        s = self.settings
        assert self._auth is not None and self._sock is not None
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=s.max_inflight, thread_name_prefix="k8s-audit")
        ingest = Ingest(emit, self.decoder, self.key, s.publish_timeout_s)
        webhook = WebhookApp(s, self._auth, ingest, executor)
        runner = web.AppRunner(
            webhook.build(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=s.publish_timeout_s + 5,
        )
        await runner.setup()
        site = web.SockSite(
            runner, self._sock, ssl_context=self._tls.context if self._tls else None
        )
        watcher: asyncio.Task[None] | None = None
        try:
            await site.start()
            webhook.ready = True
            auth = "+".join(
                name
                for name, on in (
                    ("token", self._auth.token_required),
                    ("client-cert", s.client_certs),
                )
                if on
            )
            log.info(
                "k8s_audit.listening url=%s auth=%s cluster=%s key=%s max_request_bytes=%d",
                self.url, auth or "none", s.cluster or "-", self.key, s.max_request_bytes,
            )  # fmt: skip
            self.started.set()
            watcher = asyncio.create_task(self._watch_files())
            if not self._stopping:
                await self._stop.wait()
        finally:
            webhook.ready = False
            if watcher is not None:
                watcher.cancel()
            log.info("k8s_audit.draining")
            await runner.cleanup()  # stop accepting, finish in-flight requests, close
            executor.shutdown(wait=True)
            self._sock.close()
            self._loop = None

    async def _watch_files(self) -> None:
        """Pick up a rotated server certificate or token file."""
        while True:
            await asyncio.sleep(RELOAD_INTERVAL_S)
            if self._tls is not None:
                self._tls.reload_if_changed()
            if self._auth is not None:
                self._auth.reload_if_changed()

"""The HTTP client every HTTP destination shares, and the status classifier.

One :class:`HttpClient` per sink: TLS 1.2 or newer with verification on by default, a
custom CA bundle, a client certificate (mTLS), an HTTP(S) proxy, gzip request bodies, a
total timeout per request and a limit on requests in flight. Failures become
:class:`~falconet.errors.SinkError` with ``retryable`` set the way every destination
wants it: connection refused or reset, timeouts, 408, 425, 429 and 5xx (but 501 and 505)
are worth retrying; other 4xx are not. ``Retry-After`` (seconds or an HTTP date) is
parsed into ``retry_after``.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip as gzip_module
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from falconet import __version__
from falconet.errors import ConfigError, SinkError

from .base import Option

__all__ = ["HTTP_OPTIONS", "HttpClient", "HttpResponse", "raise_for_status", "retry_after"]

HTTP_OPTIONS: tuple[Option, ...] = (
    Option("tls_verify", True, bool, "Verify the server's certificate and host name. Turn off only for tests."),
    Option("ca_file", "", str, "PEM bundle of the CAs to trust instead of the system's."),
    Option("client_cert_file", "", str, "PEM client certificate for mutual TLS."),
    Option("client_key_file", "", str, "PEM private key of `client_cert_file` (if not in the same file)."),
    Option("proxy", "", str, "HTTP proxy URL (`http://host:3128`); empty: none (HTTPS_PROXY is not read)."),
    Option("timeout_seconds", 30.0, float, "Total time one request may take before it counts as failed (retried)."),
    Option("gzip", False, bool, "Compress request bodies (`Content-Encoding: gzip`)."),
    Option("concurrency", 4, int, "Requests of this sink in flight at once."),
)  # fmt: skip

_RETRY_STATUSES = {408, 425, 429}


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes

    def json(self) -> Any:
        """The body as JSON; raises SinkError (retryable) if it is not JSON."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise SinkError(
                f"HTTP {self.status} with a body that is not JSON ({len(self.body)} bytes)",
                retryable=True,
                status=self.status,
            ) from None

    def text(self, limit: int = 300) -> str:
        """The start of the body, for error messages."""
        return self.body[:limit].decode("utf-8", "replace").strip()


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """``Retry-After`` in seconds (a delay or an HTTP date), or None."""
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def is_retryable_status(status: int) -> bool:
    return status in _RETRY_STATUSES or (500 <= status <= 599 and status not in (501, 505))


def raise_for_status(resp: HttpResponse, what: str) -> None:
    """Raise SinkError unless ``resp`` is a 2xx. ``what`` names the call in the message."""
    if 200 <= resp.status <= 299:
        return
    detail = resp.text()
    raise SinkError(
        f"{what}: HTTP {resp.status}" + (f": {detail}" if detail else ""),
        retryable=is_retryable_status(resp.status),
        retry_after=retry_after(resp.headers),
        status=resp.status,
    )


def ssl_context(options: Mapping[str, Any]) -> ssl.SSLContext:
    """TLS 1.2+, the system's CAs or ``ca_file``, optional client certificate."""
    ca = options.get("ca_file") or None
    try:
        ctx = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"ca_file {ca}: {e}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not options.get("tls_verify", True):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    cert = options.get("client_cert_file") or None
    if cert:
        try:
            ctx.load_cert_chain(cert, options.get("client_key_file") or None)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"client_cert_file {cert}: {e}") from None
    return ctx


class HttpClient:
    """One sink's connection pool. Use ``async with`` or open()/close()."""

    def __init__(self, options: Mapping[str, Any], sink_name: str = "") -> None:
        self._opts = options
        self._sink = sink_name
        self._session: aiohttp.ClientSession | None = None
        self._timeout = float(options.get("timeout_seconds", 30.0))
        self._gzip = bool(options.get("gzip", False))
        self._proxy = options.get("proxy") or None
        self._sem = asyncio.Semaphore(max(1, int(options.get("concurrency", 4))))

    async def open(self) -> None:
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(
            ssl=ssl_context(self._opts), limit=max(1, int(self._opts.get("concurrency", 4)))
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"User-Agent": f"falconet/{__version__}"},
            trust_env=False,
            auto_decompress=True,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> HttpClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        compress: bool | None = None,
    ) -> HttpResponse:
        """Send one request and read the whole answer; any status is returned.

        Network failures (refused, reset, TLS, timeout) raise SinkError; statuses do not
        (see :func:`raise_for_status`). ``compress`` overrides the ``gzip`` option.
        """
        if self._session is None:
            await self.open()
        assert self._session is not None
        hdrs = dict(headers or {})
        if body is not None and (self._gzip if compress is None else compress):
            body = gzip_module.compress(body, compresslevel=5)
            hdrs["Content-Encoding"] = "gzip"
        where = _where(url)
        async with self._sem:
            try:
                async with self._session.request(
                    method, url, data=body, headers=hdrs, proxy=self._proxy
                ) as r:
                    data = await r.read()
                    return HttpResponse(r.status, r.headers, data)
            except aiohttp.ClientConnectorCertificateError as e:
                raise SinkError(
                    f"{where}: TLS certificate not trusted ({e.certificate_error}); "
                    "check ca_file / the server's certificate",
                    retryable=True,
                ) from None
            except aiohttp.ClientSSLError as e:
                raise SinkError(f"{where}: TLS handshake failed: {e}", retryable=True) from None
            except TimeoutError:
                raise SinkError(
                    f"{where}: no answer within {self._timeout:g}s", retryable=True
                ) from None
            except aiohttp.ClientError as e:
                raise SinkError(f"{where}: {type(e).__name__}: {e}", retryable=True) from None


async def probe_reachable(client: HttpClient, url: str) -> str:
    """A HEAD request to ``url``: any HTTP answer proves the network path, the proxy and
    TLS (the server's certificate against our CAs) work; nothing is sent."""
    r = await client.request("HEAD", url)
    return f"{_where(url)} answers over {'TLS' if url.startswith('https') else 'HTTP'} (HTTP {r.status})"


def _where(url: str) -> str:
    """The URL without query string or credentials (for messages and logs)."""
    from urllib.parse import urlsplit

    p = urlsplit(url)
    host = p.hostname or ""
    port = f":{p.port}" if p.port else ""
    return f"{p.scheme}://{host}{port}{p.path}"

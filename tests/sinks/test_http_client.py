"""The HTTP client every HTTP sink shares: proxy, client certificates, TLS floor, gzip.

The server is an aiohttp app over TLS (trustme CA); the proxy is a minimal HTTP CONNECT
tunnel as RFC 9110 §9.3.6 describes it (what squid or a corporate proxy does for HTTPS):
it answers ``200`` to ``CONNECT host:port`` and then relays bytes both ways.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import warnings
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from falconet.errors import SinkError
from falconet.sinks.http import HttpClient
from tests.sinks.receivers import serve


class ConnectProxy:
    """An HTTP CONNECT proxy on loopback that records the targets it tunnelled to."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def __aenter__(self) -> ConnectProxy:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        self.targets.append(target)
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture()
def pki(tmp_path: Path) -> dict[str, object]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client = ca.issue_cert("sink@falconet")
    client.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "client.pem"))
    return {"server": server, "ca": ca, "ca_file": str(tmp_path / "ca.pem"),
            "client_file": str(tmp_path / "client.pem")}  # fmt: skip


async def _app(server: ssl.SSLContext, seen: list[dict[str, object]]) -> tuple[web.AppRunner, int]:
    async def echo(request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp inflates a gzip body itself
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        seen.append({"body": body, "gzip": request.headers.get("Content-Encoding") == "gzip",
                     "client_cert": bool(peer)})  # fmt: skip
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/in", echo)
    return await serve(app, server)


def test_requests_go_through_the_proxy_with_tls_to_the_service(pki: dict) -> None:
    asyncio.run(_requests_go_through_the_proxy_with_tls_to_the_service(pki))


async def _requests_go_through_the_proxy_with_tls_to_the_service(pki: dict) -> None:
    seen: list[dict[str, object]] = []
    runner, port = await _app(pki["server"], seen)
    try:
        async with ConnectProxy() as proxy:
            opts = {
                "ca_file": pki["ca_file"],
                "proxy": f"http://127.0.0.1:{proxy.port}",
                "gzip": True,
            }
            async with HttpClient(opts) as client:
                r = await client.request("POST", f"https://127.0.0.1:{port}/in", body=b'{"a":1}')
        assert r.status == 204
        assert proxy.targets == [f"127.0.0.1:{port}"]  # tunnelled, end to end TLS
        assert seen == [{"body": b'{"a":1}', "gzip": True, "client_cert": False}]
    finally:
        await runner.cleanup()


def test_client_certificate_for_mutual_tls(pki: dict) -> None:
    asyncio.run(_client_certificate_for_mutual_tls(pki))


async def _client_certificate_for_mutual_tls(pki: dict) -> None:
    server: ssl.SSLContext = pki["server"]
    server.verify_mode = ssl.CERT_REQUIRED
    pki["ca"].configure_trust(server)
    seen: list[dict[str, object]] = []
    runner, port = await _app(server, seen)
    try:
        async with HttpClient({"ca_file": pki["ca_file"]}) as client:
            with pytest.raises(SinkError):  # the server requires a certificate we did not give
                await client.request("POST", f"https://127.0.0.1:{port}/in", body=b"{}")
        async with HttpClient(
            {"ca_file": pki["ca_file"], "client_cert_file": pki["client_file"]}
        ) as client:
            r = await client.request("POST", f"https://127.0.0.1:{port}/in", body=b"{}")
        assert r.status == 204 and seen[-1]["client_cert"] is True
    finally:
        await runner.cleanup()


def test_tls_older_than_1_2_is_refused(pki: dict) -> None:
    asyncio.run(_tls_older_than_1_2_is_refused(pki))


async def _tls_older_than_1_2_is_refused(pki: dict) -> None:
    server: ssl.SSLContext = pki["server"]
    with warnings.catch_warnings():  # the point is an outdated server
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1
        server.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        server.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    runner, port = await _app(server, [])
    try:
        async with HttpClient({"ca_file": pki["ca_file"]}) as client:
            with pytest.raises(SinkError, match="TLS|SSL|handshake|Connect"):
                await client.request("POST", f"https://127.0.0.1:{port}/in", body=b"{}")
    finally:
        await runner.cleanup()

"""Node mode: the IMDSv2 client and the instance record, against a loopback IMDS.

:class:`ImdsServer` behaves like EC2's instance metadata service with ``HttpTokens:
required`` for what the client relies on: ``PUT /latest/api/token`` needs the TTL header
(400 without it or out of 1–21600 seconds) and is refused through a proxy
(``X-Forwarded-For``: 403); every ``GET`` needs a live token (401 otherwise); the identity
document is served as text/plain JSON in AWS's own layout; instance tags are listed under
``/latest/meta-data/tags/instance`` only when tags in metadata are allowed (404 otherwise,
with IMDS's HTML error page). What it cannot show is the hop limit (every request here is
one hop away).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from falconet.enrichers.cloud_keys import merge_instance
from falconet.sensors.cloud_meta.imds import ImdsClient, ImdsError
from falconet.sensors.cloud_meta.inventory import InstanceSource
from falconet.sensors.cloud_meta.options import Options
from tests.conftest import FIXTURES

DOCUMENT_TEXT = (FIXTURES / "cloud_meta" / "instance-identity-document.json").read_text()
TAGS = {"Name": "eks-prod-eu-1-node", "environment": "production", "team": "platform",
        "kubernetes.io/cluster/prod-eu-1": "owned"}  # fmt: skip
_NOT_FOUND = (
    '<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 '
    'Transitional//EN"\n\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
    '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n <head>\n'
    "  <title>404 - Not Found</title>\n </head>\n <body>\n  <h1>404 - Not Found</h1>\n"
    " </body>\n</html>\n"
)


class ImdsServer:
    """A loopback IMDSv2 (see the module docstring); state can change between requests."""

    def __init__(self, document_text: str = DOCUMENT_TEXT, tags: dict[str, str] | None = None,
                 host: str = "127.0.0.1") -> None:  # fmt: skip
        self.document_text = document_text
        self.tags = tags  # None: tags in metadata not allowed
        self.host = host
        self.tokens: dict[str, float] = {}
        self.log: list[tuple[str, str, int]] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def set_document(self, **changes: Any) -> None:
        doc = json.loads(self.document_text)
        doc.update(changes)
        self.document_text = json.dumps(doc, indent=2, separators=(",", " : "))

    def expire_tokens(self) -> None:
        self.tokens.clear()

    async def _token(self, request: web.Request) -> web.Response:
        if "X-Forwarded-For" in request.headers:
            return self._answer(request, web.Response(status=403, text="Forbidden"))
        ttl = request.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self._answer(request, web.Response(status=400, text="Bad Request"))
        token = secrets.token_urlsafe(40)
        self.tokens[token] = time.monotonic() + int(ttl)
        headers = {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
        return self._answer(request, web.Response(text=token, headers=headers))

    async def _get(self, request: web.Request) -> web.Response:
        token = request.headers.get("X-aws-ec2-metadata-token", "")
        if self.tokens.get(token, 0) < time.monotonic():
            return self._answer(request, web.Response(status=401, text="Unauthorized"))
        path = request.path.rstrip("/")
        prefix = "/latest/meta-data/tags/instance"
        if path == "/latest/dynamic/instance-identity/document":
            return self._answer(request, web.Response(text=self.document_text))
        if path == prefix and self.tags is not None:
            return self._answer(request, web.Response(text="\n".join(self.tags)))
        if path.startswith(prefix + "/") and self.tags is not None:
            key = urllib.parse.unquote(path[len(prefix) + 1 :])
            if key in self.tags:
                return self._answer(request, web.Response(text=self.tags[key]))
        return self._answer(
            request, web.Response(status=404, text=_NOT_FOUND, content_type="text/html")
        )

    def _answer(self, request: web.Request, response: web.Response) -> web.Response:
        self.log.append((request.method, request.path, response.status))
        return response

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_put("/latest/api/token", self._token)
        app.router.add_get("/{tail:.*}", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def __enter__(self) -> ImdsServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture()
def imds() -> Iterator[ImdsServer]:
    with ImdsServer(tags=dict(TAGS)) as server:
        yield server


def source(url: str, node: str = "ip-10-20-31-47.eu-west-1.compute.internal") -> InstanceSource:
    return InstanceSource(Options(imds=True, node_name=node, imds_endpoint=url))


def test_instance_record_from_imds(imds: ImdsServer) -> None:
    snap = source(imds.url).fetch()
    assert snap.records == {
        "ip-10-20-31-47.eu-west-1.compute.internal": {
            "name": "ip-10-20-31-47.eu-west-1.compute.internal",
            "publisher": "cloud-meta",
            "cloud": {
                "provider": "aws", "account_id": "418295730164", "region": "eu-west-1",
                "zone": "eu-west-1b", "instance_id": "i-0a7f3c9e21b4d5f68",
                "instance_type": "m6i.xlarge", "image_id": "ami-0c1c30571d2dae5c9",
                "private_ip": "10.20.31.47", "architecture": "x86_64", "tags": TAGS,
            },
        }
    }  # fmt: skip
    # one token served every request: IMDSv2, not v1
    assert [m for m, _, _ in imds.log].count("PUT") == 1
    assert all(status == 200 for _, _, status in imds.log)


def test_tags_not_allowed_is_not_an_error() -> None:
    with ImdsServer(tags=None) as server:
        cloud = (
            source(server.url).fetch().records["ip-10-20-31-47.eu-west-1.compute.internal"]["cloud"]
        )
    assert "tags" not in cloud and cloud["instance_id"] == "i-0a7f3c9e21b4d5f68"
    assert ("GET", "/latest/meta-data/tags/instance", 404) in server.log


def test_expired_token_is_fetched_again(imds: ImdsServer) -> None:
    client = ImdsClient(imds.url)
    assert client.identity_document()["instanceId"] == "i-0a7f3c9e21b4d5f68"
    imds.expire_tokens()
    assert client.identity_document()["region"] == "eu-west-1"
    statuses = [(m, s) for m, _, s in imds.log]
    assert statuses == [("PUT", 200), ("GET", 200), ("GET", 401), ("PUT", 200), ("GET", 200)]


def test_the_server_enforces_imdsv2(imds: ImdsServer) -> None:
    """The fake refuses what IMDSv2 refuses (so the tests above prove the client complies)."""
    import urllib.error
    import urllib.request

    def status(method: str, path: str, headers: dict[str, str]) -> int:
        req = urllib.request.Request(imds.url + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert status("GET", "/latest/dynamic/instance-identity/document", {}) == 401
    assert status("PUT", "/latest/api/token", {}) == 400
    assert status("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "0"}) == 400
    assert status("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60",
                                               "X-Forwarded-For": "10.0.0.9"}) == 403  # fmt: skip
    with pytest.raises(ImdsError, match="refused a session token"):
        client = ImdsClient(imds.url)
        client._opener.addheaders = [("X-Forwarded-For", "10.0.0.9")]
        client.token()


def test_ipv6_endpoint() -> None:
    try:
        server = ImdsServer(tags=None, host="::1").__enter__()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert server.url.startswith("http://[::1]:")
        snap = source(server.url, node="node-6").fetch()
        assert snap.records["node-6"]["cloud"]["zone"] == "eu-west-1b"
    finally:
        server.__exit__()


def test_unreachable_imds_names_the_hop_limit() -> None:
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ImdsError, match="hop limit is at least 2"):
        ImdsClient(f"http://127.0.0.1:{port}", timeout=1).identity_document()


def test_enricher_translation_puts_cloud_under_node(imds: ImdsServer) -> None:
    value = source(imds.url, node="node-a").fetch().records["node-a"]
    enrichment: dict[str, Any] = {"node": {"name": "node-a", "labels": {"pool": "general"},
                                           "provider_id": "aws:///eu-west-1b/i-0a7f3c9e21b4d5f68"}}  # fmt: skip
    merge_instance(enrichment, value)
    assert enrichment["node"]["labels"] == {"pool": "general"}
    assert enrichment["node"]["cloud"]["account_id"] == "418295730164"
    assert enrichment["node"]["cloud"]["tags"]["team"] == "platform"
    fresh: dict[str, Any] = {}
    merge_instance(fresh, value)
    assert fresh["node"]["name"] == "node-a" and fresh["node"]["cloud"]["provider"] == "aws"

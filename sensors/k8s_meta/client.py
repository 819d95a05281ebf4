"""A small Kubernetes API client (aiohttp): paginated LIST and streaming WATCH of one kind.

Only what the publisher needs, done the way the API server defines it:

- ``list_page``: ``GET <collection>?limit=N[&continue=T]``. Every page of one list is
  served at the same resourceVersion, given in the list's ``metadata``; an expired
  ``continue`` token answers 410.
- ``watch``: ``GET <collection>?watch=1&resourceVersion=RV&allowWatchBookmarks=true&
  timeoutSeconds=S``; a chunked stream of JSON lines ``{"type": ..., "object": ...}``
  with ``ADDED``, ``MODIFIED``, ``DELETED``, ``BOOKMARK`` and ``ERROR`` (its object a
  ``Status``). The server ends it after ``timeoutSeconds``.
- Errors: HTTP 410 (or a 410 ``Status`` in an ``ERROR`` event) is :class:`GoneError`;
  401/403 are :class:`AccessError` with a message naming the RBAC verb and resource
  missing; the others :class:`ApiError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from falconet.errors import SensorError

from .access import ClusterAccess, TokenSource

log = logging.getLogger("falconet.sensors.k8s_meta")

#: Largest watch event line accepted (the API server's own limit on an object is ~1.5 MiB
#: in etcd; a pod with huge annotations stays well under this).
MAX_EVENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource kind and where its cluster-wide collection lives."""

    kind: str  # Pod
    plural: str  # pods
    group: str = ""  # "" (core), apps, batch
    version: str = "v1"

    @property
    def path(self) -> str:
        if self.group:
            return f"/apis/{self.group}/{self.version}/{self.plural}"
        return f"/api/{self.version}/{self.plural}"

    @property
    def rbac_name(self) -> str:
        """How RBAC spells it: ``pods``, ``replicasets.apps``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


PODS = Resource("Pod", "pods")
NAMESPACES = Resource("Namespace", "namespaces")
NODES = Resource("Node", "nodes")
REPLICASETS = Resource("ReplicaSet", "replicasets", "apps")
JOBS = Resource("Job", "jobs", "batch")


class ApiError(SensorError):
    """The API server answered with an error (``status`` is the HTTP code or the Status code)."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class GoneError(ApiError):
    """410 Gone: the resourceVersion (or continue token) is older than the server keeps."""


class AccessError(ApiError):
    """401 or 403: the credentials or their RBAC permissions are not enough."""


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
    object: dict[str, Any]


def status_error(status: Any, resource: Resource, verb: str, http_status: int = 0) -> ApiError:
    """The error of a ``Status`` object (an error body, or an ``ERROR`` watch event)."""
    body = status if isinstance(status, dict) else {}
    code = int(body.get("code") or http_status or 0)
    reason = str(body.get("reason") or "")
    message = str(body.get("message") or "")
    if code == 410:
        return GoneError(
            f"{verb} {resource.rbac_name}: 410 Gone ({message or 'resource version too old'})",
            410,
            reason,
        )
    if code == 401:
        return AccessError(
            f"{verb} {resource.rbac_name}: 401 Unauthorized: the API server rejected the "
            "credentials (expired or revoked token, or a client certificate it does not trust)",
            401,
            reason,
        )
    if code == 403:
        return AccessError(
            f"{verb} {resource.rbac_name}: 403 Forbidden: the identity needs the RBAC verb "
            f"'{verb}' on '{resource.rbac_name}' cluster-wide (a ClusterRole with apiGroups "
            f"['{resource.group}'], resources ['{resource.plural}'], verbs [list, watch] bound by "
            f"a ClusterRoleBinding; see docs/sensors/k8s-meta.md). Server said: {message}",
            403,
            reason,
        )
    return ApiError(
        f"{verb} {resource.rbac_name}: {code} {reason or 'error'}: {message}".rstrip(": "),
        code,
        reason,
    )


class ApiClient:
    """An aiohttp session to one API server; use as ``async with ApiClient(...) as api``."""

    def __init__(
        self, access: ClusterAccess, *, request_timeout_s: float = 60.0, user_agent: str = ""
    ) -> None:
        self.access = access
        self.request_timeout_s = request_timeout_s
        self.user_agent = user_agent or "falconet-k8s-meta"
        self.tokens: TokenSource = access.token_source()
        self._ssl = access.ssl_context()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        connector = aiohttp.TCPConnector(ssl=self._ssl, limit=16)
        self._session = aiohttp.ClientSession(connector=connector)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        token = self.tokens.get()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _kwargs(self) -> dict[str, Any]:
        return (
            {"server_hostname": self.access.tls_server_name} if self.access.tls_server_name else {}
        )

    async def _raise_for(self, resp: aiohttp.ClientResponse, resource: Resource, verb: str) -> None:
        if resp.status == 200:
            return
        raw = await resp.content.read(64 * 1024)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = {"message": raw[:200].decode(errors="replace").strip()}
        if resp.status == 401:
            self.tokens.refresh()  # a rotated token: the next attempt uses the new one
        raise status_error(body, resource, verb, resp.status)

    async def list_page(
        self, resource: Resource, *, limit: int = 500, continue_token: str = ""
    ) -> dict[str, Any]:
        """One page of the collection (a ``<Kind>List``)."""
        assert self._session is not None, "use ApiClient as an async context manager"
        params = {"limit": str(limit)}
        if continue_token:
            params["continue"] = continue_token
        timeout = aiohttp.ClientTimeout(total=self.request_timeout_s)
        async with self._session.get(
            self.access.server + resource.path,
            params=params,
            headers=self._headers(),
            timeout=timeout,
            **self._kwargs(),
        ) as resp:
            await self._raise_for(resp, resource, "list")
            body = await resp.read()
        try:
            page = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(f"list {resource.rbac_name}: the answer is not JSON ({exc})") from None
        if not isinstance(page, dict) or not isinstance(page.get("items", []), list):
            raise ApiError(f"list {resource.rbac_name}: the answer is not a list")
        return page

    async def watch(
        self, resource: Resource, resource_version: str, *, timeout_s: int = 300
    ) -> AsyncIterator[WatchEvent]:
        """The events after ``resource_version`` until the server ends the stream."""
        assert self._session is not None, "use ApiClient as an async context manager"
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        # No total limit: the server closes after timeoutSeconds; a silent connection is
        # dropped when nothing (not even a bookmark) arrived for longer than that.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.request_timeout_s, sock_read=timeout_s + 30
        )
        async with self._session.get(
            self.access.server + resource.path,
            params=params,
            headers=self._headers(),
            timeout=timeout,
            **self._kwargs(),
        ) as resp:
            await self._raise_for(resp, resource, "watch")
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                if b"\n" not in chunk:
                    if len(buffer) > MAX_EVENT_BYTES:
                        raise ApiError(
                            f"watch {resource.rbac_name}: an event over {MAX_EVENT_BYTES} bytes"
                        )
                    continue
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield _event(line, resource)
            if buffer.strip():
                yield _event(buffer, resource)


def _event(line: bytes, resource: Resource) -> WatchEvent:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ApiError(f"watch {resource.rbac_name}: an event is not JSON ({exc})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("object"), dict):
        raise ApiError(f"watch {resource.rbac_name}: an event without an object")
    return WatchEvent(str(obj.get("type") or ""), obj["object"])


async def sleep_or_stop(delay: float, stop: asyncio.Event) -> bool:
    """Wait ``delay`` seconds; True if ``stop`` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, delay))
    except TimeoutError:
        return False
    return True

"""Docker Engine API over its unix socket (aiohttp): list, inspect, and the event stream.

Paths are unversioned (``/containers/json``), so the engine answers with its own API
version; only fields present since API 1.24 are read. Events come from ``GET /events``
filtered to containers: one JSON object per line, for as long as the connection lasts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from .records import ContainerRecord, from_docker, full_id
from .sockets import RuntimeApiError, RuntimeUnavailable, denied
from .source import Change

log = logging.getLogger("falconet.sensors.runtime_meta")

#: Container events that change what a record holds, and the one that removes it.
UPSERT_ACTIONS = frozenset({"create", "start", "rename", "update"})
DELETE_ACTIONS = frozenset({"destroy"})
_FILTERS = orjson.dumps(
    {"type": ["container"], "event": sorted(UPSERT_ACTIONS | DELETE_ACTIONS | {"die"})}
).decode()


class DockerSource:
    """A :class:`~.source.Source` for the Docker engine at ``path``."""

    runtime = "docker"

    def __init__(self, path: str, timeout_s: float = 10.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._images: dict[str, dict[str, Any]] = {}  # image id → inspect body

    async def __aenter__(self) -> DockerSource:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=self.path),
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, path: str, **kwargs: Any) -> Any:
        """The JSON body of ``GET path``; None for 404."""
        assert self._session is not None, "use the source in `async with`"
        try:
            async with self._session.get(f"http://docker{path}", **kwargs) as resp:
                if resp.status == 404:
                    return None
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeApiError(f"docker GET {path}: HTTP {resp.status}: "
                                          f"{_message(body)}")  # fmt: skip
                return orjson.loads(body) if body else None
        except PermissionError as exc:
            raise RuntimeUnavailable(denied("docker", self.path)) from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, PermissionError):
                raise RuntimeUnavailable(denied("docker", self.path)) from exc
            raise RuntimeApiError(f"docker at {self.path}: {exc.os_error or exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RuntimeApiError(f"docker GET {path}: {exc!r}") from exc
        except orjson.JSONDecodeError as exc:
            raise RuntimeApiError(f"docker GET {path}: not JSON ({exc})") from exc

    async def probe(self) -> str:
        version = await self._get("/version")
        if not isinstance(version, dict) or "ApiVersion" not in version:
            raise RuntimeApiError(f"{self.path} does not answer as the Docker Engine API")
        return f"docker {version.get('Version', '?')} (API {version['ApiVersion']})"

    async def list_ids(self) -> dict[str, str]:
        items = await self._get("/containers/json", params={"all": "1"})
        out: dict[str, str] = {}
        for item in items or ():
            cid = full_id(item.get("Id")) if isinstance(item, dict) else ""
            if cid:
                labels = item.get("Labels") or {}
                out[cid] = str(labels.get("io.kubernetes.sandbox.id") or "")
        return out

    async def _image(self, image_id: str) -> dict[str, Any] | None:
        if not image_id:
            return None
        if image_id not in self._images:
            body = await self._get(f"/images/{quote(image_id, safe=':')}/json")
            if not isinstance(body, dict):
                return None
            if len(self._images) > 1024:
                self._images.clear()
            self._images[image_id] = body
        return self._images[image_id]

    async def describe(self, full_id: str, sandbox_id: str = "") -> ContainerRecord | None:
        body = await self._get(f"/containers/{quote(full_id, safe=':')}/json")
        if not isinstance(body, dict):
            return None  # removed meanwhile
        image = await self._image(str(body.get("Image") or ""))
        try:
            return from_docker(body, image)
        except ValueError as exc:
            raise RuntimeApiError(f"docker inspect of {full_id}: {exc}") from exc

    async def changes(self) -> AsyncIterator[Change]:
        assert self._session is not None, "use the source in `async with`"
        try:
            resp = await self._session.get(
                "http://docker/events",
                params={"filters": _FILTERS},
                timeout=aiohttp.ClientTimeout(total=None, connect=self.timeout_s, sock_read=None),
            )
        except aiohttp.ClientConnectorError as exc:
            raise RuntimeApiError(f"docker events at {self.path}: {exc.os_error or exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RuntimeApiError(f"docker events: {exc!r}") from exc
        if resp.status != 200:
            body = await resp.read()
            resp.release()
            raise RuntimeApiError(f"docker GET /events: HTTP {resp.status}: {_message(body)}")
        return _events(resp)


async def _events(resp: aiohttp.ClientResponse) -> AsyncIterator[Change]:
    """The changes of an open ``/events`` response, until the engine closes it."""
    try:
        async for line in resp.content:
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.warning("runtime_meta.docker_event_unreadable line=%r", line[:200])
                continue
            change = docker_change(event)
            if change is not None:
                yield change
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RuntimeApiError(f"docker event stream broke: {exc!r}") from exc
    finally:
        resp.release()
    raise RuntimeApiError("docker closed the event stream")


def docker_change(event: Any) -> Change | None:
    """A :class:`Change` of one ``/events`` object (None: not about a container)."""
    if not isinstance(event, dict) or (event.get("Type") or "container") != "container":
        return None
    action = str(event.get("Action") or event.get("status") or "")
    cid = full_id((event.get("Actor") or {}).get("ID") or event.get("id"))
    if not cid:
        return None
    if action in DELETE_ACTIONS:
        return Change("delete", cid, action)
    if action in UPSERT_ACTIONS:
        return Change("upsert", cid, action)
    return Change("other", cid, action)


def _message(body: bytes) -> str:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace")
    return str(value.get("message") if isinstance(value, dict) else value)[:200]

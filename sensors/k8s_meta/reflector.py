"""List+watch of one kind, with the API server's resourceVersion rules.

A :class:`Reflector` keeps, for one kind, the set of objects it knows (by uid) and the
resourceVersion it is up to, and tells a :class:`Handler` what changes:

1. LIST, page by page (``limit``/``continue``); the list's resourceVersion is where the
   watch starts. Objects seen are upserted as the pages arrive; once the last page is in,
   the known objects the list no longer holds are deleted (they went away while we were
   not watching: their tombstones are published).
2. WATCH from that resourceVersion with bookmarks. ``ADDED``/``MODIFIED``/``DELETED``
   move the resourceVersion to the object's; a ``BOOKMARK`` only moves it. When the server
   ends the stream (``timeoutSeconds``) or the connection drops, the watch starts again
   from the last resourceVersion: no relist.
3. Only a 410 Gone (HTTP 410, or an ``ERROR`` event carrying a 410 ``Status``) relists:
   the resourceVersion is older than the server keeps, so the events in between are
   lost. Other errors retry the same step after a backoff with jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from .client import (
    AccessError,
    ApiClient,
    ApiError,
    GoneError,
    Resource,
    sleep_or_stop,
    status_error,
)
from .metrics import K8sMetaStats

log = logging.getLogger("falconet.sensors.k8s_meta")


class Handler(Protocol):
    """What a reflector reports to (the publisher)."""

    def upsert(self, resource: Resource, obj: Mapping[str, Any]) -> None: ...

    def delete(self, resource: Resource, obj: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class ReflectorOptions:
    page_size: int = 500
    watch_timeout_s: int = 300  # each watch asks for between this and twice this
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


class Backoff:
    """Exponential backoff with full jitter: a random delay in [d/2, d], d doubling up to
    the cap; :meth:`reset` after a success."""

    def __init__(self, initial: float, cap: float) -> None:
        self.initial = max(0.001, initial)
        self.cap = max(self.initial, cap)
        self._next = self.initial

    def reset(self) -> None:
        self._next = self.initial

    @property
    def raised(self) -> bool:
        """Whether a failure raised the delay since the last reset."""
        return self._next != self.initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * 2)
        return random.uniform(delay / 2, delay)


def slim(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a reflector remembers of an object: enough for its handler to delete it."""
    meta = obj.get("metadata") or {}
    return {
        "metadata": {
            k: meta[k] for k in ("uid", "name", "namespace", "ownerReferences") if k in meta
        }
    }


def _uid(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace') or ''}/{meta.get('name') or ''}")


class Reflector:
    """List+watch of one resource kind for the life of the sensor."""

    def __init__(
        self,
        api: ApiClient,
        resource: Resource,
        handler: Handler,
        stats: K8sMetaStats,
        options: ReflectorOptions | None = None,
    ) -> None:
        self.api = api
        self.resource = resource
        self.handler = handler
        self.stats = stats
        self.options = options or ReflectorOptions()
        self.known: dict[str, dict[str, Any]] = {}  # uid → slim object
        self.resource_version = ""
        #: Set once the first list is complete (the handler has every object).
        self.synced = asyncio.Event()
        self._backoff = Backoff(self.options.backoff_initial_s, self.options.backoff_max_s)
        self._last_error = ""

    @property
    def kind(self) -> str:
        return self.resource.kind

    async def run(self, stop: asyncio.Event) -> None:
        """List, then watch, until ``stop`` is set."""
        while not stop.is_set():
            try:
                if not self.resource_version:
                    await self._list()
                    self._backoff.reset()
                await self._watch()
            except GoneError as exc:
                # The events since our resourceVersion are lost: relist (at once, as the
                # API server's own clients do).
                self.stats.count(self.stats.gone, self.kind)
                log.info("k8s_meta.gone kind=%s resource_version=%s error=%s",
                         self.kind, self.resource_version, exc)  # fmt: skip
                self.resource_version = ""
            except AccessError as exc:
                await self._failed("access", exc, stop, level=logging.ERROR)
            except ApiError as exc:
                await self._failed("api", exc, stop)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                await self._failed("network", exc, stop)

    async def _failed(
        self, what: str, exc: BaseException, stop: asyncio.Event, level: int = logging.WARNING
    ) -> None:
        self.stats.error(self.kind, what)
        message = str(exc) or type(exc).__name__
        delay = self._backoff.next()
        if message != self._last_error or level >= logging.ERROR:
            log.log(
                level,
                "k8s_meta.%s_error kind=%s retry_in=%.1fs error=%s",
                what,
                self.kind,
                delay,
                message,
            )
        self._last_error = message
        await sleep_or_stop(delay, stop)

    async def _list(self) -> None:
        """A full list; upserts what it holds and deletes the known objects it lacks."""
        first = not self.synced.is_set()
        self.stats.count(self.stats.lists, self.kind)
        if not first:
            self.stats.count(self.stats.relists, self.kind)
        seen: set[str] = set()
        token = ""
        version = ""
        while True:
            page = await self.api.list_page(
                self.resource, limit=self.options.page_size, continue_token=token
            )
            meta = page.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            for item in page.get("items") or []:
                if not isinstance(item, dict):
                    continue
                uid = _uid(item)
                seen.add(uid)
                self.known[uid] = slim(item)
                self._tell("upsert", item)
            token = str(meta.get("continue") or "")
            if not token:
                break
        if not version:
            raise ApiError(f"list {self.resource.rbac_name}: the answer has no resourceVersion")
        gone = [uid for uid in self.known if uid not in seen]
        for uid in gone:
            self._tell("delete", self.known.pop(uid))
        self.resource_version = version
        self.stats.objects[self.kind] = len(self.known)
        log.info("k8s_meta.listed kind=%s objects=%d deleted_while_away=%d resource_version=%s relist=%s",
                 self.kind, len(seen), len(gone), version, not first)  # fmt: skip
        self.synced.set()

    async def _watch(self) -> None:
        """One watch from the current resourceVersion, until the server ends it."""
        timeout = random.randint(self.options.watch_timeout_s, 2 * self.options.watch_timeout_s)
        started = time.monotonic()
        received = 0
        stream = self.api.watch(self.resource, self.resource_version, timeout_s=timeout)
        async with contextlib.aclosing(stream):  # an ERROR event ends it: release the connection
            async for event in stream:
                received += 1
                self._apply(event.type, event.object)
                if self._backoff.raised:
                    self._backoff.reset()
                    self._last_error = ""
        self.stats.count(self.stats.watch_restarts, self.kind)
        log.debug("k8s_meta.watch_ended kind=%s events=%d resource_version=%s",
                  self.kind, received, self.resource_version)  # fmt: skip
        if not received and time.monotonic() - started < 1.0:
            # A server that ends watches at once would otherwise be asked in a tight loop.
            await asyncio.sleep(self._backoff.next())

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if kind == "BOOKMARK":
            self.stats.count(self.stats.bookmarks, self.kind)
            if version:
                self.resource_version = version
            return
        if kind == "ERROR":
            raise status_error(obj, self.resource, "watch")
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            log.warning("k8s_meta.unknown_event kind=%s type=%s", self.kind, kind)
            return
        self.stats.count(self.stats.events, self.kind)
        uid = _uid(obj)
        if kind == "DELETED":
            self.known.pop(uid, None)
            self._tell("delete", obj)
        else:
            self.known[uid] = slim(obj)
            self._tell("upsert", obj)
        self.stats.objects[self.kind] = len(self.known)
        if version:
            self.resource_version = version

    def _tell(self, what: str, obj: dict[str, Any]) -> None:
        """Hand one object to the handler; an object it cannot use is logged and skipped,
        never a reason to stop watching the others."""
        try:
            if what == "delete":
                self.handler.delete(self.resource, obj)
            else:
                self.handler.upsert(self.resource, obj)
        except Exception as exc:  # noqa: BLE001 - one bad object must not stop the watch
            self.stats.error(self.kind, "object")
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            log.error("k8s_meta.object_error kind=%s name=%s/%s action=%s error=%r",
                      self.kind, meta.get("namespace") or "", meta.get("name") or "", what, exc)  # fmt: skip

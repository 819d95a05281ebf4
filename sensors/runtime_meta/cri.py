"""containerd and CRI-O through the CRI ``runtime.v1.RuntimeService`` (gRPC on a unix socket).

gRPC comes from ``grpcio`` (imported when a CRI runtime is used, so the rest of falconet
works without it); the messages are encoded and decoded by :mod:`.protowire` from the
tables of :mod:`.cri_messages`, so no generated code or protobuf runtime is needed.

Container events come from ``GetContainerEvents`` (containerd 1.7+, CRI-O 1.26+ with
evented PLEG); a runtime that answers UNIMPLEMENTED (containerd 1.6) is polled instead.
Pod sandboxes are described once per id and cached until the next full resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from falconet.errors import SensorError

from . import cri_messages as M
from .protowire import DecodeError, decode, encode
from .records import ContainerRecord, from_cri, full_id
from .sockets import RuntimeApiError, RuntimeUnavailable, denied
from .source import Change

log = logging.getLogger("falconet.sensors.runtime_meta")

#: How long an opened event stream is watched for an immediate refusal (seconds).
REFUSAL_WAIT_S = 0.3

#: Largest message accepted (a node with thousands of containers lists a few MiB).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def _grpc() -> Any:
    try:
        import grpc
    except ImportError:  # pragma: no cover - depends on the install
        raise SensorError(
            "the CRI runtimes (containerd, CRI-O) need the grpcio package: pip install grpcio"
        ) from None
    return grpc


#: Sockets whose runtime answered UNIMPLEMENTED to GetContainerEvents: polled from then on
#: (until the publisher restarts; a runtime upgrade restarts the DaemonSet's pods anyway).
_NO_EVENTS: set[str] = set()


class CriSource:
    """A :class:`~.source.Source` for a CRI runtime (``containerd`` or ``cri-o``) at ``path``."""

    def __init__(self, runtime: str, path: str, timeout_s: float = 10.0) -> None:
        self.runtime = runtime
        self.path = path
        self.timeout_s = timeout_s
        self._grpc = _grpc()
        self._channel: Any = None
        self._calls: dict[str, Any] = {}
        self._sandboxes: dict[str, dict[str, Any] | None] = {}
        #: Whether the runtime streams container events (None: not asked yet).
        self.has_events: bool | None = None

    async def __aenter__(self) -> CriSource:
        grpc = self._grpc
        self._channel = grpc.aio.insecure_channel(
            f"unix://{self.path}",
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.enable_retries", 0),
            ],  # fmt: skip
        )
        for method, (req, resp, streaming) in M.METHODS.items():
            factory = self._channel.unary_stream if streaming else self._channel.unary_unary
            self._calls[method] = factory(
                f"/{M.SERVICE}/{method}",
                request_serializer=lambda value, table=req: encode(table, value),
                response_deserializer=lambda data, table=resp: decode(table, data),
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    def _error(self, method: str, exc: Exception) -> Exception:
        grpc = self._grpc
        if isinstance(exc, DecodeError):
            return RuntimeApiError(f"{self.runtime} {method}: unreadable answer ({exc})")
        code = exc.code() if isinstance(exc, grpc.aio.AioRpcError) else None
        details = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
        if code == grpc.StatusCode.UNAVAILABLE and "ermission denied" in (details or ""):
            return RuntimeUnavailable(denied(self.runtime, self.path))
        if code == grpc.StatusCode.UNIMPLEMENTED and method == "Version":
            return RuntimeUnavailable(
                f"{self.path} does not serve the CRI runtime.v1 API ({details}): is the CRI "
                f"plugin of containerd disabled, or is this Docker's own containerd?"
            )
        name = code.name if code is not None else type(exc).__name__
        return RuntimeApiError(f"{self.runtime} {method} at {self.path}: {name}: {details}")

    async def _call(self, method: str, request: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._calls[method](request, timeout=self.timeout_s)
        except (self._grpc.aio.AioRpcError, DecodeError) as exc:
            raise self._error(method, exc) from exc

    def _not_found(self, exc: BaseException) -> bool:
        cause = exc.__cause__
        grpc = self._grpc
        return isinstance(cause, grpc.aio.AioRpcError) and cause.code() == grpc.StatusCode.NOT_FOUND

    async def probe(self) -> str:
        v = await self._call("Version", {"version": "v1"})
        return f"{v['runtime_name'] or self.runtime} {v['runtime_version']} (CRI {v['runtime_api_version']})"

    async def list_ids(self) -> dict[str, str]:
        answer = await self._call("ListContainers", {})
        out = {}
        for c in answer["containers"]:
            cid = full_id(c.get("id"))
            if cid:
                out[cid] = str(c.get("pod_sandbox_id") or "")
        return out

    async def sandboxes(self) -> list[dict[str, Any]]:
        """The pod sandboxes (``ListPodSandbox``)."""
        return (await self._call("ListPodSandbox", {}))["items"]

    def forget_sandboxes(self) -> None:
        """Describe every sandbox again (each full resync)."""
        self._sandboxes.clear()

    async def _sandbox(self, sandbox_id: str) -> dict[str, Any] | None:
        if not sandbox_id:
            return None
        if sandbox_id not in self._sandboxes:
            try:
                answer = await self._call(
                    "PodSandboxStatus", {"pod_sandbox_id": sandbox_id, "verbose": True}
                )
            except RuntimeApiError as exc:
                if not self._not_found(exc):
                    raise
                answer = None
            self._sandboxes[sandbox_id] = answer
        return self._sandboxes[sandbox_id]

    async def describe(self, full_id: str, sandbox_id: str = "") -> ContainerRecord | None:
        try:
            answer = await self._call("ContainerStatus", {"container_id": full_id, "verbose": True})
        except RuntimeApiError as exc:
            if self._not_found(exc):
                return None
            raise
        if not answer.get("status"):
            return None
        if not sandbox_id:
            from .records import verbose_info

            sandbox_id = str(verbose_info(answer.get("info")).get("sandboxID") or "")
        sandbox = await self._sandbox(sandbox_id)
        try:
            return from_cri(self.runtime, answer, sandbox, sandbox_id)
        except ValueError as exc:
            raise RuntimeApiError(f"{self.runtime} ContainerStatus of {full_id}: {exc}") from exc

    async def changes(self) -> AsyncIterator[Change] | None:
        if self.has_events is False:
            return None
        if self.path in _NO_EVENTS:
            self.has_events = False
            return None
        call = self._calls["GetContainerEvents"]({})  # no deadline: the stream lasts
        grpc = self._grpc
        try:
            await call.initial_metadata()  # the stream is open (or refused) once this returns
            # a refusal (UNIMPLEMENTED) comes as trailers only, its status just after
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(call.code()), REFUSAL_WAIT_S)
            refused = call.done() and await call.code() != grpc.StatusCode.OK
        except grpc.aio.AioRpcError as exc:
            code, details = exc.code(), exc.details()
        else:
            if not refused:
                self.has_events = True
                return self._events(call)
            code, details = await call.code(), await call.details()
        if code == grpc.StatusCode.UNIMPLEMENTED:
            self.has_events = False
            _NO_EVENTS.add(self.path)
            log.info("runtime_meta.cri_no_events runtime=%s: polling the container list",
                     self.runtime)  # fmt: skip
            return None
        raise RuntimeApiError(f"{self.runtime} GetContainerEvents at {self.path}: "
                              f"{code.name}: {details}")  # fmt: skip

    async def _events(self, call: Any) -> AsyncIterator[Change]:
        grpc = self._grpc
        try:
            async for event in call:
                change = cri_change(event)
                if change is not None:
                    # a sandbox's own events carry its id: describe it afresh next time
                    self._sandboxes.pop(change.full_id, None)
                    yield change
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                _NO_EVENTS.add(self.path)
            raise self._error("GetContainerEvents", exc) from exc
        except DecodeError as exc:
            raise self._error("GetContainerEvents", exc) from exc
        finally:
            call.cancel()
        raise RuntimeApiError(f"{self.runtime} ended the container event stream")


_EVENT_KINDS = {
    M.CREATED_EVENT: ("upsert", "created"),
    M.STARTED_EVENT: ("upsert", "started"),
    M.STOPPED_EVENT: ("other", "stopped"),
    M.DELETED_EVENT: ("delete", "deleted"),
}


def cri_change(event: dict[str, Any]) -> Change | None:
    """A :class:`Change` of one ``ContainerEventResponse``."""
    cid = full_id(event.get("container_id"))
    if not cid:
        return None
    kind, action = _EVENT_KINDS.get(event.get("container_event_type", -1), ("other", "unknown"))
    return Change(kind, cid, action)

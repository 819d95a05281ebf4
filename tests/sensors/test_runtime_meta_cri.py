"""The CRI path (containerd, CRI-O) against a CRI gRPC server on a unix socket.

:class:`FakeCri` serves ``runtime.v1.RuntimeService`` with grpcio as the runtimes do:
``Version``, ``ListContainers``, ``ContainerStatus`` and ``PodSandboxStatus`` (verbose,
NOT_FOUND once removed), ``ListPodSandbox``, and ``GetContainerEvents`` as a server stream
(or UNIMPLEMENTED, as containerd 1.6 answers, so the publisher polls). Its answers are the
recorded responses of tests/fixtures/runtime_meta, encoded to protobuf. A real containerd
is exercised in tests/integration/test_runtime_meta_publisher.py when it can run.
"""

from __future__ import annotations

import asyncio
import copy
import queue
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet.sensors.runtime_meta import cri_messages as M
from falconet.sensors.runtime_meta.metrics import RuntimeMetaStats
from falconet.sensors.runtime_meta.protowire import decode, encode
from falconet.sensors.runtime_meta.sync import Syncer
from falconet.sensors.runtime_meta.table import ContainerTable
from tests.conftest import FIXTURES

grpc = pytest.importorskip("grpc", reason="the CRI client needs grpcio")

DIR = FIXTURES / "runtime_meta"


def fixture(name: str) -> Any:
    return orjson.loads((DIR / name).read_bytes())


class FakeCri:
    """A CRI RuntimeService on a unix socket (grpcio server, own threads)."""

    def __init__(
        self, path: str | Path, *, runtime: str = "containerd", events: bool = True
    ) -> None:
        self.path = str(path)
        self.runtime = runtime
        self.events = events
        self.containers: dict[str, dict[str, Any]] = {}  # id → ContainerStatusResponse
        self.sandboxes: dict[str, dict[str, Any]] = {}  # id → PodSandboxStatusResponse
        self.calls: list[str] = []
        self._streams: list[queue.Queue[dict[str, Any] | None]] = []
        self._lock = threading.Lock()
        self.streams_opened = 0
        self._server: Any = None

    def start(self) -> FakeCri:
        handlers = {}
        for method, (req, resp, streaming) in M.METHODS.items():
            fn = getattr(self, f"_{method}")
            make = (
                grpc.unary_stream_rpc_method_handler
                if streaming
                else grpc.unary_unary_rpc_method_handler
            )
            handlers[method] = make(
                fn,
                request_deserializer=lambda data, t=req: decode(t, data),
                response_serializer=lambda value, t=resp: encode(t, value),
            )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(M.SERVICE, handlers),)
        )
        self._server.add_insecure_port(f"unix://{self.path}")
        self._server.start()
        return self

    def close(self) -> None:
        self.break_streams()
        self._server.stop(0.5).wait(5)

    # -- what a test does to the runtime --------------------------------------------------------
    def add(self, status: dict[str, Any], sandbox: dict[str, Any] | None = None) -> None:
        with self._lock:
            if sandbox is not None:
                self.sandboxes[sandbox["status"]["id"]] = sandbox
            self.containers[status["status"]["id"]] = status
        cid = status["status"]["id"]
        self._broadcast({"container_id": cid, "container_event_type": M.CREATED_EVENT})
        self._broadcast({"container_id": cid, "container_event_type": M.STARTED_EVENT})

    def remove(self, cid: str, *, event: bool = True) -> None:
        with self._lock:
            del self.containers[cid]
        if event:
            self._broadcast({"container_id": cid, "container_event_type": M.STOPPED_EVENT})
            self._broadcast({"container_id": cid, "container_event_type": M.DELETED_EVENT})

    def break_streams(self) -> None:
        for q in list(self._streams):
            q.put(None)

    def _broadcast(self, event: dict[str, Any]) -> None:
        for q in list(self._streams):
            q.put(event)

    # -- RuntimeService ------------------------------------------------------------------------
    def _Version(self, request: dict[str, Any], context: Any) -> dict[str, Any]:
        name = {"containerd": "containerd", "cri-o": "cri-o"}[self.runtime]
        return {"version": "0.1.0", "runtime_name": name, "runtime_version": "v1.7.13",
                "runtime_api_version": "v1"}  # fmt: skip

    def _ListContainers(self, request: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls.append("ListContainers")
        with self._lock:
            items = list(self.containers.values())
        out = []
        for r in items:
            s = r["status"]
            sandbox = orjson.loads(r["info"]["info"])["sandboxID"] if r.get("info") else ""
            out.append({"id": s["id"], "pod_sandbox_id": sandbox, "metadata": s["metadata"],
                        "image": s["image"], "image_ref": s["image_ref"], "state": s["state"],
                        "created_at": s["created_at"], "labels": s["labels"],
                        "annotations": s["annotations"]})  # fmt: skip
        return {"containers": out}

    def _ContainerStatus(self, request: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls.append(f"ContainerStatus verbose={request['verbose']}")
        with self._lock:
            found = self.containers.get(request["container_id"])
        if found is None:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f'an error occurred when try to find container "{request["container_id"]}": not found')  # fmt: skip
        return found if request["verbose"] else {"status": found["status"]}

    def _ListPodSandbox(self, request: dict[str, Any], context: Any) -> dict[str, Any]:
        with self._lock:
            items = list(self.sandboxes.values())
        return {"items": [{"id": s["status"]["id"], "metadata": s["status"]["metadata"],
                           "state": s["status"]["state"], "labels": s["status"]["labels"]}
                          for s in items]}  # fmt: skip

    def _PodSandboxStatus(self, request: dict[str, Any], context: Any) -> dict[str, Any]:
        self.calls.append("PodSandboxStatus")
        with self._lock:
            found = self.sandboxes.get(request["pod_sandbox_id"])
        if found is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "pod sandbox not found")
        return found

    def _GetContainerEvents(
        self, request: dict[str, Any], context: Any
    ) -> Iterator[dict[str, Any]]:
        if not self.events:
            context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "method GetContainerEvents not implemented"
            )
        q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._streams.append(q)
        self.streams_opened += 1
        context.send_initial_metadata(())  # the stream is open before any event
        try:
            while context.is_active():
                try:
                    item = q.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is None:
                    return
                yield item
        finally:
            self._streams.remove(q)


def variant(name: str, sandbox_name: str, suffix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A container fixture and its sandbox under new ids (``suffix`` starts both)."""
    status, sandbox = copy.deepcopy(fixture(name)), copy.deepcopy(fixture(sandbox_name))
    cid = suffix.ljust(12, "c") + status["status"]["id"][12:]
    sid = suffix.ljust(12, "5") + sandbox["status"]["id"][12:]
    status["status"]["id"] = cid
    sandbox["status"]["id"] = sid
    if status.get("info"):
        info = orjson.loads(status["info"]["info"])
        info["sandboxID"] = sid
        status["info"]["info"] = orjson.dumps(info).decode()
    return status, sandbox


class Recorder:
    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []

    def __call__(self, key: str, value: bytes | None, on_failure: Any) -> None:
        self.log.append((key, None if value is None else orjson.loads(value)))


async def _until(check: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture()
def cri(tmp_path: Path) -> Iterator[FakeCri]:
    fake = FakeCri(tmp_path / "containerd.sock").start()
    yield fake
    fake.close()


def _syncer(fake: FakeCri, table: ContainerTable, stats: RuntimeMetaStats) -> Syncer:
    from falconet.sensors.runtime_meta.cri import CriSource

    return Syncer(lambda: CriSource(fake.runtime, fake.path, 5.0), table, stats, poll_s=1,
                  resync_s=0, backoff_initial_s=0.05, backoff_max_s=0.1)  # fmt: skip


def test_cri_events(cri: FakeCri) -> None:
    """Started → record with pod and sandbox; deleted → tombstone; a broken stream resyncs."""
    status, sandbox = variant("cri_containerd_status.json", "cri_containerd_sandbox.json", "a1")
    cri.add(status, sandbox)
    sink, stats = Recorder(), RuntimeMetaStats()
    table = ContainerTable(sink, "node-b", stats)

    async def main() -> None:
        syncer = _syncer(cri, table, stats)
        stop = asyncio.Event()
        task = asyncio.create_task(syncer.run(stop))
        await _until(syncer.synced.is_set)
        assert syncer.mode == "events"
        key, value = sink.log[0]
        assert key == status["status"]["id"][:12]
        assert (value["type"], value["namespace"], value["privileged"]) == (
            "containerd",
            "shop",
            True,
        )
        assert value["sandbox_id"] == sandbox["status"]["id"]

        other, other_sb = variant("cri_crio_status.json", "cri_crio_sandbox.json", "b2")
        cri.add(other, other_sb)
        await _until(lambda: any(k == other["status"]["id"][:12] for k, _ in sink.log))
        cri.remove(other["status"]["id"])
        await _until(lambda: (other["status"]["id"][:12], None) in sink.log)

        opened = cri.streams_opened
        cri.break_streams()
        await _until(lambda: cri.streams_opened > opened)
        cri.remove(status["status"]["id"], event=False)
        cri.break_streams()
        await _until(lambda: (status["status"]["id"][:12], None) in sink.log)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert "ContainerStatus verbose=True" in cri.calls
    assert stats.events.get("started") == 1 and stats.events.get("deleted") == 1
    assert stats.get("tombstones") == 2


def test_cri_polling_without_events(tmp_path: Path) -> None:
    """A runtime without GetContainerEvents (containerd 1.6) is polled: new ids described,
    gone ids tombstoned, known ids not described again."""
    fake = FakeCri(tmp_path / "crio.sock", runtime="cri-o", events=False).start()
    try:
        status, sandbox = variant("cri_crio_status.json", "cri_crio_sandbox.json", "c3")
        fake.add(status, sandbox)
        sink, stats = Recorder(), RuntimeMetaStats()
        table = ContainerTable(sink, "node-c", stats)

        async def main() -> None:
            syncer = _syncer(fake, table, stats)
            stop = asyncio.Event()
            task = asyncio.create_task(syncer.run(stop))
            await _until(syncer.synced.is_set)
            assert syncer.mode == "polling"
            described = fake.calls.count("ContainerStatus verbose=True")
            second, second_sb = variant(
                "cri_containerd_status.json", "cri_containerd_sandbox.json", "d4"
            )
            fake.add(second, second_sb)
            await _until(lambda: any(k == second["status"]["id"][:12] for k, _ in sink.log))
            fake.remove(status["status"]["id"])
            await _until(lambda: (status["status"]["id"][:12], None) in sink.log)
            assert fake.calls.count("ContainerStatus verbose=True") == described + 1
            stop.set()
            await asyncio.wait_for(task, 5)

        asyncio.run(main())
    finally:
        fake.close()
    assert sink.log[0][1]["type"] == "cri-o" and sink.log[0][1]["host_network"] is True


def test_cri_not_a_cri_socket(tmp_path: Path) -> None:
    """A socket that answers gRPC without the CRI service (Docker's own containerd) stops the
    publisher at start, saying so."""
    from falconet.sensors.runtime_meta.sensor import RuntimeMetaSensor
    from falconet.sensors.runtime_meta.settings import RuntimeMetaSettings
    from falconet.sensors.runtime_meta.sockets import RuntimeUnavailable

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    path = str(tmp_path / "moby.sock")
    server.add_insecure_port(f"unix://{path}")
    server.start()
    try:
        settings = RuntimeMetaSettings.load(env={}, overrides={
            "runtime_meta.runtime": "containerd", "runtime_meta.socket": path,
        })  # fmt: skip
        with pytest.raises(RuntimeUnavailable, match="does not serve the CRI runtime.v1 API"):
            RuntimeMetaSensor(settings).setup()
    finally:
        server.stop(0).wait(5)

"""The Docker path against a loopback Docker Engine API on a unix socket.

:class:`FakeDocker` answers what the publisher asks the engine as dockerd does: ``GET
/version``, ``/containers/json?all=1``, ``/containers/{id}/json`` (404 with a message once
removed), ``/images/{id}/json``, and ``/events`` as a long-lived stream of JSON lines with
the headers sent at once. No Docker engine runs on our machines; the bodies are the
engine's (tests/fixtures/runtime_meta). The integration test reuses the fake.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from falconet.sensors.runtime_meta.docker import DockerSource
from falconet.sensors.runtime_meta.metrics import RuntimeMetaStats
from falconet.sensors.runtime_meta.sync import Syncer
from falconet.sensors.runtime_meta.table import ContainerTable
from tests.conftest import FIXTURES

DIR = FIXTURES / "runtime_meta"


def fixture(name: str) -> Any:
    return orjson.loads((DIR / name).read_bytes())


class FakeDocker:
    """A Docker Engine API on a unix socket, served from its own thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.containers: dict[str, dict[str, Any]] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self._streams: list[asyncio.Queue[bytes | None]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.streams_opened = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeDocker:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/version", self._version)
        app.router.add_get("/containers/json", self._list)
        app.router.add_get("/containers/{id}/json", self._inspect)
        app.router.add_get("/images/{id}/json", self._image)
        app.router.add_get("/events", self._events)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.UnixSite(self._runner, self.path).start()

    def close(self) -> None:
        async def stop() -> None:
            self._end_streams()
            assert self._runner is not None
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, fn: Any, *args: Any) -> None:
        self._loop.call_soon_threadsafe(fn, *args)

    # -- what a test does to the engine --------------------------------------------------------
    def add(self, inspect: dict[str, Any], image: dict[str, Any] | None = None,
            events: tuple[str, ...] = ("create", "start")) -> None:  # fmt: skip
        def do() -> None:
            self.containers[inspect["Id"]] = inspect
            if image is not None:
                self.images[image["Id"]] = image
            for action in events:
                self._broadcast(inspect, action)

        self._call(do)

    def remove(self, full_id: str, events: tuple[str, ...] = ("die", "destroy")) -> None:
        def do() -> None:
            inspect = self.containers.pop(full_id)
            for action in events:
                self._broadcast(inspect, action)

        self._call(do)

    def break_streams(self) -> None:
        """Close every open event stream (as a restarting dockerd does)."""
        self._call(self._end_streams)

    def _end_streams(self) -> None:
        for q in self._streams:
            q.put_nowait(None)

    def _broadcast(self, inspect: dict[str, Any], action: str) -> None:
        cid = inspect["Id"]
        attrs = {"image": inspect["Config"]["Image"], "name": inspect["Name"].lstrip("/")}
        event = {"status": action, "id": cid, "from": attrs["image"], "Type": "container",
                 "Action": action, "Actor": {"ID": cid, "Attributes": attrs}, "scope": "local",
                 "time": 1714637691, "timeNano": 1714637691000000000}  # fmt: skip
        line = orjson.dumps(event) + b"\n"
        for q in self._streams:
            q.put_nowait(line)

    # -- handlers ------------------------------------------------------------------------------
    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"Version": "24.0.7", "ApiVersion": "1.43",
                                  "MinAPIVersion": "1.12", "Os": "linux"})  # fmt: skip

    async def _list(self, request: web.Request) -> web.Response:
        self.requests.append(f"list all={request.query.get('all', '')}")
        items = [{"Id": c["Id"], "Names": [c["Name"]], "Image": c["Config"]["Image"],
                  "ImageID": c["Image"], "Labels": c["Config"]["Labels"],
                  "State": c["State"]["Status"]} for c in self.containers.values()]  # fmt: skip
        return web.json_response(items)

    async def _inspect(self, request: web.Request) -> web.Response:
        cid = request.match_info["id"]
        self.requests.append(f"inspect {cid[:12]}")
        found = [c for k, c in self.containers.items() if k.startswith(cid)]
        if not found:
            return web.json_response({"message": f"No such container: {cid}"}, status=404)
        return web.json_response(found[0])

    async def _image(self, request: web.Request) -> web.Response:
        image = self.images.get(request.match_info["id"])
        if image is None:
            return web.json_response({"message": "No such image"}, status=404)
        return web.json_response(image)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        filters = orjson.loads(request.query.get("filters", "{}"))
        assert filters.get("type") == ["container"], filters
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)  # dockerd flushes the headers before any event
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._streams.append(queue)
        self.streams_opened += 1
        try:
            while (line := await queue.get()) is not None:
                await resp.write(line)
        finally:
            self._streams.remove(queue)
        return resp


def web_container(suffix: str = "") -> dict[str, Any]:
    """The nginx fixture under another id/name (``suffix`` replaces the id's end)."""
    body = copy.deepcopy(fixture("docker_inspect_web.json"))
    if suffix:
        body["Id"] = suffix.rjust(12, "a") + body["Id"][12:]
        body["Name"] = f"/web-{suffix}"
    return body


@pytest.fixture()
def docker(tmp_path: Path) -> Iterator[FakeDocker]:
    fake = FakeDocker(tmp_path / "docker.sock").start()
    yield fake
    fake.close()


class Recorder:
    """A table sink keeping what would be produced."""

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


def test_docker_events_resync_and_reconnect(docker: FakeDocker) -> None:
    """Listed at start, kept up by events (start → record, destroy → tombstone), a removal
    while the stream was down found by the resync after reconnecting."""
    first = web_container("111")
    docker.add(first, fixture("docker_image_nginx.json"))
    sink = Recorder()
    stats = RuntimeMetaStats()
    table = ContainerTable(sink, "node-a", stats)
    # a record of this node left from a previous run, for a container gone since
    table.load({"deadbeef0000": orjson.dumps({"publisher": "runtime-meta", "node": "node-a"}),
                "cafe00000000": orjson.dumps({"publisher": "k8s-meta", "node": "node-a"})})  # fmt: skip

    async def main() -> None:
        syncer = Syncer(lambda: DockerSource(docker.path, 5.0), table, stats,
                        resync_s=0, backoff_initial_s=0.05, backoff_max_s=0.1)  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(syncer.run(stop))
        await _until(syncer.synced.is_set)
        assert syncer.mode == "events"
        assert sink.log[0][0] == first["Id"][:12] and sink.log[0][1]["name"] == "web-111"
        assert ("deadbeef0000", None) in sink.log  # tombstoned: not on the node any more
        assert all(k != "cafe00000000" for k, _ in sink.log)  # another publisher's record

        second = web_container("222")
        docker.add(second)
        await _until(lambda: any(k == second["Id"][:12] for k, _ in sink.log))
        published = len(sink.log)
        docker.remove(second["Id"])
        await _until(lambda: (second["Id"][:12], None) in sink.log)
        assert len(sink.log) == published + 1  # create+start published once (no change)

        opened = docker.streams_opened
        docker.break_streams()
        await _until(lambda: docker.streams_opened > opened)
        docker.remove(first["Id"], events=())  # removed with no event: found by a resync
        docker.break_streams()
        await _until(lambda: (first["Id"][:12], None) in sink.log)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert stats.get("reconnects") >= 2 and stats.get("tombstones") == 3
    assert stats.events.get("destroy") == 1 and stats.containers == 0


def test_docker_missing_socket(tmp_path: Path) -> None:
    from falconet.sensors.runtime_meta.sensor import RuntimeMetaSensor
    from falconet.sensors.runtime_meta.settings import RuntimeMetaSettings
    from falconet.sensors.runtime_meta.sockets import RuntimeUnavailable

    path = str(tmp_path / "none.sock")
    sensor = RuntimeMetaSensor(
        RuntimeMetaSettings.load(
            env={}, overrides={"runtime_meta.runtime": "docker", "runtime_meta.socket": path}
        )  # fmt: skip
    )
    with pytest.raises(RuntimeUnavailable, match=f"docker socket {path} does not exist"):
        sensor.setup()


def test_permission_message_names_group(tmp_path: Path) -> None:
    from falconet.sensors.runtime_meta.sockets import denied

    text = denied("docker", "/var/run/docker.sock", 0)
    assert "permission denied on the docker socket /var/run/docker.sock" in text
    assert "member of group root (gid 0)" in text
    assert "CAP_DAC_OVERRIDE" in denied("containerd", "/run/containerd/containerd.sock", 0)


def test_socket_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path that is no socket, and a socket this user may not open (exit 2 at start)."""
    import socket as socketlib

    from falconet.sensors.runtime_meta import sockets
    from falconet.sensors.runtime_meta.sockets import RuntimeUnavailable, check_socket

    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(RuntimeUnavailable, match="is not a unix socket"):
        check_socket("docker", str(plain))
    path = str(tmp_path / "d.sock")
    with socketlib.socket(socketlib.AF_UNIX) as listener:
        listener.bind(path)
        check_socket("docker", path)  # as root, or as its owner
        monkeypatch.setattr(sockets.os, "access", lambda p, mode: False)
        with pytest.raises(
            RuntimeUnavailable,
            match=r"permission denied on the docker socket .*d\.sock: run as root or as a member of group",
        ):
            check_socket("docker", path)


def test_table_publishes_on_change_and_retries_failures() -> None:
    from falconet.sensors.runtime_meta.records import from_docker

    sent: list[tuple[str, bytes | None, Any]] = []
    stats = RuntimeMetaStats()
    table = ContainerTable(lambda k, v, fail: sent.append((k, v, fail)), "node-a", stats)
    rec = from_docker(fixture("docker_inspect_web.json"), fixture("docker_image_nginx.json"))
    assert table.put(rec) and not table.put(rec)  # the same value: nothing sent
    assert stats.get("unchanged") == 1 and len(sent) == 1
    sent[0][2]()  # Kafka did not store it: the next description sends it again
    assert table.put(rec) and len(sent) == 2
    assert table.delete(rec.id) and not table.delete(rec.id)
    sent[-1][2]()  # the tombstone failed: the key is ours again, to delete at the next resync
    assert rec.id in table.keys() and table.delete(rec.id) and sent[-1][1] is None
    assert stats.get("publish_failed") == 2 and stats.get("tombstones") == 2

"""The container runtime metadata publisher as a :class:`~falconet.sensors.base.Sensor`.

``setup()`` finds the runtime (the configured one, or the first that answers on its default
socket) and checks that its socket can be opened, so a missing socket or a permission
problem stops the command at start with the path and what is needed. ``run(emit)`` reads
this node's records back from ``meta.containers.v1``, then runs one asyncio loop: a
:class:`~.sync.Syncer` publishing through the runner's publisher. ``stop()`` ends it; the
runner then flushes what is buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from falconet.errors import SensorError
from falconet.sensors.base import Emitter, SensorStats, supervise
from falconet.streams.topics import meta_topic

from .metrics import RuntimeMetaStats
from .settings import RuntimeMetaSettings
from .sockets import RuntimeApiError, RuntimeUnavailable, check_socket
from .source import Source
from .sync import Syncer
from .table import ContainerTable, read_topic

log = logging.getLogger("falconet.sensors.runtime_meta")

#: How often buffered deliveries are served while the runtime is quiet (seconds).
TICK_S = 0.2


def make_source(runtime: str, path: str, timeout_s: float) -> Source:
    if runtime == "docker":
        from .docker import DockerSource

        return DockerSource(path, timeout_s)
    from .cri import CriSource

    return CriSource(runtime, path, timeout_s)


async def _probe(runtime: str, path: str, timeout_s: float) -> str:
    async with make_source(runtime, path, timeout_s) as source:
        return await source.probe()


class RuntimeMetaSensor:
    """Publishes the containers of this node's runtime (docs/sensors/runtime-meta.md)."""

    name = "runtime_meta"
    source = "runtime_meta"  # the runner's event topic is never written: records go to meta.*

    def __init__(self, settings: RuntimeMetaSettings) -> None:
        self.settings = settings
        self.stats = SensorStats()
        self.rstats = RuntimeMetaStats()
        self.runtime = ""
        self.path = ""
        self.version = ""
        #: Set once every container was described and published once.
        self.synced = threading.Event()
        self.syncer: Syncer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False

    def setup(self) -> None:
        if self.runtime:
            return  # the CLI sets up early (exit 2 on a missing socket); the runner again
        s = self.settings
        candidates = s.candidates()
        missing: list[str] = []
        problems: list[str] = []
        for runtime, path in candidates:
            try:
                check_socket(runtime, path)
                self.version = asyncio.run(_probe(runtime, path, s.request_timeout_s))
            except RuntimeUnavailable as exc:
                if len(candidates) == 1:
                    raise
                (missing if "does not exist" in str(exc) else problems).append(str(exc))
                continue
            except RuntimeApiError as exc:
                problems.append(f"{runtime} at {path}: {exc}")
                continue
            self.runtime, self.path = runtime, path
            break
        if not self.runtime:
            if problems:
                raise RuntimeUnavailable("; ".join(problems))
            which = "container runtime" if s.runtime == "auto" else s.runtime
            raise RuntimeUnavailable(
                f"no {which} socket found (tried {', '.join(p for _, p in candidates)}): mount "
                f"the host's runtime socket into the publisher's pod, or set "
                f"runtime_meta.runtime and runtime_meta.socket"
            )
        self.rstats.runtime = self.runtime
        log.info("runtime_meta.runtime %s socket=%s node=%s", self.version, self.path, s.node)

    def run(self, emit: Emitter) -> None:
        if not self.runtime:
            raise SensorError("setup() was not called")
        asyncio.run(self._main(emit))

    def stop(self) -> None:
        """End the watch; callable from a signal handler or another thread."""
        self._stopping = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)

    def _sink(self, emit: Emitter, topic: str):
        publisher = emit.publisher

        def sink(key: str, value: bytes | None, on_failure: Any) -> None:
            def delivered(err: Any, msg: Any) -> None:
                if err is not None:
                    log.warning("runtime_meta.not_delivered id=%s error=%s", key, err)
                    on_failure()

            publisher.produce(topic, value, key.encode(), on_delivery=delivered)
            self.stats.events += 1

        return sink

    async def _main(self, emit: Emitter) -> None:
        s = self.settings
        self._loop = asyncio.get_running_loop()
        stop = self._stop = asyncio.Event()
        if self._stopping:
            return
        topic = emit.publisher.settings.topic(meta_topic("containers"))
        table = ContainerTable(self._sink(emit, topic), s.node, self.rstats)
        existing = await asyncio.to_thread(read_topic, emit.publisher.settings, topic)
        log.info("runtime_meta.loaded topic=%s records=%d", topic, table.load(existing))
        syncer = self.syncer = Syncer(
            lambda: make_source(self.runtime, self.path, s.request_timeout_s),
            table,
            self.rstats,
            poll_s=s.poll_s,
            resync_s=s.resync_s,
            backoff_initial_s=s.backoff_initial_s,
            backoff_max_s=s.backoff_max_s,
        )
        tasks = [
            asyncio.create_task(syncer.run(stop), name="runtime-meta-sync"),
            asyncio.create_task(self._tick(emit, stop), name="runtime-meta-tick"),
            asyncio.create_task(self._announce(syncer), name="runtime-meta-synced"),
        ]
        try:
            await supervise(tasks, stop, "the container runtime publisher")
        finally:
            self._loop = None

    async def _announce(self, syncer: Syncer) -> None:
        await syncer.synced.wait()
        self.synced.set()
        log.info("runtime_meta.synced runtime=%s mode=%s containers=%d",
                 self.runtime, syncer.mode, self.rstats.containers)  # fmt: skip

    async def _tick(self, emit: Emitter, stop: asyncio.Event) -> None:
        """Serve delivery callbacks while the runtime is quiet."""
        while not stop.is_set():
            emit.tick()
            await asyncio.sleep(TICK_S)

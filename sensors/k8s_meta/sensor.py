"""The Kubernetes metadata publisher as a :class:`~falconet.sensors.base.Sensor`.

``setup()`` resolves the API access (in-cluster or kubeconfig) and loads its TLS files, so
a bad kubeconfig stops the command before anything runs. ``run(emit)`` runs one asyncio
loop: a :class:`~.reflector.Reflector` per kind (ReplicaSets and Jobs first, for the owner
chain, then namespaces, nodes and pods) feeding :class:`~.state.MetaState`, which
publishes to the compacted ``meta.*.v1`` topics through the runner's publisher. ``stop()``
ends the watches; the runner then flushes what is buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from falconet.errors import SensorError
from falconet.sensors.base import Emitter, SensorStats, supervise
from falconet.streams.topics import meta_topic

from .access import ClusterAccess, resolve
from .client import JOBS, NAMESPACES, NODES, PODS, REPLICASETS, ApiClient
from .metrics import K8sMetaStats
from .reflector import Reflector, ReflectorOptions
from .settings import K8sMetaSettings
from .state import MetaState

log = logging.getLogger("falconet.sensors.k8s_meta")

#: How often buffered deliveries are served while the watches are quiet (seconds).
TICK_S = 0.2


class K8sMetaSensor:
    """Publishes pods, containers, namespaces and nodes of one cluster (docs/sensors/k8s-meta.md)."""

    name = "k8s_meta"
    source = "k8s_meta"  # the runner's event topic is never written: records go to meta.*.v1

    def __init__(self, settings: K8sMetaSettings, access: ClusterAccess | None = None) -> None:
        self.settings = settings
        self.access = access
        self.stats = SensorStats()
        self.kstats = K8sMetaStats()
        #: Set once every kind was listed once (everything known is published).
        self.synced = threading.Event()
        self.reflectors: dict[str, Reflector] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False
        self._ready = False

    def setup(self) -> None:
        if self._ready:
            return  # the CLI sets up early (exit 2 on a bad kubeconfig); the runner again
        s = self.settings
        if self.access is None:
            self.access = resolve(s.kubeconfig, s.context)
        self.access.ssl_context()  # CA and client certificate load now, or ConfigError
        self.access.token_source()  # the token file is readable
        log.info("k8s_meta.access server=%s via=%s cluster=%s publish_containers=%s",
                 self.access.server, self.access.origin, s.cluster or "-", s.publish_containers)  # fmt: skip
        if not s.cluster:
            log.warning("k8s_meta.no_cluster records carry no 'cluster' (set k8s_meta.cluster)")
        self._ready = True

    def run(self, emit: Emitter) -> None:
        if self.access is None:
            raise SensorError("setup() was not called")
        asyncio.run(self._main(emit))

    def stop(self) -> None:
        """End the watches; callable from a signal handler or another thread."""
        self._stopping = True
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)

    def _sink(self, emit: Emitter):
        publisher = emit.publisher
        topics = {
            table: publisher.settings.topic(meta_topic(table))
            for table in ("pods", "containers", "namespaces", "nodes")
        }

        def sink(table: str, key: str, value: bytes | None) -> None:
            publisher.produce(topics[table], value, key.encode())
            self.stats.events += 1

        return sink

    async def _main(self, emit: Emitter) -> None:
        assert self.access is not None
        s = self.settings
        self._loop = asyncio.get_running_loop()
        stop = self._stop = asyncio.Event()
        if self._stopping:
            return
        state = MetaState(self._sink(emit), self.kstats, s.filters, s.publish_containers)
        options = ReflectorOptions(
            s.page_size, s.watch_timeout_s, s.backoff_initial_s, s.backoff_max_s
        )
        async with ApiClient(self.access) as api:
            self.reflectors = {
                r.kind: Reflector(api, r, state, self.kstats, options)
                for r in (REPLICASETS, JOBS, NAMESPACES, NODES, PODS)
            }
            tasks = [
                asyncio.create_task(self.reflectors[r.kind].run(stop), name=f"k8s-meta-{r.plural}")
                for r in (REPLICASETS, JOBS, NAMESPACES, NODES)
            ]
            tasks.append(asyncio.create_task(self._pods(stop), name="k8s-meta-pods"))
            tasks.append(asyncio.create_task(self._tick(emit, stop), name="k8s-meta-tick"))
            tasks.append(asyncio.create_task(self._announce_sync(), name="k8s-meta-sync"))
            try:
                await supervise(tasks, stop, "the Kubernetes metadata publisher")
            finally:
                self._loop = None

    async def _pods(self, stop: asyncio.Event) -> None:
        """Pods start once the owner caches are listed (or after a bounded wait), so their
        first records name the Deployment or CronJob rather than the ReplicaSet or Job."""
        owners = [self.reflectors[r.kind].synced.wait() for r in (REPLICASETS, JOBS)]
        try:
            await asyncio.wait_for(asyncio.gather(*owners), self.settings.owner_sync_timeout_s)
        except TimeoutError:
            log.warning("k8s_meta.owners_not_synced after=%.0fs: pods start anyway; their owners "
                        "resolve when the ReplicaSets and Jobs arrive", self.settings.owner_sync_timeout_s)  # fmt: skip
        await self.reflectors[PODS.kind].run(stop)

    async def _announce_sync(self) -> None:
        await asyncio.gather(*(r.synced.wait() for r in self.reflectors.values()))
        self.synced.set()
        k = self.kstats
        log.info(
            "k8s_meta.synced %s", " ".join(f"{kind}={n}" for kind, n in sorted(k.objects.items()))
        )

    async def _tick(self, emit: Emitter, stop: asyncio.Event) -> None:
        """Serve delivery callbacks while the watches are quiet."""
        while not stop.is_set():
            emit.tick()
            await asyncio.sleep(TICK_S)

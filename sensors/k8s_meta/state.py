"""What the publisher knows and has published: the reflectors' :class:`Handler`.

It turns watched objects into meta records (:mod:`.translate`), resolves a pod's top
workload from the ReplicaSets and Jobs it watches, and publishes a record only when its
value changed (a pod's status changes all the time; its record rarely does). Deletions
publish tombstones: a pod's uid and every container id published for it.

When a ReplicaSet or Job shows up (or changes owner) after its pods, the pods it owns are
resolved again, so a pod listed before its ReplicaSet still ends up with its Deployment.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from .client import JOBS, NAMESPACES, NODES, PODS, REPLICASETS, Resource
from .metrics import K8sMetaStats
from .translate import (
    Filters,
    Owner,
    container_records,
    controller_of,
    namespace_record,
    node_record,
    pod_record,
    top_owner,
)

log = logging.getLogger("falconet.sensors.k8s_meta")

#: ``sink(table, key, value)``: publish one compacted record (``None``: a tombstone).
Sink = Callable[[str, str, bytes | None], None]


@dataclass(slots=True)
class _Pod:
    namespace: str
    controller: Owner | None
    record: dict[str, Any]
    containers: set[str] = field(default_factory=set)


class Dedup:
    """Publishes a key's value only when it differs from the last one published."""

    def __init__(self, sink: Sink, stats: K8sMetaStats) -> None:
        self.sink = sink
        self.stats = stats
        self._last: dict[tuple[str, str], bytes] = {}

    def put(self, table: str, key: str, value: Mapping[str, Any]) -> bool:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if self._last.get((table, key)) == digest:
            self.stats.count(self.stats.unchanged, table)
            return False
        self.sink(table, key, data)
        self._last[(table, key)] = digest
        self.stats.count(self.stats.published, table)
        return True

    def delete(self, table: str, key: str) -> bool:
        if self._last.pop((table, key), None) is None:
            return False  # never published (or already deleted)
        self.sink(table, key, None)
        self.stats.count(self.stats.tombstones, table)
        return True

    def __len__(self) -> int:
        return len(self._last)


class MetaState:
    """The handler of every reflector: owner caches, pods, namespaces and nodes."""

    def __init__(
        self, sink: Sink, stats: K8sMetaStats, filters: Filters, publish_containers: bool = True
    ) -> None:
        self.out = Dedup(sink, stats)
        self.stats = stats
        self.filters = filters
        self.publish_containers = publish_containers
        #: (namespace, kind, name) of a ReplicaSet/Job → its controller (None: it has none).
        self.owners: dict[tuple[str, str, str], Owner | None] = {}
        #: (namespace, kind, name) → uids of the pods it controls.
        self.owned: dict[tuple[str, str, str], set[str]] = {}
        self.pods: dict[str, _Pod] = {}
        #: name → uid of the namespace/node published under that name.
        self.names: dict[tuple[str, str], str] = {}

    # -- Handler -----------------------------------------------------------------------------
    def upsert(self, resource: Resource, obj: Mapping[str, Any]) -> None:
        if resource in (REPLICASETS, JOBS):
            self._owner_upsert(resource, obj)
        elif resource == PODS:
            self._pod_upsert(obj)
        elif resource == NAMESPACES:
            self._named_upsert("namespaces", obj, namespace_record(obj, self.filters))
        elif resource == NODES:
            self._named_upsert("nodes", obj, node_record(obj, self.filters))

    def delete(self, resource: Resource, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        if resource in (REPLICASETS, JOBS):
            key = (str(meta.get("namespace") or ""), resource.kind, str(meta.get("name") or ""))
            self.owners.pop(key, None)
            self._reresolve(key)
        elif resource == PODS:
            self._pod_delete(str(meta.get("uid") or ""))
        elif resource in (NAMESPACES, NODES):
            table = "namespaces" if resource == NAMESPACES else "nodes"
            name, uid = str(meta.get("name") or ""), str(meta.get("uid") or "")
            # A node or namespace of the same name may already be back (a new uid).
            if self.names.get((table, name), uid) == uid:
                self.names.pop((table, name), None)
                self.out.delete(table, name)

    # -- owners ------------------------------------------------------------------------------
    def lookup(self, namespace: str, kind: str, name: str) -> tuple[bool, Owner | None]:
        key = (namespace, kind, name)
        if key not in self.owners:
            return False, None
        return True, self.owners[key]

    def _owner_upsert(self, resource: Resource, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), resource.kind, str(meta.get("name") or ""))
        owner = controller_of(obj)
        if key in self.owners and self.owners[key] == owner:
            return
        self.owners[key] = owner
        self._reresolve(key)

    def _reresolve(self, key: tuple[str, str, str]) -> None:
        for uid in list(self.owned.get(key, ())):
            pod = self.pods.get(uid)
            if pod is None:
                continue
            owner = top_owner(pod.namespace, pod.controller, self.lookup)
            new = owner.to_json() if owner else None
            if pod.record.get("owner") != new:
                pod.record = {**pod.record, "owner": new}
                self.out.put("pods", uid, pod.record)

    # -- pods --------------------------------------------------------------------------------
    def _pod_upsert(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid:
            return
        namespace = str(meta.get("namespace") or "")
        controller = controller_of(obj)
        owner = top_owner(namespace, controller, self.lookup)
        record = pod_record(obj, owner, self.filters)
        previous = self.pods.get(uid)
        if previous is not None and previous.controller != controller:
            self._unindex(uid, previous)
        pod = _Pod(namespace, controller, record, previous.containers if previous else set())
        self.pods[uid] = pod
        if controller is not None:
            self.owned.setdefault((namespace, controller.kind, controller.name), set()).add(uid)
        self.out.put("pods", uid, record)
        if self.publish_containers:
            current = container_records(obj, self.filters)
            for short, value in current.items():
                self.out.put("containers", short, value)
            for short in pod.containers - current.keys():
                self.out.delete("containers", short)  # an id of a container long restarted
            pod.containers = set(current)

    def _unindex(self, uid: str, pod: _Pod) -> None:
        if pod.controller is None:
            return
        key = (pod.namespace, pod.controller.kind, pod.controller.name)
        uids = self.owned.get(key)
        if uids is not None:
            uids.discard(uid)
            if not uids:
                del self.owned[key]

    def _pod_delete(self, uid: str) -> None:
        pod = self.pods.pop(uid, None)
        if pod is not None:
            self._unindex(uid, pod)
            for short in pod.containers:
                self.out.delete("containers", short)
        self.out.delete("pods", uid)

    # -- namespaces and nodes ----------------------------------------------------------------
    def _named_upsert(self, table: str, obj: Mapping[str, Any], record: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or "")
        if not name:
            return
        self.names[(table, name)] = str(meta.get("uid") or "")
        self.out.put(table, name, record)

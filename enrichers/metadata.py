"""Joins an event with the metadata tables (containers, pods, namespaces, nodes, cloud
accounts, identities) the stream workers keep from the compacted ``meta.*`` topics.

The tables map a key (bytes) to a JSON object (bytes), as published on the meta topics
(``docs/events.md``, "Metadata topics"). Enrichment never blocks on the network: it reads
only what the tables hold, and keeps what the event already carries (a recorded stream's
inline enrichment wins over the tables' view). The join per source:

* ``syscall``: ``event.container.id`` → ``containers`` → ``enrichment.container``; its
  ``pod_uid`` (else its ``io.kubernetes.pod.uid`` label) → ``pods`` → ``enrichment.k8s.pod``;
  the pod's namespace (else the container's) → ``namespaces`` → ``enrichment.k8s.ns``; the
  event's host → ``nodes`` → ``enrichment.node``, and → ``instances`` →
  ``enrichment.node.cloud``; the node's ``cloud.account_id`` → ``accounts`` →
  ``enrichment.cloud.account``.
* ``aws_cloudtrail``: ``recipientAccountId`` (else ``userIdentity.accountId``) → ``accounts``
  → ``enrichment.cloud.account``; ``userIdentity.arn`` → ``identities`` →
  ``enrichment.identity``, an assumed-role session falling back to its role
  (``cloud_keys.identity_keys``).
* ``k8s_audit``: ``objectRef.namespace`` (a Namespace's own ``objectRef.name``) →
  ``namespaces`` → ``enrichment.k8s.ns``;
  ``user.username`` → ``identities`` → ``enrichment.identity``; the cluster name of the
  envelope → ``enrichment.k8s.cluster``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson

from falconet.event import Event

from .cloud_keys import identity_keys, merge_instance

#: The container labels kubelet sets (a recorded event's inline enrichment may carry only them).
_POD_UID = "io.kubernetes.pod.uid"
_POD_NAMESPACE = "io.kubernetes.pod.namespace"

TABLES = ("containers", "pods", "namespaces", "nodes", "instances", "accounts", "identities")

Table = Mapping[bytes, bytes]


@lru_cache(maxsize=65536)
def _decode(value: bytes) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _merge(into: dict[str, Any], key: str, meta: dict[str, Any]) -> dict[str, Any]:
    """``into[key]`` filled from ``meta`` without overwriting what is already there."""
    current = into.get(key)
    if not isinstance(current, dict):
        current = into[key] = {}
    for k, v in meta.items():
        current.setdefault(k, v)
    return current


class MetadataEnricher:
    """Enriches events from metadata tables (any ``Mapping[bytes, bytes]``)."""

    def __init__(self, tables: Mapping[str, Table]) -> None:
        self.tables = tables

    def _get(self, table: str, key: Any) -> dict[str, Any] | None:
        if not key or not isinstance(key, str):
            return None
        t = self.tables.get(table)
        if t is None:
            return None
        raw = t.get(key.encode())
        return None if raw is None else _decode(bytes(raw))

    def enrich(self, ev: Event) -> None:
        if ev.source == "syscall":
            self._syscall(ev)
        elif ev.source == "aws_cloudtrail":
            self._cloudtrail(ev)
        elif ev.source == "k8s_audit":
            self._k8s_audit(ev)

    def _syscall(self, ev: Event) -> None:
        enr = ev.enrichment
        container = ev.payload.get("container")
        cid = container.get("id") if isinstance(container, dict) else None
        if cid and cid != "host":
            meta = self._get("containers", cid)
            merged = _merge(enr, "container", meta) if meta is not None else enr.get("container")
            if isinstance(merged, dict):
                self._pod_and_namespace(enr, merged)
        node = self._get("nodes", ev.host)
        if node is not None:
            _merge(enr, "node", node)
        instance = self._get("instances", ev.host)
        if instance is not None:
            merge_instance(enr, instance)
        node_meta = enr.get("node")
        cloud = node_meta.get("cloud") if isinstance(node_meta, dict) else None
        if isinstance(cloud, dict):
            account = self._get("accounts", cloud.get("account_id"))
            if account is not None:
                _merge(enr.setdefault("cloud", {}), "account", account)

    def _pod_and_namespace(self, enr: dict[str, Any], container: dict[str, Any]) -> None:
        """container → pod → namespace; the runtime labels stand in for a missing join key."""
        labels = container.get("labels")
        labels = labels if isinstance(labels, dict) else {}
        pod = self._get("pods", container.get("pod_uid") or labels.get(_POD_UID))
        k8s = enr.get("k8s")
        if pod is not None:
            k8s = enr.setdefault("k8s", {})
            _merge(k8s, "pod", pod)
        namespace = (
            (pod or {}).get("namespace") or container.get("namespace") or labels.get(_POD_NAMESPACE)
        )
        if not namespace and isinstance(k8s, dict) and isinstance(k8s.get("pod"), dict):
            namespace = k8s["pod"].get("namespace")
        ns = self._get("namespaces", namespace)
        if ns is not None:
            _merge(enr.setdefault("k8s", {}), "ns", ns)

    def _cloudtrail(self, ev: Event) -> None:
        rec = ev.payload
        ident = rec.get("userIdentity")
        ident = ident if isinstance(ident, dict) else {}
        account = self._get("accounts", rec.get("recipientAccountId") or ident.get("accountId"))
        if account is not None:
            _merge(ev.enrichment.setdefault("cloud", {}), "account", account)
        for key in identity_keys(ident):  # a session falls back to its role
            who = self._get("identities", key)
            if who is not None:
                _merge(ev.enrichment, "identity", who)
                break

    def _k8s_audit(self, ev: Event) -> None:
        rec = ev.payload
        ref = rec.get("objectRef")
        ref = ref if isinstance(ref, dict) else {}
        # a namespaced object's namespace; for a Namespace itself, its name
        name = ref.get("namespace") or (
            ref.get("name") if ref.get("resource") == "namespaces" else None
        )
        ns = self._get("namespaces", name)
        if ns is not None:
            _merge(ev.enrichment.setdefault("k8s", {}), "ns", ns)
        user = rec.get("user")
        who = self._get("identities", user.get("username") if isinstance(user, dict) else None)
        if who is not None:
            _merge(ev.enrichment, "identity", who)
        cluster = ev.meta.get("cluster")
        if cluster:
            ev.enrichment.setdefault("k8s", {}).setdefault("cluster", cluster)

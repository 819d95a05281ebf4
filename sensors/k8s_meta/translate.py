"""Kubernetes API objects → the values of the compacted ``meta.*.v1`` topics.

Pure functions over the JSON the API server returns (``docs/events.md``, "Metadata
topics"; ``docs/sensors/k8s-meta.md`` lists every field). Nothing here talks to the
network: the publisher feeds it objects from its list+watch caches, and the unit tests
feed it recorded payloads.

Only what changes rarely goes into a value (identity, labels, owner, node, IP, container
ids, images): a pod's status conditions, probe times and restart counts are left out, so
the constant status updates of a busy cluster publish nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: Length of a container id as the syscall sensor reports it (``container.id``).
SHORT_ID = 12

#: Annotations never published by default: a full copy of the object (big, and it
#: may hold secrets passed in env values).
DEFAULT_ANNOTATION_EXCLUDES = ("kubectl.kubernetes.io/last-applied-configuration",)

#: Node labels that name the topology and machine, under their current and legacy keys.
_ZONE = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
_REGION = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
_INSTANCE_TYPE = ("node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type")

#: Owner kinds whose own owner is looked up to reach the top workload.
OWNER_KINDS = ("ReplicaSet", "Job")


@dataclass(frozen=True, slots=True)
class Owner:
    """One owner reference: what controls an object."""

    kind: str
    name: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name}


@dataclass(frozen=True, slots=True)
class ContainerId:
    """A container id of a pod status: ``<runtime>://<hex id>``."""

    runtime: str  # containerd, cri-o, docker, ...
    full: str  # the whole hex id

    @property
    def short(self) -> str:
        return self.full[:SHORT_ID]


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image reference cut into its parts (``registry/path:tag@sha256:...``)."""

    repository: str = ""
    tag: str = ""
    digest: str = ""

    def to_json(self) -> dict[str, str]:
        return {"repository": self.repository, "tag": self.tag, "digest": self.digest}


@dataclass(frozen=True, slots=True)
class Filters:
    """What of the labels and annotations is published."""

    annotation_excludes: tuple[str, ...] = DEFAULT_ANNOTATION_EXCLUDES
    annotation_max_bytes: int = 1024  # longer values are left out (0: no annotations)
    cluster: str = ""


def parse_container_id(value: Any) -> ContainerId | None:
    """``containerd://<64 hex>``, ``cri-o://...``, ``docker://...`` → its parts; None when
    the container has no id yet (waiting) or the value is not of that shape."""
    if not isinstance(value, str) or "://" not in value:
        return None
    runtime, _, full = value.partition("://")
    full = full.strip().lower()
    if len(full) < SHORT_ID or any(c not in "0123456789abcdef" for c in full):
        return None
    return ContainerId(runtime or "unknown", full)


def _split_digest(ref: str) -> tuple[str, str]:
    name, at, digest = ref.partition("@")
    return (name, digest) if at else (ref, "")


def parse_image(image: Any, image_id: Any = "") -> ImageRef:
    """The repository, tag and digest of a container's image.

    ``image`` is what the status reports (``docker.io/library/nginx:1.25``, the spec's
    ``nginx:1.25``, or ``sha256:<id>`` when the runtime lost the name); ``image_id`` gives
    the digest: ``docker.io/library/nginx@sha256:...`` (containerd, CRI-O) or
    ``docker-pullable://nginx@sha256:...`` (dockershim/cri-dockerd). A tag is what
    follows the last ``:`` after the last ``/`` (so ``registry:5000/app`` has none).
    """
    text = image if isinstance(image, str) else ""
    if text.startswith("sha256:"):  # an image id, not a name
        text = ""
    name, digest = _split_digest(text)
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    if isinstance(image_id, str) and "@" in image_id:
        id_name, id_digest = _split_digest(image_id.partition("://")[2] or image_id)
        digest = digest or id_digest
        name = name or id_name
    return ImageRef(name, tag, digest)


def controller_of(obj: Mapping[str, Any]) -> Owner | None:
    """The owner reference with ``controller: true`` (else the first one), if any."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    chosen = next((r for r in refs if isinstance(r, dict) and r.get("controller")), None)
    if chosen is None:
        chosen = next((r for r in refs if isinstance(r, dict)), None)
    if chosen is None or not chosen.get("kind") or not chosen.get("name"):
        return None
    return Owner(str(chosen["kind"]), str(chosen["name"]))


#: Look up an intermediate owner (ReplicaSet, Job) by namespace, kind and name → its own owner;
#: returns (known, owner): ``known`` False when the cache has never seen that object.
OwnerLookup = Callable[[str, str, str], tuple[bool, Owner | None]]


def top_owner(namespace: str, first: Owner | None, lookup: OwnerLookup) -> Owner | None:
    """Follow the owner chain from a pod's controller to the top workload: ReplicaSet →
    Deployment, Job → CronJob. A ReplicaSet or Job that has no owner (created by hand), or
    that the cache does not hold (yet), is itself the top."""
    owner = first
    for _ in range(4):  # ReplicaSet → Deployment is the deepest chain of the built-in kinds
        if owner is None or owner.kind not in OWNER_KINDS:
            break
        known, parent = lookup(namespace, owner.kind, owner.name)
        if not known or parent is None:
            break
        owner = parent
    return owner


def filter_labels(labels: Any) -> dict[str, str]:
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items()}


def filter_annotations(annotations: Any, filters: Filters) -> dict[str, str]:
    """Annotations without the excluded keys and without values over the size cap."""
    if not isinstance(annotations, dict) or filters.annotation_max_bytes <= 0:
        return {}
    out: dict[str, str] = {}
    cap = filters.annotation_max_bytes
    for k, v in annotations.items():
        key, value = str(k), str(v)
        if key in filters.annotation_excludes or len(value.encode()) > cap:
            continue
        out[key] = value
    return out


def _with_cluster(value: dict[str, Any], filters: Filters) -> dict[str, Any]:
    if filters.cluster:
        value["cluster"] = filters.cluster
    return value


def _statuses(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    out: list[dict[str, Any]] = []
    for field in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        out += [s for s in status.get(field) or [] if isinstance(s, dict)]
    return out


def _spec_images(pod: Mapping[str, Any]) -> dict[str, str]:
    spec = pod.get("spec") or {}
    out: dict[str, str] = {}
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(field) or []:
            if isinstance(c, dict) and c.get("name"):
                out[str(c["name"])] = str(c.get("image") or "")
    return out


def pod_containers(pod: Mapping[str, Any]) -> list[tuple[str, ContainerId | None, ImageRef]]:
    """Each container of the pod with its current id (None before it started) and image."""
    spec_images = _spec_images(pod)
    seen: set[str] = set()
    out: list[tuple[str, ContainerId | None, ImageRef]] = []
    for st in _statuses(pod):
        name = str(st.get("name") or "")
        seen.add(name)
        image = st.get("image") or spec_images.get(name, "")
        out.append(
            (name, parse_container_id(st.get("containerID")), parse_image(image, st.get("imageID")))
        )
    for name, image in spec_images.items():
        if name not in seen:
            out.append((name, None, parse_image(image)))
    return out


def pod_container_ids(pod: Mapping[str, Any]) -> dict[str, ContainerId]:
    """Every container id a syscall of this pod can carry, by short id: the current one of
    each container and the one before its last restart (its events may still be in flight)."""
    out: dict[str, ContainerId] = {}
    for st in _statuses(pod):
        for value in (
            st.get("containerID"),
            ((st.get("lastState") or {}).get("terminated") or {}).get("containerID"),
        ):
            cid = parse_container_id(value)
            if cid is not None:
                out.setdefault(cid.short, cid)
    return out


def pod_record(pod: Mapping[str, Any], owner: Owner | None, filters: Filters) -> dict[str, Any]:
    """The ``meta.pods.v1`` value of a pod (key: its uid)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = [
        {"name": name, "id": cid.short if cid else "", "image": image.to_json()}
        for name, cid, image in pod_containers(pod)
    ]
    record: dict[str, Any] = {
        "uid": str(meta.get("uid") or ""),
        "name": str(meta.get("name") or ""),
        "namespace": str(meta.get("namespace") or ""),
        "labels": filter_labels(meta.get("labels")),
        "annotations": filter_annotations(meta.get("annotations"), filters),
        "owner": owner.to_json() if owner else None,
        "node": str(spec.get("nodeName") or ""),
        "ip": str(status.get("podIP") or ""),
        "host_network": bool(spec.get("hostNetwork")),
        "service_account": str(spec.get("serviceAccountName") or ""),
        "containers": containers,
        "created": str(meta.get("creationTimestamp") or ""),
    }
    return _with_cluster(record, filters)


def container_records(pod: Mapping[str, Any], filters: Filters) -> dict[str, dict[str, Any]]:
    """The ``meta.containers.v1`` values of a pod's containers, by short container id."""
    meta = pod.get("metadata") or {}
    images = {name: image for name, _, image in pod_containers(pod)}
    spec_images = _spec_images(pod)
    out: dict[str, dict[str, Any]] = {}
    for st in _statuses(pod):
        name = str(st.get("name") or "")
        ids = [parse_container_id(st.get("containerID"))]
        last = ((st.get("lastState") or {}).get("terminated") or {}).get("containerID")
        ids.append(parse_container_id(last))
        image = images.get(name) or parse_image(st.get("image") or spec_images.get(name, ""))
        for cid in ids:
            if cid is None or cid.short in out:
                continue
            out[cid.short] = _with_cluster(
                {
                    "id": cid.short,
                    "full_id": cid.full,
                    "runtime": cid.runtime,
                    "name": name,
                    "image": image.to_json(),
                    "pod_uid": str(meta.get("uid") or ""),
                    "pod_name": str(meta.get("name") or ""),
                    "namespace": str(meta.get("namespace") or ""),
                    "source": "k8s",
                },
                filters,
            )
    return out


def namespace_record(ns: Mapping[str, Any], filters: Filters) -> dict[str, Any]:
    """The ``meta.namespaces.v1`` value of a namespace (key: its name)."""
    meta = ns.get("metadata") or {}
    return _with_cluster(
        {
            "name": str(meta.get("name") or ""),
            "uid": str(meta.get("uid") or ""),
            "labels": filter_labels(meta.get("labels")),
            "annotations": filter_annotations(meta.get("annotations"), filters),
        },
        filters,
    )


def _first_label(labels: Mapping[str, str], keys: tuple[str, ...]) -> str:
    return next((labels[k] for k in keys if labels.get(k)), "")


def parse_provider_id(provider_id: str) -> dict[str, str]:
    """The cloud, zone and instance of a node's ``spec.providerID``.

    ``aws:///eu-west-1a/i-0abc...`` (also ``aws://<zone>/<id>``), ``gce://<project>/<zone>/
    <instance>``, ``azure:///subscriptions/<sub>/resourceGroups/<rg>/providers/
    Microsoft.Compute/virtualMachines/<vm>``; anything else gives just the scheme.
    """
    scheme, sep, rest = provider_id.partition("://")
    if not sep:
        return {}
    parts = [p for p in rest.split("/") if p]
    out = {"cloud": scheme}
    if scheme == "aws" and parts:
        out["instance_id"] = parts[-1]
        if len(parts) >= 2:
            out["zone"] = parts[-2]
    elif scheme == "gce" and len(parts) >= 3:
        out.update(project=parts[0], zone=parts[1], instance_id=parts[2])
    elif scheme == "azure" and parts:
        out["instance_id"] = parts[-1]
        lower = [p.lower() for p in parts]
        if "subscriptions" in lower and lower.index("subscriptions") + 1 < len(parts):
            out["subscription"] = parts[lower.index("subscriptions") + 1]
    return out


def node_record(node: Mapping[str, Any], filters: Filters) -> dict[str, Any]:
    """The ``meta.nodes.v1`` value of a node (key: its name, the ``host`` of its events)."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    labels = filter_labels(meta.get("labels"))
    provider_id = str(spec.get("providerID") or "")
    addresses = [
        {"type": str(a.get("type") or ""), "address": str(a.get("address") or "")}
        for a in status.get("addresses") or []
        if isinstance(a, dict)
    ]
    info = status.get("nodeInfo") or {}
    return _with_cluster(
        {
            "name": str(meta.get("name") or ""),
            "uid": str(meta.get("uid") or ""),
            "provider_id": provider_id,
            "provider": parse_provider_id(provider_id),
            "labels": labels,
            "zone": _first_label(labels, _ZONE),
            "region": _first_label(labels, _REGION),
            "instance_type": _first_label(labels, _INSTANCE_TYPE),
            "addresses": addresses,
            "kubelet_version": str(info.get("kubeletVersion") or ""),
            "container_runtime": str(info.get("containerRuntimeVersion") or ""),
            "os_image": str(info.get("osImage") or ""),
        },
        filters,
    )

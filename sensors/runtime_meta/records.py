"""Container runtime answers → the values of ``meta.containers.v1`` (key: 12-character id).

Pure functions over what the runtimes return: Docker's ``/containers/{id}/json`` and
``/images/{id}/json`` bodies, and the CRI ``ContainerStatusResponse`` and
``PodSandboxStatusResponse`` (as dicts, :mod:`.cri_messages`). The unit tests feed them
recorded payloads; nothing here talks to a socket.

A value carries what the syscall rules read under ``container.*`` (rules/fields/syscall.py):
``id``, ``full_id``, ``name``, ``type``, ``image`` {``name``, ``repository``, ``tag``,
``digest``, ``id``}, ``privileged``, ``mounts`` [{``source``, ``dest``, ``mode``,
``rdwr``, ``propagation``}], ``labels``, ``ip``, ``host_network``, ``host_pid``,
``host_ipc``, ``start_ts``, ``sandbox_id``; the join key ``pod_uid``; and, as the
Kubernetes publisher writes them for the same key, ``runtime``, ``pod_name``,
``namespace``. docs/sensors/runtime-meta.md lists every field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from falconet.sensors.k8s_meta.translate import parse_image

from .cri_messages import NS_NODE, PROPAGATION, PROTOCOLS

#: Length of a container id as the syscall sensor reports it (``container.id``).
SHORT_ID = 12

#: The labels kubelet (and cri-dockerd) put on every container of a pod.
POD_UID_LABEL = "io.kubernetes.pod.uid"
POD_NAME_LABEL = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
CONTAINER_NAME_LABEL = "io.kubernetes.container.name"
SANDBOX_ID_LABEL = "io.kubernetes.sandbox.id"  # cri-dockerd, on a pod's containers

_HEX = re.compile(r"^[0-9a-f]{12,64}$")
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$"
)


@dataclass(frozen=True, slots=True)
class Image:
    name: str = ""  # as the container references it: repository:tag (no digest)
    repository: str = ""
    tag: str = ""
    digest: str = ""  # sha256:... of the registry manifest
    id: str = ""  # sha256:... of the image config (the local image id)

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "repository": self.repository, "tag": self.tag,
                "digest": self.digest, "id": self.id}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Mount:
    source: str  # host path
    dest: str  # path in the container
    mode: str = ""
    rdwr: bool = True
    propagation: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "dest": self.dest, "mode": self.mode,
                "rdwr": self.rdwr, "propagation": self.propagation}  # fmt: skip


@dataclass(frozen=True, slots=True)
class HostPort:
    container_port: int
    protocol: str
    host_ip: str
    host_port: int

    def to_json(self) -> dict[str, Any]:
        return {"container_port": self.container_port, "protocol": self.protocol,
                "host_ip": self.host_ip, "host_port": self.host_port}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ContainerRecord:
    """One container as a runtime reports it."""

    full_id: str
    runtime: str  # docker | containerd | cri-o
    name: str = ""
    image: Image = field(default_factory=Image)
    privileged: bool = False
    mounts: tuple[Mount, ...] = ()
    start_ts: int = 0  # ns since the epoch; 0: never started
    labels: Mapping[str, str] = field(default_factory=dict)
    pod_uid: str = ""
    pod_name: str = ""
    namespace: str = ""
    sandbox_id: str = ""
    ip: str = ""
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    host_ports: tuple[HostPort, ...] = ()

    @property
    def id(self) -> str:
        return self.full_id[:SHORT_ID]

    def value(self, publisher: str, node: str) -> dict[str, Any]:
        """The ``meta.containers.v1`` value (key: :attr:`id`)."""
        return {
            "id": self.id,
            "full_id": self.full_id,
            "name": self.name,
            "type": self.runtime,
            "runtime": self.runtime,
            "image": self.image.to_json(),
            "privileged": self.privileged,
            "mounts": [m.to_json() for m in self.mounts],
            "started_at": rfc3339(self.start_ts),
            "start_ts": self.start_ts,
            "labels": dict(self.labels),
            "pod_uid": self.pod_uid,
            "pod_name": self.pod_name,
            "namespace": self.namespace,
            "sandbox_id": self.sandbox_id,
            "ip": self.ip,
            "host_network": self.host_network,
            "host_pid": self.host_pid,
            "host_ipc": self.host_ipc,
            "host_ports": [p.to_json() for p in self.host_ports],
            "node": node,
            "publisher": publisher,
        }


def encode(value: Mapping[str, Any]) -> bytes:
    """The bytes published for a value (sorted keys: equal values give equal bytes)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


# -- helpers -----------------------------------------------------------------------------------
def parse_time(text: Any) -> int:
    """An RFC 3339 time (nanosecond fractions, as Docker writes) → ns since the epoch; 0 for
    empty, Docker's zero time (``0001-01-01T00:00:00Z``) and anything unreadable."""
    if not isinstance(text, str):
        return 0
    m = _RFC3339.match(text.strip())
    if not m:
        return 0
    year, month, day, hour, minute, second, frac, zone = m.groups()
    if int(year) < 1970:
        return 0
    try:
        base = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        tzinfo=UTC)  # fmt: skip
    except ValueError:
        return 0
    seconds = int(base.timestamp())
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


def rfc3339(ns: int) -> str:
    """ns since the epoch → ``2024-05-01T10:00:00.123456789Z`` ("" for 0)."""
    if ns <= 0:
        return ""
    seconds, nanos = divmod(ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z" if nanos else f"{stamp}Z"


def full_id(value: Any) -> str:
    """A container id as the runtime gives it (hex, possibly ``<runtime>://``-prefixed) → the
    lower-case hex id; "" when it is not one."""
    text = str(value or "").strip().lower().rpartition("://")[2]
    return text if _HEX.match(text) else ""


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _image_id(*candidates: Any) -> str:
    for c in candidates:
        if isinstance(c, str) and c.startswith("sha256:"):
            return c
    return ""


def image_ref(reference: Any, digest_ref: Any = "", image_id: str = "") -> Image:
    """An :class:`Image` from the reference a container was created with (``nginx:1.25``,
    ``docker.io/library/nginx:1.25``, ``registry:5000/team/app@sha256:...``, or an image id
    when it was started by id) and a repo digest (``repo@sha256:...``), if known."""
    ref = parse_image(reference, digest_ref)
    name = ref.repository + (f":{ref.tag}" if ref.tag else "") if ref.repository else ""
    return Image(name, ref.repository, ref.tag, ref.digest, image_id)


# -- Docker ------------------------------------------------------------------------------------
def _docker_digest(repository: str, repo_digests: Any) -> str:
    """The repo digest of ``repository`` among an image's ``RepoDigests``; else the first."""
    digests = [d for d in repo_digests or () if isinstance(d, str) and "@" in d]
    for d in digests:
        if d.partition("@")[0] == repository:
            return d
    return digests[0] if digests else ""


def _docker_ip(settings: Mapping[str, Any]) -> str:
    if settings.get("IPAddress"):
        return str(settings["IPAddress"])
    for net in (settings.get("Networks") or {}).values():
        if isinstance(net, Mapping) and net.get("IPAddress"):
            return str(net["IPAddress"])
    return ""


def _docker_ports(settings: Mapping[str, Any]) -> tuple[HostPort, ...]:
    out: list[HostPort] = []
    for spec, bindings in sorted((settings.get("Ports") or {}).items()):
        port, _, proto = str(spec).partition("/")
        for b in bindings or ():
            if not isinstance(b, Mapping) or not str(b.get("HostPort") or "").isdigit():
                continue
            out.append(HostPort(int(port) if port.isdigit() else 0, proto or "tcp",
                                str(b.get("HostIp") or ""), int(b["HostPort"])))  # fmt: skip
    return tuple(out)


def from_docker(
    inspect: Mapping[str, Any], image: Mapping[str, Any] | None = None
) -> ContainerRecord:
    """A container from Docker's inspect body (``GET /containers/{id}/json``) and, for the
    repo digest, its image's (``GET /images/{id}/json``); ``ValueError`` without an id."""
    cid = full_id(inspect.get("Id"))
    if not cid:
        raise ValueError(f"not a container id: {inspect.get('Id')!r}")
    config = inspect.get("Config") or {}
    host = inspect.get("HostConfig") or {}
    state = inspect.get("State") or {}
    net = inspect.get("NetworkSettings") or {}
    labels = _labels(config.get("Labels"))
    image_id = _image_id(inspect.get("Image"), (image or {}).get("Id"))
    reference = str(config.get("Image") or "")
    if reference.startswith("sha256:") or not reference:  # started by image id (cri-dockerd)
        tags = [t for t in (image or {}).get("RepoTags") or () if isinstance(t, str)]
        reference = tags[0] if tags else reference
    repository = parse_image(reference).repository
    digest_ref = _docker_digest(repository, (image or {}).get("RepoDigests"))
    # a Kubernetes container (cri-dockerd) is named after its spec, as the pod reports it
    name = labels.get(CONTAINER_NAME_LABEL) or str(inspect.get("Name") or "").lstrip("/")
    mounts = tuple(
        Mount(
            str(m.get("Source") or ""),
            str(m.get("Destination") or ""),
            str(m.get("Mode") or ""),
            bool(m.get("RW")),
            str(m.get("Propagation") or ""),
        )  # fmt: skip
        for m in inspect.get("Mounts") or ()
        if isinstance(m, Mapping)
    )
    return ContainerRecord(
        full_id=cid,
        runtime="docker",
        name=name,
        image=image_ref(reference, digest_ref, image_id),
        privileged=bool(host.get("Privileged")),
        mounts=mounts,
        start_ts=parse_time(state.get("StartedAt")),
        labels=labels,
        pod_uid=labels.get(POD_UID_LABEL, ""),
        pod_name=labels.get(POD_NAME_LABEL, ""),
        namespace=labels.get(POD_NAMESPACE_LABEL, ""),
        sandbox_id=labels.get(SANDBOX_ID_LABEL, ""),
        ip=_docker_ip(net),
        host_network=host.get("NetworkMode") == "host",
        host_pid=host.get("PidMode") == "host",
        host_ipc=host.get("IpcMode") == "host",
        host_ports=_docker_ports(net),
    )


# -- CRI (containerd, CRI-O) -------------------------------------------------------------------
def verbose_info(info: Any) -> dict[str, Any]:
    """The JSON object of a verbose status' ``info["info"]`` ({} when absent or unreadable)."""
    raw = info.get("info") if isinstance(info, Mapping) else None
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _security(info: Mapping[str, Any]) -> Mapping[str, Any]:
    """The container's Linux security context from a verbose status: containerd writes the
    CRI ContainerConfig under ``config``; the OCI spec under ``runtimeSpec`` says the rest."""
    ctx = _dig(info, "config", "linux", "security_context")
    return ctx if isinstance(ctx, Mapping) else {}


def _privileged(info: Mapping[str, Any]) -> bool:
    if isinstance(info.get("privileged"), bool):  # CRI-O
        return bool(info["privileged"])
    return bool(_security(info).get("privileged"))  # containerd


def _host_ns(info: Mapping[str, Any], which: str) -> bool | None:
    """Whether the container shares the node's ``which`` namespace (None: not said)."""
    ctx = _security(info)
    if ctx:  # protobuf JSON leaves zero values out: a missing mode is POD (0)
        mode = (ctx.get("namespace_options") or {}).get(which, 0)
        return mode == NS_NODE
    namespaces = _dig(info, "runtimeSpec", "linux", "namespaces")
    if isinstance(namespaces, list):  # a namespace of the node is one the spec does not create
        kinds = {"network": "network", "pid": "pid", "ipc": "ipc"}
        listed = {n.get("type") for n in namespaces if isinstance(n, Mapping)}
        return kinds[which] not in listed
    return None


def _sandbox_ports(sandbox_info: Mapping[str, Any]) -> tuple[HostPort, ...]:
    out = []
    for p in _dig(sandbox_info, "config", "port_mappings") or ():
        if not isinstance(p, Mapping) or not p.get("host_port"):
            continue
        proto = p.get("protocol", 0)
        out.append(HostPort(int(p.get("container_port") or 0),
                            PROTOCOLS.get(proto, str(proto).lower()) if isinstance(proto, int)
                            else str(proto).lower(),
                            str(p.get("host_ip") or ""), int(p["host_port"])))  # fmt: skip
    return tuple(out)


def from_cri(
    runtime: str,
    status_response: Mapping[str, Any],
    sandbox_response: Mapping[str, Any] | None = None,
    sandbox_id: str = "",
) -> ContainerRecord:
    """A container from a CRI ``ContainerStatusResponse`` (verbose: its ``info`` holds the
    security context) and its pod's ``PodSandboxStatusResponse``; ``ValueError`` without
    an id."""
    status = status_response.get("status") or {}
    cid = full_id(status.get("id"))
    if not cid:
        raise ValueError(f"not a container id: {status.get('id')!r}")
    info = verbose_info(status_response.get("info"))
    sandbox = (sandbox_response or {}).get("status") or {}
    sandbox_info = verbose_info((sandbox_response or {}).get("info"))
    labels = _labels(status.get("labels"))
    pod = sandbox.get("metadata") or {}
    image_spec = status.get("image") or {}
    reference = str(image_spec.get("image") or "")
    if reference.startswith("sha256:") or not reference:
        reference = str(image_spec.get("user_specified_image") or reference)
    ref = str(status.get("image_ref") or "")
    image_id = _image_id(status.get("image_id"), ref, image_spec.get("image"),
                         _dig(info, "config", "image", "image"))  # fmt: skip
    mounts = tuple(
        Mount(
            str(m.get("host_path") or ""),
            str(m.get("container_path") or ""),
            "ro" if m.get("readonly") else "rw",
            not m.get("readonly"),
            PROPAGATION.get(int(m.get("propagation") or 0), ""),
        )  # fmt: skip
        for m in status.get("mounts") or ()
        if isinstance(m, Mapping)
    )
    ns_options = _dig(sandbox, "linux", "namespaces", "options") or {}
    pod_net = ns_options.get("network") == NS_NODE if ns_options else None
    host_network = _host_ns(info, "network")
    host_pid = _host_ns(info, "pid")
    host_ipc = _host_ns(info, "ipc")
    return ContainerRecord(
        full_id=cid,
        runtime=runtime,
        name=str((status.get("metadata") or {}).get("name") or ""),
        image=image_ref(reference, ref if "@" in ref else "", image_id),
        privileged=_privileged(info),
        mounts=mounts,
        start_ts=max(0, int(status.get("started_at") or 0)),
        labels=labels,
        pod_uid=str(pod.get("uid") or labels.get(POD_UID_LABEL, "")),
        pod_name=str(pod.get("name") or labels.get(POD_NAME_LABEL, "")),
        namespace=str(pod.get("namespace") or labels.get(POD_NAMESPACE_LABEL, "")),
        sandbox_id=str(sandbox.get("id") or info.get("sandboxID") or sandbox_id),
        ip=str((sandbox.get("network") or {}).get("ip") or ""),
        host_network=bool(pod_net if pod_net is not None else host_network),
        host_pid=bool(host_pid if host_pid is not None else ns_options.get("pid") == NS_NODE),
        host_ipc=bool(host_ipc if host_ipc is not None else ns_options.get("ipc") == NS_NODE),
        host_ports=_sandbox_ports(sandbox_info),
    )

"""Detections as Elastic Common Schema (ECS 8.x) documents.

:func:`to_ecs` turns one detection (the Falco JSON alert plus falconet's fields, as on
``detections.v1``) into the document the Elasticsearch / OpenSearch sink indexes:

* ``@timestamp`` (the detection's ``time``, RFC 3339 with nanoseconds, which both a
  ``date`` and a ``date_nanos`` field accept), ``message`` (the alert text), ``tags``;
* ``event.*``: ``kind: alert``, ``category``/``type`` from the source and the event,
  ``severity`` from the priority (:data:`SEVERITY`), ``id`` (the detection id),
  ``action``, ``provider``, ``module``, ``dataset``, ``created``, ``outcome`` where known;
* ``rule.name``, ``log.level``, ``observer.*``, ``host.name``;
* the subjects read from ``output_fields`` (and ``enrichment``): ``process.*``,
  ``user.*``, ``group.*``, ``file.*``, ``source.*``/``destination.*``/``network.*``,
  ``container.*``, ``orchestrator.*``, ``cloud.*``, ``url.*``, ``user_agent.*``,
  ``http.*``; MITRE ATT&CK tags become ``threat.*``;
* the original alert under ``falco`` (``rule``, ``priority``, ``output``,
  ``output_fields``, ``source``, ``tags``, ``hostname``, ``time``) and falconet's own
  fields under ``falconet`` (``id``, ``event_id``, ``dedup``).

The table of every field is in docs/sinks.md (section ``sink.elastic``). Only values that
are present are written: a field a rule did not print is absent, never empty.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["ECS_VERSION", "SEVERITY", "TACTICS", "dedot", "threat", "to_ecs"]

ECS_VERSION = "8.17.0"

#: Falco priority -> event.severity. Higher is more severe; the numbers fall in the
#: buckets of Elastic Security's severity (low <= 21 < medium <= 47 < high <= 73 <
#: critical), so a rule's risk-score override can read event.severity as it is.
SEVERITY: dict[str, int] = {
    "emergency": 100,
    "alert": 90,
    "critical": 80,
    "error": 60,
    "warning": 47,
    "notice": 21,
    "informational": 10,
    "debug": 5,
}

#: Falco's ``mitre_*`` rule tags -> (ATT&CK tactic id, tactic name).
TACTICS: dict[str, tuple[str, str]] = {
    "mitre_reconnaissance": ("TA0043", "Reconnaissance"),
    "mitre_resource_development": ("TA0042", "Resource Development"),
    "mitre_initial_access": ("TA0001", "Initial Access"),
    "mitre_execution": ("TA0002", "Execution"),
    "mitre_persistence": ("TA0003", "Persistence"),
    "mitre_privilege_escalation": ("TA0004", "Privilege Escalation"),
    "mitre_defense_evasion": ("TA0005", "Defense Evasion"),
    "mitre_credential_access": ("TA0006", "Credential Access"),
    "mitre_discovery": ("TA0007", "Discovery"),
    "mitre_lateral_movement": ("TA0008", "Lateral Movement"),
    "mitre_collection": ("TA0009", "Collection"),
    "mitre_command_and_control": ("TA0011", "Command and Control"),
    "mitre_exfiltration": ("TA0010", "Exfiltration"),
    "mitre_impact": ("TA0040", "Impact"),
}

_TECHNIQUE = re.compile(r"^(T\d{4})(?:\.(\d{3}))?$")
_ATTACK = "https://attack.mitre.org"

# syscall event type -> (event.category, event.type)
_SYSCALL_KIND: dict[str, tuple[str, str]] = {}
for _names, _kind in (
    ("execve execveat", ("process", "start")),
    ("clone clone3 fork vfork", ("process", "start")),
    ("ptrace process_vm_readv process_vm_writev", ("process", "access")),
    ("memfd_create prctl setuid setgid setresuid setresgid capset setns unshare",
     ("process", "change")),
    ("kill tkill tgkill", ("process", "end")),
    ("open openat openat2 creat read pread readv", ("file", "access")),
    ("write pwrite writev chmod fchmod fchmodat chown fchown fchownat lchown rename renameat "
     "renameat2 truncate ftruncate", ("file", "change")),
    ("symlink symlinkat link linkat mkdir mkdirat mknod mknodat", ("file", "creation")),
    ("unlink unlinkat rmdir", ("file", "deletion")),
    ("connect accept accept4 listen bind sendto sendmsg recvfrom recvmsg dup dup2 dup3",
     ("network", "connection")),
    ("init_module finit_module delete_module", ("driver", "change")),
    ("mount umount umount2 pivot_root chroot", ("host", "change")),
):  # fmt: skip
    for _n in _names.split():
        _SYSCALL_KIND[_n] = _kind

_K8S_VERB_TYPE = {
    "create": "creation",
    "delete": "deletion",
    "deletecollection": "deletion",
    "update": "change",
    "patch": "change",
    "get": "access",
    "list": "access",
    "watch": "access",
}

_LINK_TYPES = frozenset({"symlink", "symlinkat", "link", "linkat"})
_NA = (None, "", "<NA>")


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``doc[a][b][c] = value`` for ``path`` "a.b.c", skipping missing values."""
    if value in _NA or value == [] or value == {}:
        return
    *parents, leaf = path.split(".")
    node = doc
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


def _get(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for p in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(p)
    return node


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _ip(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        return None


def dedot(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Keys with ``.`` as ``_`` (one level): ``container.image`` and
    ``container.image.repository`` cannot then collide as a value and an object in the
    index mapping (Elasticsearch expands dotted names into objects)."""
    return {str(k).replace(".", "_"): v for k, v in mapping.items()}


def threat(tags: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``threat.*`` (MITRE ATT&CK) from Falco rule tags; empty when no tag names ATT&CK."""
    tactic_ids: list[str] = []
    tactic_names: list[str] = []
    tactic_refs: list[str] = []
    tech_ids: list[str] = []
    tech_refs: list[str] = []
    sub_ids: list[str] = []
    sub_refs: list[str] = []
    for tag in tags:
        t = TACTICS.get(str(tag).lower())
        if t is not None:
            if t[0] not in tactic_ids:
                tactic_ids.append(t[0])
                tactic_names.append(t[1])
                tactic_refs.append(f"{_ATTACK}/tactics/{t[0]}/")
            continue
        m = _TECHNIQUE.match(str(tag).upper())
        if m is None:
            continue
        tech, sub = m.group(1), m.group(2)
        if tech not in tech_ids:
            tech_ids.append(tech)
            tech_refs.append(f"{_ATTACK}/techniques/{tech}/")
        if sub and f"{tech}.{sub}" not in sub_ids:
            sub_ids.append(f"{tech}.{sub}")
            sub_refs.append(f"{_ATTACK}/techniques/{tech}/{sub}/")
    if not tactic_ids and not tech_ids:
        return {}
    out: dict[str, Any] = {"framework": "MITRE ATT&CK"}
    if tactic_ids:
        out["tactic"] = {"id": tactic_ids, "name": tactic_names, "reference": tactic_refs}
    if tech_ids:
        out["technique"] = {"id": tech_ids, "reference": tech_refs}
        if sub_ids:
            out["technique"]["subtechnique"] = {"id": sub_ids, "reference": sub_refs}
    return out


def _rfc3339_ms(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _timestamp(obj: Mapping[str, Any], fields: Mapping[str, Any]) -> str | None:
    t = obj.get("time")
    if isinstance(t, str) and t:
        return t
    ns = _int(fields.get("evt.time"))
    if ns:
        sec, frac = divmod(ns, 1_000_000_000)
        return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{frac:09d}Z"
    return None


def to_ecs(
    obj: Mapping[str, Any],
    *,
    dataset: str = "falconet.detections",
    flatten_fields: bool = True,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The ECS document of detection ``obj`` (see the module docstring).

    ``dataset`` is ``event.dataset``; ``flatten_fields`` writes ``falco.output_fields``
    with ``.`` in the keys as ``_`` (:func:`dedot`); ``now`` is ``event.created``.
    """
    fields: Mapping[str, Any] = obj.get("output_fields") or {}
    enrichment: Mapping[str, Any] = obj.get("enrichment") or {}
    source = str(obj.get("source") or "")
    priority = str(obj.get("priority") or "")
    tags = [str(t) for t in obj.get("tags") or ()]
    doc: dict[str, Any] = {}
    _put(doc, "@timestamp", _timestamp(obj, fields))
    _put(doc, "ecs.version", ECS_VERSION)
    _put(doc, "message", obj.get("output"))
    _put(doc, "tags", tags)

    event: dict[str, Any] = {"kind": "alert"}
    doc["event"] = event
    _put(doc, "event.id", obj.get("id"))
    _put(doc, "event.module", "falconet")
    _put(doc, "event.provider", source)
    _put(doc, "event.dataset", dataset)
    _put(doc, "event.created", _rfc3339_ms(now or datetime.now(UTC)))
    sev = SEVERITY.get(priority.lower())
    if priority.lower() == "info":
        sev = SEVERITY["informational"]
    _put(doc, "event.severity", sev)
    _put(doc, "log.level", priority.lower())
    _put(doc, "rule.name", obj.get("rule"))
    _put(doc, "observer.vendor", "falconet")
    _put(doc, "observer.product", "falconet")
    _put(doc, "observer.type", "ids")
    _put(doc, "host.name", obj.get("hostname"))

    category: list[str] = []
    etype: list[str] = []
    if source == "syscall" or any(k.startswith(("proc.", "evt.type")) for k in fields):
        _syscall(doc, fields, category, etype)
    _container(doc, fields, enrichment)
    _kubernetes(doc, fields, enrichment)
    if source == "aws_cloudtrail" or any(k.startswith("ct.") for k in fields):
        _cloudtrail(doc, fields, enrichment, tags, category, etype)
    if source == "k8s_audit" or any(k.startswith("ka.") for k in fields):
        _k8s_audit(doc, fields, category, etype)
    account = _get(enrichment, "cloud.account")
    if isinstance(account, Mapping):
        if _get(doc, "cloud.account.id") is None:
            _put(doc, "cloud.account.id", account.get("id"))
        _put(doc, "cloud.account.name", account.get("name"))
    if "intrusion_detection" not in category:
        category.append("intrusion_detection")
    if "info" not in etype:
        etype.append("info")
    event["category"] = category
    event["type"] = etype
    _put(doc, "threat", threat(tags))

    falco = {
        k: obj[k]
        for k in ("time", "rule", "priority", "output", "source", "tags", "hostname")
        if k in obj
    }
    falco["output_fields"] = dedot(fields) if flatten_fields else dict(fields)
    doc["falco"] = falco
    falconet: dict[str, Any] = {}
    _put(falconet, "id", obj.get("id"))
    _put(falconet, "event_id", obj.get("event_id"))
    if isinstance(obj.get("dedup"), Mapping):
        falconet["dedup"] = dict(obj["dedup"])
    if falconet:
        doc["falconet"] = falconet
    return doc


def _syscall(doc: dict[str, Any], f: Mapping[str, Any], cat: list[str], typ: list[str]) -> None:
    evt_type = f.get("evt.type")
    _put(doc, "event.action", evt_type)
    kind = _SYSCALL_KIND.get(str(evt_type))
    fd_type = f.get("fd.type")
    if kind is not None:
        cat.append(kind[0])
        typ.append(kind[1])
    # process
    _put(doc, "process.pid", _int(f.get("proc.pid")))
    _put(doc, "process.vpid", _int(f.get("proc.vpid")))
    name = f.get("proc.name")
    _put(doc, "process.name", name)
    exepath = f.get("proc.exepath")
    if exepath in _NA and isinstance(f.get("proc.exe"), str) and f["proc.exe"].startswith("/"):
        exepath = f["proc.exe"]
    _put(doc, "process.executable", exepath)
    _put(doc, "process.command_line", f.get("proc.cmdline"))
    args = f.get("proc.args")
    if isinstance(args, str) and (name not in _NA or exepath not in _NA):
        # Falco joins argv[1:] with spaces; ECS wants argv with the executable first
        _put(doc, "process.args", [exepath if exepath not in _NA else name, *args.split()])
    _put(doc, "process.working_directory", f.get("proc.cwd"))
    tty = _int(f.get("proc.tty"))
    if tty is not None:
        doc.setdefault("process", {})["interactive"] = tty != 0
    _put(doc, "process.session_leader.pid", _int(f.get("proc.sid")))
    _put(doc, "process.parent.pid", _int(f.get("proc.ppid")))
    _put(doc, "process.parent.name", f.get("proc.pname"))
    _put(doc, "process.parent.executable", f.get("proc.pexepath"))
    _put(doc, "process.parent.command_line", f.get("proc.pcmdline"))
    # user and group
    _put(doc, "user.name", f.get("user.name"))
    uid = _int(f.get("user.uid"))
    _put(doc, "user.id", None if uid is None else str(uid))
    _put(doc, "group.name", f.get("group.name"))
    gid = _int(f.get("group.gid"))
    _put(doc, "group.id", None if gid is None else str(gid))
    # the file descriptor: a socket or a file
    fd_name = f.get("fd.name")
    if fd_type in ("ipv4", "ipv6") or f.get("fd.l4proto") not in _NA:
        _network(doc, f, fd_name)
        if "network" not in cat:
            cat.append("network")
            typ.append("connection")
    elif isinstance(fd_name, str) and fd_name.startswith("/") and fd_type in (None, "file",
                                                                             "directory"):  # fmt: skip
        _put(doc, "file.path", fd_name)
        _put(doc, "file.directory", f.get("fd.directory") or fd_name.rsplit("/", 1)[0] or "/")
        _put(doc, "file.name", f.get("fd.filename") or fd_name.rsplit("/", 1)[1])
        _put(doc, "file.type", "dir" if fd_type == "directory" else "file")
        if "file" not in cat:
            cat.append("file")
            typ.append("access")
    if evt_type in _LINK_TYPES:
        link = f.get("evt.arg.linkpath") or f.get("evt.arg.newpath")
        target = f.get("evt.arg.target") or f.get("evt.arg.oldpath")
        if isinstance(link, str) and link:
            _put(doc, "file.path", link)
            _put(doc, "file.name", link.rsplit("/", 1)[-1])
            _put(doc, "file.target_path", target)


def _network(doc: dict[str, Any], f: Mapping[str, Any], fd_name: Any) -> None:
    cip, cport = _ip(f.get("fd.cip")), _int(f.get("fd.cport"))
    sip, sport = _ip(f.get("fd.sip")), _int(f.get("fd.sport"))
    if isinstance(fd_name, str) and "->" in fd_name:
        # Falco names a connected IP socket "cip:cport->sip:sport" (IPv6 without brackets)
        client, _, server = fd_name.partition("->")
        c_ip, _, c_port = client.rpartition(":")
        s_ip, _, s_port = server.rpartition(":")
        cip = cip or _ip(c_ip)
        sip = sip or _ip(s_ip)
        cport = cport if cport is not None else _int(c_port)
        sport = sport if sport is not None else _int(s_port)
    _put(doc, "source.ip", cip)
    _put(doc, "source.port", cport)
    _put(doc, "source.domain", f.get("fd.cip.name"))
    _put(doc, "destination.ip", sip)
    _put(doc, "destination.port", sport)
    _put(doc, "destination.domain", f.get("fd.sip.name"))
    l4 = f.get("fd.l4proto")
    _put(doc, "network.transport", l4 if l4 in ("tcp", "udp", "icmp") else None)
    fd_type = f.get("fd.type")
    _put(doc, "network.type", fd_type if fd_type in ("ipv4", "ipv6") else None)


def _container(doc: dict[str, Any], f: Mapping[str, Any], enr: Mapping[str, Any]) -> None:
    c = enr.get("container") if isinstance(enr.get("container"), Mapping) else {}
    assert isinstance(c, Mapping)
    cid = c.get("full_id") or c.get("id") or f.get("container.full_id") or f.get("container.id")
    if cid in _NA or cid == "host":
        return  # a host process: no container
    _put(doc, "container.id", cid)
    name = c.get("name") or f.get("container.name")
    _put(doc, "container.name", name)
    _put(doc, "container.runtime", c.get("type") or f.get("container.type"))
    image = c.get("image") if isinstance(c.get("image"), Mapping) else {}
    assert isinstance(image, Mapping)
    repo = image.get("repository") or f.get("container.image.repository")
    if repo in _NA:
        full = image.get("name") or f.get("container.image")
        repo = full.rsplit(":", 1)[0] if isinstance(full, str) and "/" in full else full
    _put(doc, "container.image.name", repo)
    tag = image.get("tag") or f.get("container.image.tag")
    _put(doc, "container.image.tag", [tag] if tag not in _NA else None)
    digest = image.get("digest") or f.get("container.image.digest")
    _put(doc, "container.image.hash.all", [digest] if digest not in _NA else None)
    priv = c.get("privileged", f.get("container.privileged"))
    if isinstance(priv, bool):
        _put(doc, "container.security_context.privileged", priv)
    labels = c.get("labels")
    if isinstance(labels, Mapping):
        _put(doc, "container.labels", dedot(labels))


def _kubernetes(doc: dict[str, Any], f: Mapping[str, Any], enr: Mapping[str, Any]) -> None:
    pod = _get(enr, "k8s.pod") or {}
    ns = _get(enr, "k8s.ns.name") or f.get("k8s.ns.name") or _get(pod, "namespace")
    pod_name = _get(pod, "name") or f.get("k8s.pod.name")
    if pod_name in _NA and ns in _NA:
        return
    _put(doc, "orchestrator.type", "kubernetes")
    _put(doc, "orchestrator.namespace", ns)
    if pod_name not in _NA:
        _put(doc, "orchestrator.resource.type", "pod")
        _put(doc, "orchestrator.resource.name", pod_name)
        _put(doc, "orchestrator.resource.id", _get(pod, "uid") or f.get("k8s.pod.uid"))
        labels = _get(pod, "labels")
        if isinstance(labels, Mapping):
            _put(doc, "orchestrator.resource.label", [f"{k}={v}" for k, v in labels.items()])
    _put(doc, "orchestrator.cluster.name", f.get("k8s.cluster.name"))


def _cloudtrail(doc: dict[str, Any], f: Mapping[str, Any], enr: Mapping[str, Any],
                tags: list[str], cat: list[str], typ: list[str]) -> None:  # fmt: skip
    _put(doc, "cloud.provider", "aws")
    _put(doc, "cloud.region", f.get("ct.region"))
    _put(doc, "cloud.account.id", f.get("ct.user.accountid"))
    name = f.get("ct.name")
    _put(doc, "event.action", name)
    _put(doc, "event.provider", f.get("ct.src"))
    _put(doc, "user.name", f.get("ct.user"))
    _put(doc, "user.id", f.get("ct.user.principalid"))
    src = f.get("ct.srcip")
    if src not in _NA:
        _put(doc, "source.address", src)
        _put(doc, "source.ip", _ip(src))
    _put(doc, "user_agent.original", f.get("ct.useragent"))
    err = f.get("ct.error")
    if err not in _NA:
        _put(doc, "event.outcome", "failure")
        _put(doc, "error.code", err)
    if name == "ConsoleLogin" or "aws_console" in tags:
        cat.append("authentication")
        typ.append("start")
    elif "aws_iam" in tags or str(f.get("ct.src", "")).startswith(("iam.", "sts.")):
        cat.append("iam")
        typ.append("change")
    else:
        cat.append("configuration")
        typ.append("change")


def _k8s_audit(doc: dict[str, Any], f: Mapping[str, Any], cat: list[str],
               typ: list[str]) -> None:  # fmt: skip
    verb = f.get("ka.verb")
    _put(doc, "event.action", verb)
    _put(doc, "user.name", f.get("ka.user.name"))
    _put(doc, "user.effective.name", f.get("ka.impuser.name"))
    resource, name = f.get("ka.target.resource"), f.get("ka.target.name")
    namespace = f.get("ka.target.namespace")
    if resource not in _NA or name not in _NA or namespace not in _NA:
        _put(doc, "orchestrator.type", "kubernetes")
        _put(doc, "orchestrator.namespace", namespace)
        _put(doc, "orchestrator.resource.type", resource)
        _put(doc, "orchestrator.resource.name", name)
    _put(doc, "orchestrator.cluster.name", f.get("ka.cluster.name"))
    _put(doc, "url.original", f.get("ka.uri"))
    _put(doc, "user_agent.original", f.get("ka.useragent"))
    ips = f.get("ka.sourceips")
    first = ips[0] if isinstance(ips, list) and ips else ips
    _put(doc, "source.ip", _ip(first))
    code = _int(f.get("ka.response.code"))
    if code is not None:
        _put(doc, "http.response.status_code", code)
        _put(doc, "event.outcome", "success" if code < 400 else "failure")
    cat.append("api")
    typ.append(_K8S_VERB_TYPE.get(str(verb).lower(), "info") if verb else "info")

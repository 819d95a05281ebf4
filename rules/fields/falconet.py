"""falconet's own context fields: ``falconet.*``, for what Falco has no field name for.

Falco's fields name what the event or a plugin knows (``container.*``, ``k8s.pod.*``,
``ct.*``, ``ka.*``). The enrichment layer (``enrichers/metadata.py``) adds context no Falco
field covers: the workload that owns a pod, the cluster, the node's cloud instance, the
account and its environment, criticality and owner, and the owner of an IAM or Kubernetes
identity. Those fields live under the one prefix ``falconet.``, so they can never collide
with a future Falco field, and the same name means the same thing in every source.

Every field reads ``ev.enrichment`` (docs/events.md, "Metadata topics" and "enrichment");
a value the enrichment does not hold is **missing**, with Falco's semantics (comparisons
are false, ``exists`` is false, outputs print ``<NA>``), never an empty string. A few
fall back to what the event itself says (``falconet.account.id`` of a CloudTrail record is
its ``recipientAccountId`` even when the accounts table does not know the account).

:func:`fields_for` gives the fields of one source; the source modules add them to their
``FIELDS``. :func:`owner` and :func:`environment` are the resolution rules of
``falconet.owner`` / ``falconet.environment``, for code that wants them without a registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from falconet.fields import ArgMode, FieldDef, FieldType, field, simple

PREFIX = "falconet."

SYSCALL = "syscall"
CLOUDTRAIL = "aws_cloudtrail"
K8S_AUDIT = "k8s_audit"
ALL = (SYSCALL, CLOUDTRAIL, K8S_AUDIT)

Extractor = Callable[[Any], Any]


def dig(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]…``; None as soon as a step is not a dict or lacks the key."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _text(v: Any) -> str | None:
    if v is None or v == "" or isinstance(v, (dict, list, bool)):
        return None
    return v if isinstance(v, str) else str(v)


def _first(*values: Any) -> str | None:
    for v in values:
        t = _text(v)
        if t is not None:
            return t
    return None


def _enr(ev: Any, *path: str) -> Any:
    return dig(ev.enrichment, *path)


# ------------------------------------------------------------------------------ resolution


def _account(ev: Any, key: str) -> str | None:
    return _text(_enr(ev, "cloud", "account", key))


def owner(ev: Any) -> str | None:
    """Who owns what the event happened to (``falconet.owner``): the same resolution as a
    detection's ``owner`` (``rules/policy_context.py`` with the default keys: pod, then
    namespace owner/team label, identity, account, node tag)."""
    return _context(ev).owner or None


def environment(ev: Any) -> str | None:
    """The environment of what the event happened to (``falconet.environment``): the same
    resolution as a detection's ``environment`` (namespace, then pod label, account, node
    tag)."""
    return _context(ev).environment or None


def _context(ev: Any) -> Any:
    from falconet.rules.policy_context import context_of
    from falconet.rules.policy_model import Settings

    return context_of(ev, Settings())


# ---------------------------------------------------------------------------------- values


def _cluster(ev: Any) -> str | None:
    return _first(
        _enr(ev, "k8s", "cluster"),
        _enr(ev, "k8s", "pod", "cluster"),
        _enr(ev, "k8s", "ns", "cluster"),
        _enr(ev, "node", "cluster"),
        ev.meta.get("cluster") if ev.source == K8S_AUDIT else None,
    )


def _node_name(ev: Any) -> str | None:
    return _first(_enr(ev, "node", "name"), _enr(ev, "k8s", "pod", "node"),
                  _enr(ev, "container", "node"))  # fmt: skip


def _cloud(key: str, *fallbacks: tuple[str, ...]) -> Extractor:
    """``enrichment.node.cloud.<key>`` (meta.instances.v1), else the Kubernetes node record."""

    def ex(ev: Any) -> str | None:
        node = ev.enrichment.get("node")
        if not isinstance(node, dict):
            return None
        return _first(dig(node, "cloud", key), *(dig(node, *f) for f in fallbacks))

    return ex


def _account_id(ev: Any) -> str | None:
    found = _account(ev, "id")
    if found is not None:
        return found
    if ev.source == SYSCALL:
        return _text(_enr(ev, "node", "cloud", "account_id"))
    if ev.source == CLOUDTRAIL:
        return _first(ev.payload.get("recipientAccountId"),
                      dig(ev.payload, "userIdentity", "accountId"))  # fmt: skip
    return None


def _account_value(key: str) -> Extractor:
    return lambda ev: _account(ev, key)


def _identity(key: str) -> Extractor:
    return lambda ev: _text(_enr(ev, "identity", key))


def _workload(key: str) -> Extractor:
    return lambda ev: _text(_enr(ev, "k8s", "pod", "owner", key))


def _make_ns_label(arg: str | None) -> Extractor:
    assert arg is not None
    key = arg
    return lambda ev: _text(_enr(ev, "k8s", "ns", "labels", key))


_S = FieldType.CHARBUF


def _f(name: str, desc: str, ex: Extractor, **kw: Any) -> FieldDef:
    return field(PREFIX + name, _S, desc, simple(ex), **kw)


#: (field, the sources that have it)
_TABLE: tuple[tuple[FieldDef, tuple[str, ...]], ...] = (
    (_f("owner", "owner of what the event happened to: pod, then namespace owner/team label, "
        "identity owner/team, account owner, node owner tag (docs/rules.md)", owner), ALL),
    (_f("environment", "environment: namespace, then pod environment/env label, account "
        "environment, node environment tag", environment), ALL),
    (_f("cluster", "Kubernetes cluster name (k8s-meta `cluster`, audit envelope `cluster`)",
        _cluster), (SYSCALL, K8S_AUDIT)),
    (_f("workload.kind", "kind of the pod's top owner (Deployment, StatefulSet, DaemonSet, "
        "CronJob, Job, ReplicaSet, Node); missing for a bare pod", _workload("kind")),
     (SYSCALL,)),
    (_f("workload.name", "name of the pod's top owner (the Deployment, not its ReplicaSet)",
        _workload("name")), (SYSCALL,)),
    (_f("node.name", "Kubernetes node the event comes from (as known to the metadata)",
        _node_name), (SYSCALL,)),
    (field(PREFIX + "ns.label", _S, "one label of the namespace ([key]); as k8s.ns.label",
           _make_ns_label, arg=ArgMode.REQUIRED), (SYSCALL, K8S_AUDIT)),
    (_f("cloud.provider", "cloud of the node (aws, gce, azure)", _cloud("provider", ("provider", "cloud"))),
     (SYSCALL,)),
    (_f("cloud.account_id", "cloud account of the node's instance", _cloud("account_id")),
     (SYSCALL,)),
    (_f("cloud.region", "region of the node's instance", _cloud("region", ("region",))),
     (SYSCALL,)),
    (_f("cloud.zone", "availability zone of the node's instance",
        _cloud("zone", ("zone",), ("provider", "zone"))), (SYSCALL,)),
    (_f("cloud.instance_id", "instance id of the node (i-…)",
        _cloud("instance_id", ("provider", "instance_id"))), (SYSCALL,)),
    (_f("cloud.instance_type", "instance type of the node (m6i.xlarge)",
        _cloud("instance_type", ("instance_type",))), (SYSCALL,)),
    (_f("account.id", "cloud account id: the node's (syscall), the record's (CloudTrail)",
        _account_id), ALL),
    (_f("account.name", "account name (accounts inventory)", _account_value("name")), ALL),
    (_f("account.environment", "account environment (accounts inventory)",
        _account_value("environment")), ALL),
    (_f("account.criticality", "account criticality (accounts inventory)",
        _account_value("criticality")), ALL),
    (_f("account.owner", "account owner (accounts inventory)", _account_value("owner")), ALL),
    (_f("identity.principal", "the principal the identity record describes (for an "
        "assumed-role session: its role's ARN)", _identity("principal")), (CLOUDTRAIL, K8S_AUDIT)),
    (_f("identity.kind", "identity kind (user, role, serviceaccount …)", _identity("kind")),
     (CLOUDTRAIL, K8S_AUDIT)),
    (_f("identity.name", "identity name", _identity("name")), (CLOUDTRAIL, K8S_AUDIT)),
    (_f("identity.owner", "owner of the identity (its owner tag)", _identity("owner")),
     (CLOUDTRAIL, K8S_AUDIT)),
    (_f("identity.team", "team of the identity (its team tag)", _identity("team")),
     (CLOUDTRAIL, K8S_AUDIT)),
)  # fmt: skip


def fields_for(source: str) -> tuple[FieldDef, ...]:
    """The ``falconet.*`` fields of ``source`` (empty for the sources without enrichment)."""
    return tuple(f for f, sources in _TABLE if source in sources)

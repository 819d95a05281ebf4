"""The context of an event as policies see it, the owner and environment of a detection,
and ``falconet.score``.

The context is read from the event's ``enrichment`` (``docs/events.md``: ``container``,
``k8s.pod``, ``k8s.ns``, ``k8s.cluster``, ``node``, ``cloud.account``, ``identity``), with
the event itself as a fallback (the envelope's cluster, a CloudTrail record's account, an
audit event's namespace). It is built once per event that produced detections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from falconet.event import Event
from falconet.priority import Priority

from .policy_model import Settings


def _obj(parent: Any, key: str) -> dict[str, Any]:
    value = parent.get(key) if isinstance(parent, Mapping) else None
    return value if isinstance(value, dict) else {}


def _text(*candidates: Any) -> str | None:
    """The first candidate that is a non-empty string (numbers as text)."""
    for c in candidates:
        if isinstance(c, bool) or c is None:
            continue
        if isinstance(c, int | str):
            s = str(c).strip()
            if s:
                return s
    return None


def _labels(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_key(labels: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for k in keys:
        v = _text(labels.get(k))
        if v is not None:
            return v
    return None


def _first_key_nocase(tags: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    """Cloud tags: keys matched case-insensitively (``Owner`` and ``owner``)."""
    folded = {str(k).lower(): v for k, v in tags.items()}
    return _first_key(folded, [k.lower() for k in keys])


_TRUTHY = frozenset({"true", "yes", "1", "on", "enabled"})


@dataclass(slots=True)
class Context:
    """What scopes select on, for one event."""

    source: str = ""
    cluster: str | None = None
    namespace: str | None = None
    pod: str | None = None
    pod_labels: dict[str, Any] = field(default_factory=dict)
    namespace_labels: dict[str, Any] = field(default_factory=dict)
    node: str | None = None
    node_labels: dict[str, Any] = field(default_factory=dict)
    account: str | None = None
    account_environment: str | None = None
    account_criticality: str | None = None
    privileged: bool = False
    host_network: bool = False
    internet_facing: bool = False
    owner: str = ""
    environment: str = ""


def context_of(ev: Event, settings: Settings) -> Context:
    """The context of ``ev``; see ``docs/policy.md`` for where each value comes from."""
    enr = ev.enrichment if isinstance(ev.enrichment, dict) else {}
    payload = ev.payload if isinstance(ev.payload, dict) else {}
    k8s = _obj(enr, "k8s") or _obj(payload, "k8s")
    pod = _obj(k8s, "pod")
    ns = _obj(k8s, "ns")
    container = _obj(enr, "container") or _obj(payload, "container")
    clabels = _labels(container.get("labels"))
    node = _obj(enr, "node")
    node_cloud = _obj(node, "cloud")
    account = _obj(_obj(enr, "cloud"), "account")
    identity = _obj(enr, "identity")

    ctx = Context(source=ev.source)
    ctx.cluster = _text(k8s.get("cluster"), pod.get("cluster"), ns.get("cluster"),
                        node.get("cluster"), ev.meta.get("cluster"))  # fmt: skip
    ref = _obj(payload, "objectRef") if ev.source == "k8s_audit" else {}
    ctx.namespace = _text(ns.get("name"), pod.get("namespace"), container.get("namespace"),
                          clabels.get("io.kubernetes.pod.namespace"), ref.get("namespace"))  # fmt: skip
    ctx.pod = _text(
        pod.get("name"), container.get("pod_name"), clabels.get("io.kubernetes.pod.name")
    )
    ctx.pod_labels = _labels(pod.get("labels"))
    ctx.namespace_labels = _labels(ns.get("labels"))
    ctx.node = _text(node.get("name"), ev.host if ev.source == "syscall" else None)
    ctx.node_labels = _labels(node.get("labels"))
    trail = ev.source == "aws_cloudtrail"
    ident = _obj(payload, "userIdentity") if trail else {}
    ctx.account = _text(account.get("id"), node_cloud.get("account_id"),
                        payload.get("recipientAccountId") if trail else None,
                        ident.get("accountId"))  # fmt: skip
    ctx.account_environment = _text(account.get("environment"))
    ctx.account_criticality = _text(account.get("criticality"))
    ctx.privileged = container.get("privileged") is True
    ctx.host_network = container.get("host_network") is True or pod.get("host_network") is True
    ctx.internet_facing = any(
        (_text(labels.get(k)) or "").lower() in _TRUTHY
        for labels in (ctx.pod_labels, ctx.namespace_labels)
        for k in settings.internet_facing_keys
    )
    node_tags = _labels(node_cloud.get("tags"))
    ctx.owner = (
        _first_key(ctx.pod_labels, settings.owner_keys)
        or _first_key(ctx.namespace_labels, settings.owner_keys)
        or _text(identity.get("owner"), identity.get("team"))
        or _text(account.get("owner"))
        or _first_key_nocase(node_tags, settings.owner_keys)
        or ""
    )
    ctx.environment = (
        _first_key(ctx.namespace_labels, settings.environment_keys)
        or _first_key(ctx.pod_labels, settings.environment_keys)
        or ctx.account_environment
        or _first_key_nocase(node_tags, settings.environment_keys)
        or ""
    )
    return ctx


# -- falconet.score ---------------------------------------------------------------------------
PRIORITY_WEIGHT: dict[Priority, int] = {
    Priority.EMERGENCY: 10,
    Priority.ALERT: 9,
    Priority.CRITICAL: 8,
    Priority.ERROR: 6,
    Priority.WARNING: 4,
    Priority.NOTICE: 3,
    Priority.INFORMATIONAL: 2,
    Priority.DEBUG: 1,
}

#: Environment names (lowercase) → criticality weight; anything else weighs UNKNOWN_ENV.
ENVIRONMENT_WEIGHT: dict[str, int] = {
    **dict.fromkeys(("production", "prod", "prd", "live"), 3),
    **dict.fromkeys(("staging", "stage", "stg", "preprod", "pre-production", "uat", "qa"), 2),
    **dict.fromkeys(("development", "dev", "lab", "test", "testing", "sandbox", "demo"), 1),
}
UNKNOWN_ENV = 2

#: Exposure multipliers (multiplied together, the product capped at MAX_EXPOSURE).
PRIVILEGED = Fraction(3, 2)
HOST_NETWORK = Fraction(5, 4)
INTERNET_FACING = Fraction(3, 2)
ACCOUNT_CRITICALITY: dict[str, Fraction] = {
    "critical": Fraction(2),
    "high": Fraction(3, 2),
    "medium": Fraction(6, 5),
    "low": Fraction(1),
}
MAX_EXPOSURE = Fraction(2)
#: The largest raw product: 10 (emergency) × 3 (production) × 2 (exposure cap).
MAX_RAW = 60


def environment_weight(environment: str) -> int:
    return ENVIRONMENT_WEIGHT.get(environment.strip().lower(), UNKNOWN_ENV)


def exposure(ctx: Context) -> Fraction:
    x = Fraction(1)
    if ctx.privileged:
        x *= PRIVILEGED
    if ctx.host_network:
        x *= HOST_NETWORK
    if ctx.internet_facing:
        x *= INTERNET_FACING
    x *= ACCOUNT_CRITICALITY.get((ctx.account_criticality or "").strip().lower(), Fraction(1))
    return min(x, MAX_EXPOSURE)


def score(priority: Priority, environment: str, ctx: Context) -> int:
    """``round(100 × weight(priority) × weight(environment) × exposure / 60)``, 0–100.

    Exact arithmetic (fractions), halves rounded up: the same inputs always give the same
    score, on every machine.
    """
    raw = PRIORITY_WEIGHT[priority] * environment_weight(environment) * exposure(ctx)
    value = raw * 100 / MAX_RAW
    return max(0, min(100, int(value + Fraction(1, 2))))

"""Pure functions for the enrichers: how events find what this package publishes.

No I/O and no third-party imports, so ``enrichers/`` can call them per event.

**Assumed-role sessions.** A CloudTrail event made with temporary credentials of a role
names the session, not the role: ``userIdentity.arn`` is
``arn:aws:sts::<account>:assumed-role/<RoleName>/<session>``, and the role's own ARN,
``arn:aws:iam::<account>:role/<path><RoleName>``, carries a path the session ARN leaves
out. The identity publisher therefore publishes each role twice on
``meta.identities.v1``: under its ARN, and under the **alias key**
``arn:aws:sts::<account>:assumed-role/<RoleName>`` (the session ARN without the session,
see :func:`assumed_role_key`), whose value is the role's record. An enricher tries the keys
of :func:`identity_keys` in order and takes the first that the table holds.

**Nodes.** The node publisher writes ``meta.instances.v1`` keyed by the node name (the
``host`` of syscall events, the same key as ``meta.nodes.v1``), value ``{name, cloud}``;
:func:`merge_instance` puts it into ``enrichment.node`` beside what ``meta.nodes.v1`` gave.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_SESSION = re.compile(r"^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/([^/]+)$")
_ROLE = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:.*/)?([^/]+)$")


@dataclass(frozen=True, slots=True)
class AssumedRole:
    """The parts of an assumed-role session ARN."""

    partition: str
    account_id: str
    role_name: str
    session_name: str

    @property
    def alias_key(self) -> str:
        """The key the role's record is also published under (the ARN without session)."""
        return f"arn:{self.partition}:sts::{self.account_id}:assumed-role/{self.role_name}"

    @property
    def pathless_role_arn(self) -> str:
        """The role ARN if the role has the default path ``/`` (a guess otherwise)."""
        return f"arn:{self.partition}:iam::{self.account_id}:role/{self.role_name}"


def parse_assumed_role(arn: Any) -> AssumedRole | None:
    """``arn:aws:sts::123456789012:assumed-role/Deploy/ci-42`` → its parts; None for any
    other ARN (users, roles, federated users, root)."""
    if not isinstance(arn, str):
        return None
    m = _SESSION.match(arn)
    return AssumedRole(m.group(1), m.group(2), m.group(3), m.group(4)) if m else None


def assumed_role_key(arn: Any) -> str | None:
    """The alias key of the role behind a session ARN (``…:assumed-role/<RoleName>``)."""
    parsed = parse_assumed_role(arn)
    return parsed.alias_key if parsed else None


def role_alias_key(role_arn: str) -> str | None:
    """The alias key a role's record is also published under (see the module docstring)."""
    m = _ROLE.match(role_arn)
    return f"arn:{m.group(1)}:sts::{m.group(2)}:assumed-role/{m.group(3)}" if m else None


class RoleIndex:
    """Role name → role ARN, per account: resolves a session ARN to its role's full ARN
    (with the path the session ARN leaves out). Role names are unique in an account."""

    __slots__ = ("_arns",)

    def __init__(self, role_arns: Iterable[str] = ()) -> None:
        self._arns: dict[tuple[str, str, str], str] = {}
        for arn in role_arns:
            self.add(arn)

    def add(self, role_arn: str) -> None:
        m = _ROLE.match(role_arn)
        if m is None:
            raise ValueError(f"not an IAM role ARN: {role_arn!r}")
        self._arns[(m.group(1), m.group(2), m.group(3))] = role_arn

    def __len__(self) -> int:
        return len(self._arns)

    def role_arn(self, session_arn: Any) -> str | None:
        """The ARN of the role a session was issued by; None when the ARN is not a session
        or the role is not known in that account."""
        s = parse_assumed_role(session_arn)
        if s is None:
            return None
        return self._arns.get((s.partition, s.account_id, s.role_name))


def identity_keys(user_identity: Mapping[str, Any]) -> list[str]:
    """The ``meta.identities.v1`` keys to try, in order, for a CloudTrail ``userIdentity``:

    1. ``arn`` itself (IAM users, roles, and any session published on its own);
    2. for a session, ``sessionContext.sessionIssuer.arn``: the role ARN with its path, as
       CloudTrail records it;
    3. for a session, the alias key of :func:`assumed_role_key` (records that carry no
       ``sessionContext``).
    """
    keys: list[str] = []
    arn = user_identity.get("arn")
    if isinstance(arn, str) and arn:
        keys.append(arn)
    session = parse_assumed_role(arn)
    if session is not None:
        context = user_identity.get("sessionContext")
        issuer = context.get("sessionIssuer") if isinstance(context, Mapping) else None
        issuer_arn = issuer.get("arn") if isinstance(issuer, Mapping) else None
        if isinstance(issuer_arn, str) and issuer_arn and issuer_arn not in keys:
            keys.append(issuer_arn)
        keys.append(session.alias_key)
    return keys


def instance_id_from_provider_id(provider_id: Any) -> str | None:
    """The EC2 instance id in a Kubernetes node's ``spec.providerID``
    (``aws:///eu-west-1a/i-0abc…``); None for other providers."""
    if not isinstance(provider_id, str) or not provider_id.startswith("aws://"):
        return None
    last = provider_id.rstrip("/").rsplit("/", 1)[-1]
    return last if last.startswith("i-") else None


def merge_instance(enrichment: dict[str, Any], value: Mapping[str, Any]) -> None:
    """Put a ``meta.instances.v1`` value into ``enrichment.node``: ``node.cloud`` (and
    ``node.name`` if missing), never overwriting what the event or ``meta.nodes.v1`` gave."""
    node = enrichment.get("node")
    if not isinstance(node, dict):
        node = enrichment["node"] = {}
    name = value.get("name")
    if name:
        node.setdefault("name", name)
    cloud = value.get("cloud")
    if isinstance(cloud, Mapping):
        current = node.get("cloud")
        if not isinstance(current, dict):
            current = node["cloud"] = {}
        for k, v in cloud.items():
            current.setdefault(k, v)

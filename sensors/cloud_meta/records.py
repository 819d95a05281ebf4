"""The records this package publishes, and their translation from AWS API payloads.

Pure code (no boto3, no network): each ``*_from_*`` function takes a payload in the exact
shape AWS returns it (the IMDS identity document, an Organizations ``Account``, an IAM
``User`` or ``Role`` as boto3 parses them) and returns a frozen record whose
:meth:`value` is the JSON object published on the metadata topic. Fields that AWS did not
give are left out of the value (missing, not null), so enrichment keeps its
missing-value semantics.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

ACCOUNT_ID = re.compile(r"^\d{12}$")
_IAM_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):(user|role)(/.*)$")


def encode(value: Mapping[str, Any]) -> bytes:
    """The bytes published for ``value`` (sorted keys: equal content, equal bytes)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _compact(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v not in (None, "")}


def tag_dict(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """``[{"Key": k, "Value": v}, …]`` (the shape of every AWS tag list) → ``{k: v}``."""
    out: dict[str, str] = {}
    for tag in tags or ():
        key = tag.get("Key")
        if isinstance(key, str) and key:
            value = tag.get("Value")
            out[key] = "" if value is None else str(value)
    return out


def tag_value(tags: Mapping[str, str], keys: Sequence[str]) -> str | None:
    """The value of the first of ``keys`` present in ``tags``, compared case-insensitively
    (``Environment`` and ``environment`` both match ``environment``); empty values skipped."""
    folded = {k.casefold(): v for k, v in tags.items()}
    for key in keys:
        value = tags.get(key)
        if value is None:
            value = folded.get(key.casefold())
        if value:
            return value
    return None


@dataclass(frozen=True, slots=True)
class TagKeys:
    """Which tags hold the environment, criticality, owner and team (first match wins)."""

    environment: tuple[str, ...] = ("environment", "env")
    criticality: tuple[str, ...] = ("criticality",)
    owner: tuple[str, ...] = ("owner",)
    team: tuple[str, ...] = ("team",)


# -- node: the EC2 instance identity ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Instance:
    """A node's cloud identity, from the IMDS instance identity document (and its tags)."""

    node: str
    account_id: str
    region: str
    zone: str
    instance_id: str
    instance_type: str = ""
    image_id: str = ""
    private_ip: str = ""
    architecture: str = ""
    tags: Mapping[str, str] | None = None  # None: instance tags are not exposed in IMDS

    def cloud(self) -> dict[str, Any]:
        """The ``enrichment.node.cloud`` object."""
        out = _compact({
            "provider": "aws", "account_id": self.account_id, "region": self.region,
            "zone": self.zone, "instance_id": self.instance_id,
            "instance_type": self.instance_type, "image_id": self.image_id,
            "private_ip": self.private_ip, "architecture": self.architecture,
        })  # fmt: skip
        if self.tags is not None:
            out["tags"] = dict(self.tags)
        return out

    def value(self, publisher: str) -> dict[str, Any]:
        """The ``meta.instances.v1`` value: a partial node record, ``{name, cloud}``."""
        return {"name": self.node, "cloud": self.cloud(), "publisher": publisher}


def instance_from_document(
    document: Mapping[str, Any], node: str, tags: Mapping[str, str] | None = None
) -> Instance:
    """The :class:`Instance` of an identity document (``/latest/dynamic/instance-identity/
    document``); ``ValueError`` when the fields every document has are missing."""
    missing = [k for k in ("accountId", "region", "instanceId") if not document.get(k)]
    if missing:
        raise ValueError(f"the instance identity document has no {', '.join(missing)}")
    text = {k: str(v) for k, v in document.items() if isinstance(v, (str, int))}
    return Instance(
        node=node,
        account_id=text["accountId"],
        region=text["region"],
        zone=text.get("availabilityZone", ""),
        instance_id=text["instanceId"],
        instance_type=text.get("instanceType", ""),
        image_id=text.get("imageId", ""),
        private_ip=text.get("privateIp", ""),
        architecture=text.get("architecture", ""),
        tags=None if tags is None else dict(tags),
    )


# -- accounts -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Account:
    """One cloud account of the inventory (``meta.accounts.v1``, key: :attr:`id`)."""

    id: str
    name: str = ""
    email: str = ""
    status: str = ""
    environment: str = ""
    criticality: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def value(self, publisher: str) -> dict[str, Any]:
        out = _compact({
            "id": self.id, "name": self.name, "email": self.email, "status": self.status,
            "environment": self.environment, "criticality": self.criticality,
            "owner": self.owner,
        })  # fmt: skip
        out["tags"] = dict(self.tags)
        out["publisher"] = publisher
        return out


def account_from_organizations(
    account: Mapping[str, Any], tags: Mapping[str, str], keys: TagKeys
) -> Account:
    """An Organizations ``Account`` (``ListAccounts``) with its tags (``ListTagsForResource``).
    ``State`` (the newer field) is preferred to the deprecated ``Status`` when present."""
    return Account(
        id=str(account["Id"]),
        name=str(account.get("Name") or ""),
        email=str(account.get("Email") or ""),
        status=str(account.get("State") or account.get("Status") or ""),
        environment=tag_value(tags, keys.environment) or "",
        criticality=tag_value(tags, keys.criticality) or "",
        owner=tag_value(tags, keys.owner) or "",
        tags=dict(tags),
    )


_ACCOUNT_FIELDS = ("name", "email", "status", "environment", "criticality", "owner")


def account_id_text(raw: Any, where: str) -> str:
    """A 12-digit account id from a YAML key (quoted, or an unquoted 12-digit number)."""
    text = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
    if not ACCOUNT_ID.match(text):
        raise ValueError(
            f"{where}: {raw!r} is not a 12-digit account id (quote ids that start with 0)"
        )
    return text


def account_from_file(account_id: str, entry: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The fields one YAML inventory entry sets (only those it names), checked."""
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key in _ACCOUNT_FIELDS:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError(f"{where}: {account_id}.{key} must be a string")
            out[key] = str(value)
        elif key == "tags":
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}: {account_id}.tags must be a mapping")
            out["tags"] = {str(k): "" if v is None else str(v) for k, v in value.items()}
        else:
            known = ", ".join((*_ACCOUNT_FIELDS, "tags"))
            raise ValueError(f"{where}: {account_id}: unknown field {key!r} (known: {known})")
    return out


def merge_accounts(
    listed: Mapping[str, Account], overrides: Mapping[str, Mapping[str, Any]], keys: TagKeys
) -> dict[str, Account]:
    """Organizations' accounts with the YAML inventory on top: a field the file sets wins,
    its tags are added to (and override) the account's tags, and an account only the file
    knows is published from the file alone. Environment, criticality and owner come from
    the merged tags unless the file sets them."""
    out = dict(listed)
    for account_id, fields in overrides.items():
        base = out.get(account_id) or Account(id=account_id)
        tags = {**base.tags, **fields.get("tags", {})}
        derived = {
            "environment": tag_value(tags, keys.environment) or base.environment,
            "criticality": tag_value(tags, keys.criticality) or base.criticality,
            "owner": tag_value(tags, keys.owner) or base.owner,
        }
        values = {f: getattr(base, f) for f in _ACCOUNT_FIELDS}
        values.update(derived)
        values.update({f: fields[f] for f in _ACCOUNT_FIELDS if f in fields})
        out[account_id] = Account(id=account_id, tags=tags, **values)
    return out


# -- identities ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Identity:
    """An IAM user or role (``meta.identities.v1``, key: :attr:`principal`, its ARN)."""

    principal: str
    kind: str  # user | role
    name: str
    account_id: str
    path: str = "/"
    unique_id: str = ""
    owner: str = ""
    team: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def value(self, publisher: str) -> dict[str, Any]:
        out = _compact({
            "principal": self.principal, "kind": self.kind, "name": self.name,
            "account_id": self.account_id, "path": self.path, "unique_id": self.unique_id,
            "owner": self.owner, "team": self.team,
        })  # fmt: skip
        out["tags"] = dict(self.tags)
        out["publisher"] = publisher
        return out


def parse_iam_arn(arn: str) -> tuple[str, str, str, str] | None:
    """``arn:aws:iam::<acct>:role/<path>Name`` → (partition, account, kind, path+name)."""
    m = _IAM_ARN.match(arn)
    return (m.group(1), m.group(2), m.group(3), m.group(4)) if m else None


def identity_from_iam(
    entity: Mapping[str, Any], kind: str, tags: Mapping[str, str], keys: TagKeys
) -> Identity:
    """An IAM ``User`` (``ListUsers``) or ``Role`` (``ListRoles``) with its tags
    (``ListUserTags`` / ``ListRoleTags``)."""
    arn = str(entity["Arn"])
    parsed = parse_iam_arn(arn)
    if parsed is None:
        raise ValueError(f"not an IAM user or role ARN: {arn!r}")
    name_key, id_key = ("UserName", "UserId") if kind == "user" else ("RoleName", "RoleId")
    return Identity(
        principal=arn,
        kind=kind,
        name=str(entity.get(name_key) or parsed[3].rsplit("/", 1)[-1]),
        account_id=parsed[1],
        path=str(entity.get("Path") or "/"),
        unique_id=str(entity.get(id_key) or ""),
        owner=tag_value(tags, keys.owner) or "",
        team=tag_value(tags, keys.team) or "",
        tags=dict(tags),
    )

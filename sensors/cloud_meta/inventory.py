"""What each publisher reads: a :class:`Snapshot` of one table per round.

* :class:`InstanceSource`: the node's instance identity and tags from IMDSv2;
* :class:`AccountSource`: Organizations' accounts (``ListAccounts``, then
  ``ListTagsForResource`` per account) and/or the YAML inventory, merged;
* :class:`IdentitySource`: IAM users and roles (``ListUsers``/``ListRoles``, then
  ``ListUserTags``/``ListRoleTags`` per principal) of each account, and each role again
  under its assumed-role alias key (:func:`.join.role_alias_key`).

A snapshot says which of the records published earlier it covers (``covers``): those it
no longer holds are deleted. A listing that failed covers nothing, so a refused call never
deletes what is known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from falconet.enrichers.cloud_keys import role_alias_key
from falconet.errors import ConfigError

from . import aws as A
from .imds import ImdsClient
from .options import Options
from .records import (
    Account,
    Identity,
    account_from_file,
    account_from_organizations,
    account_id_text,
    identity_from_iam,
    instance_from_document,
    merge_accounts,
    parse_iam_arn,
    tag_dict,
)

log = logging.getLogger("falconet.sensors.cloud_meta")


def _nothing(key: str, value: Mapping[str, Any]) -> bool:
    return False


def _everything(key: str, value: Mapping[str, Any]) -> bool:
    return True


@dataclass(slots=True)
class Snapshot:
    """The records of one table now (key → value), and which earlier records it covers."""

    records: dict[str, dict[str, Any]]
    covers: Callable[[str, Mapping[str, Any]], bool] = _nothing
    problems: list[str] = field(default_factory=list)  # parts that could not be read


class InstanceSource:
    """The node's EC2 identity, keyed by the node name (``meta.instances.v1``)."""

    name = "imds"
    table = "instances"

    def __init__(self, options: Options, client: ImdsClient | None = None) -> None:
        self.options = options
        self.refresh_seconds = options.imds_refresh_seconds
        self.client = client or ImdsClient(options.imds_endpoint, options.imds_timeout)

    def fetch(self) -> Snapshot:
        document = self.client.identity_document()
        tags = self.client.tags()
        try:
            instance = instance_from_document(document, self.options.node_name, tags)
        except ValueError as exc:
            raise A.AwsError(f"IMDS: {exc}", setup=False) from None
        node = self.options.node_name
        return Snapshot({node: instance.value(self.options.publisher_id)})


def load_accounts_file(path: str) -> dict[str, dict[str, Any]]:
    """The YAML inventory: ``accounts:`` mapping each account id to the fields it sets."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(
            f"cannot read cloud_meta.accounts_file {path}: {exc.strerror or exc}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"cloud_meta.accounts_file {path} is not valid YAML: {exc}") from None
    accounts = data.get("accounts") if isinstance(data, Mapping) else None
    if not isinstance(accounts, Mapping):
        raise ConfigError(f"{path}: expected a mapping `accounts:` of account id → fields")
    out: dict[str, dict[str, Any]] = {}
    try:
        for raw_id, entry in accounts.items():
            account_id = account_id_text(raw_id, path)
            if entry is None:
                entry = {}
            if not isinstance(entry, Mapping):
                raise ValueError(f"{path}: {account_id} must map to its fields")
            out[account_id] = account_from_file(account_id, entry, path)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return out


class _AwsSource:
    """A source read through the AWS APIs: its options and boto3 clients, made on first use."""

    def __init__(self, options: Options, clients: A.Clients | None = None) -> None:
        self.options = options
        self.refresh_seconds = options.refresh_seconds
        self._clients = clients

    @property
    def clients(self) -> A.Clients:
        if self._clients is None:
            self._clients = A.Clients(self.options.region, self.options.endpoint_url)
        return self._clients


class AccountSource(_AwsSource):
    """The organisation's accounts (``meta.accounts.v1``, key: account id)."""

    name = "accounts"
    table = "accounts"

    def list_organization(self) -> dict[str, Account]:
        org = self.clients.client("organizations")
        keys = self.options.tag_keys
        out: dict[str, Account] = {}
        for account in A.pages(org, "list_accounts", "Accounts"):
            account_id = str(account["Id"])
            tags = tag_dict(A.pages(org, "list_tags_for_resource", "Tags", f"account {account_id}",
                                    ResourceId=account_id))  # fmt: skip
            out[account_id] = account_from_organizations(account, tags, keys)
        return out

    def fetch(self) -> Snapshot:
        listed = self.list_organization() if self.options.organizations else {}
        overrides = (
            load_accounts_file(self.options.accounts_file) if self.options.accounts_file else {}
        )
        merged = merge_accounts(listed, overrides, self.options.tag_keys)
        pid = self.options.publisher_id
        return Snapshot({k: a.value(pid) for k, a in merged.items()}, _everything)


class IdentitySource(_AwsSource):
    """IAM users and roles (``meta.identities.v1``, key: ARN, plus role alias keys)."""

    name = "identities"
    table = "identities"

    def scan(self, clients: A.Clients) -> list[Identity]:
        """Every user and role of the account of ``clients``, with their tags."""
        iam = clients.client("iam")
        keys = self.options.tag_keys
        found: list[Identity] = []
        for user in A.pages(iam, "list_users", "Users"):
            tags = tag_dict(A.pages(iam, "list_user_tags", "Tags", str(user.get("Arn")),
                                    UserName=user["UserName"]))  # fmt: skip
            found.append(identity_from_iam(user, "user", tags, keys))
        for role in A.pages(iam, "list_roles", "Roles"):
            tags = tag_dict(A.pages(iam, "list_role_tags", "Tags", str(role.get("Arn")),
                                    RoleName=role["RoleName"]))  # fmt: skip
            found.append(identity_from_iam(role, "role", tags, keys))
        return found

    def _targets(self) -> list[tuple[str, Callable[[], A.Clients]]]:
        """(account id, clients) of each account to read."""
        if not self.options.assume_roles:
            sts = self.clients.client("sts")
            ident = A.call(sts.get_caller_identity, "sts:GetCallerIdentity")
            return [(str(ident["Account"]), lambda: self.clients)]
        return [
            (arn.split(":")[4], lambda arn=arn: self.clients.assume(arn))
            for arn in self.options.assume_roles
        ]

    def fetch(self) -> Snapshot:
        pid = self.options.publisher_id
        records: dict[str, dict[str, Any]] = {}
        scanned: set[str] = set()
        problems: list[str] = []
        first_error: A.AwsError | None = None
        for account_id, clients in self._targets():
            try:
                identities = self.scan(clients())
            except A.AwsError as exc:
                first_error = first_error or exc
                problems.append(f"account {account_id}: {exc}")
                continue
            scanned.add(account_id)
            for ident in identities:
                value = ident.value(pid)
                records[ident.principal] = value
                if ident.kind == "role":
                    alias = role_alias_key(ident.principal)
                    if alias:
                        records[alias] = value
        if not scanned and first_error is not None:
            raise first_error

        def covers(key: str, value: Mapping[str, Any]) -> bool:
            account = value.get("account_id")
            if not account:
                parsed = parse_iam_arn(key)
                account = parsed[1] if parsed else None
            return account in scanned

        return Snapshot(records, covers, problems)

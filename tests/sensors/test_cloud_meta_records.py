"""Translation of real AWS payloads into the published records, and the join functions the
enrichers call (assumed-role session → role, provider id → instance id).

The fixtures are in the shape AWS returns them: the IMDS identity document as IMDS
prints it, and the Organizations/IAM responses as the AWS CLI prints them (boto3's
parsed shape, which is what the publishers receive)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from falconet.config import Config
from falconet.enrichers.cloud_keys import (
    RoleIndex,
    assumed_role_key,
    identity_keys,
    instance_id_from_provider_id,
    parse_assumed_role,
    role_alias_key,
)
from falconet.errors import ConfigError
from falconet.sensors.cloud_meta.inventory import load_accounts_file
from falconet.sensors.cloud_meta.options import IMDS_IPV6, SETTINGS, Options
from falconet.sensors.cloud_meta.records import (
    TagKeys,
    account_from_organizations,
    encode,
    identity_from_iam,
    instance_from_document,
    merge_accounts,
    tag_dict,
)
from tests.conftest import FIXTURES

F = FIXTURES / "cloud_meta"
KEYS = TagKeys()


def load(name: str) -> dict:
    return json.loads((F / name).read_text())


def test_instance_from_identity_document() -> None:
    inst = instance_from_document(load("instance-identity-document.json"), "node-a", None)
    assert inst.cloud() == {
        "provider": "aws", "account_id": "418295730164", "region": "eu-west-1",
        "zone": "eu-west-1b", "instance_id": "i-0a7f3c9e21b4d5f68", "instance_type": "m6i.xlarge",
        "image_id": "ami-0c1c30571d2dae5c9", "private_ip": "10.20.31.47", "architecture": "x86_64",
    }  # fmt: skip
    with pytest.raises(ValueError, match="instanceId"):
        instance_from_document({"accountId": "418295730164", "region": "eu-west-1"}, "n")


def test_accounts_from_organizations_with_tags() -> None:
    listed = load("organizations-list-accounts.json")["Accounts"]
    tags = tag_dict(load("organizations-list-tags-for-resource.json")["Tags"])
    prod = account_from_organizations(listed[1], tags, KEYS)
    assert prod.value("p") == {
        "id": "418295730164", "name": "prod-payments", "email": "aws-prod-payments@example.com",
        "status": "ACTIVE", "environment": "production", "criticality": "high",
        "owner": "team-payments", "publisher": "p",
        "tags": {"Environment": "production", "criticality": "high", "owner": "team-payments",
                 "cost-center": "4210"},
    }  # fmt: skip
    # State (the newer field) wins over the deprecated Status
    assert account_from_organizations(listed[2], {}, KEYS).status == "PENDING_CLOSURE"
    # configurable tag keys, first present wins
    keys = TagKeys(environment=("stage", "Environment"), owner=("cost-center",))
    custom = account_from_organizations(listed[1], tags, keys)
    assert (custom.environment, custom.owner) == ("production", "4210")


def test_yaml_inventory_overrides_organizations() -> None:
    listed_raw = load("organizations-list-accounts.json")["Accounts"]
    tags = tag_dict(load("organizations-list-tags-for-resource.json")["Tags"])
    listed = {a["Id"]: account_from_organizations(a, tags if a["Id"] == "418295730164" else {}, KEYS)
              for a in listed_raw}  # fmt: skip
    merged = merge_accounts(listed, load_accounts_file(str(F / "accounts.yaml")), KEYS)
    assert set(merged) == {"111111111111", "418295730164", "022233344455", "999988887777"}
    prod = merged["418295730164"]
    assert prod.owner == "team-payments-oncall"  # the file's field wins over the tag
    assert prod.environment == "production" and prod.name == "prod-payments"
    assert prod.tags["data-classification"] == "pci" and prod.tags["cost-center"] == "4210"
    assert (merged["022233344455"].environment, merged["022233344455"].criticality) == (
        "lab",
        "low",
    )
    partner = merged["999988887777"].value("p")
    assert partner == {"id": "999988887777", "name": "partner-billing", "environment": "production",
                       "criticality": "medium", "owner": "team-billing", "tags": {},
                       "publisher": "p"}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accounts:\n  12345: {name: x}\n", "not a 12-digit account id"),
        ("accounts:\n  '123456789012': {nmae: x}\n", "unknown field 'nmae'"),
        ("accounts:\n  '123456789012': {tags: [a]}\n", "tags must be a mapping"),
        ("- 123456789012\n", "expected a mapping `accounts:`"),
        ("accounts: {'123456789012': {name: [x]}}\n", "name must be a string"),
    ],
)
def test_yaml_inventory_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_accounts_file(str(path))


def test_identities_from_iam() -> None:
    role_tags = tag_dict(load("iam-list-role-tags.json")["Tags"])
    deployer = identity_from_iam(load("iam-list-roles.json")["Roles"][0], "role", role_tags, KEYS)
    assert deployer.value("p") == {
        "principal": "arn:aws:iam::418295730164:role/deploy/payments-deployer", "kind": "role",
        "name": "payments-deployer", "account_id": "418295730164", "path": "/deploy/",
        "unique_id": "AROAW2ZQ4MJ7EXAMPLE01", "owner": "alice@example.com",
        "team": "team-payments", "tags": role_tags, "publisher": "p",
    }  # fmt: skip
    alice = identity_from_iam(load("iam-list-users.json")["Users"][0], "user", {}, KEYS)
    assert (alice.kind, alice.name, alice.principal) == (
        "user",
        "alice",
        "arn:aws:iam::418295730164:user/alice",
    )
    assert "owner" not in alice.value("p")  # missing, not null


def test_session_arn_maps_to_role_arn_with_its_path() -> None:
    record = load("cloudtrail-assumed-role.json")
    session_arn = record["userIdentity"]["arn"]
    s = parse_assumed_role(session_arn)
    assert s is not None and (s.account_id, s.role_name, s.session_name) == (
        "418295730164", "payments-deployer", "gha-run-8841")  # fmt: skip
    roles = [r["Arn"] for r in load("iam-list-roles.json")["Roles"]]
    index = RoleIndex(roles)
    assert index.role_arn(session_arn) == "arn:aws:iam::418295730164:role/deploy/payments-deployer"
    # the path is not in the session ARN: without the index, only a guess is possible
    assert s.pathless_role_arn == "arn:aws:iam::418295730164:role/payments-deployer"
    assert index.role_arn("arn:aws:sts::999988887777:assumed-role/payments-deployer/x") is None
    assert index.role_arn("arn:aws:iam::418295730164:user/alice") is None
    assert RoleIndex(["arn:aws-cn:iam::418295730164:role/r"]).role_arn(
        "arn:aws-cn:sts::418295730164:assumed-role/r/s") == "arn:aws-cn:iam::418295730164:role/r"  # fmt: skip


def test_alias_key_of_a_role_matches_its_sessions() -> None:
    role = "arn:aws:iam::418295730164:role/deploy/payments-deployer"
    session = "arn:aws:sts::418295730164:assumed-role/payments-deployer/gha-run-8841"
    assert role_alias_key(role) == assumed_role_key(session)
    assert role_alias_key(role) == "arn:aws:sts::418295730164:assumed-role/payments-deployer"
    assert assumed_role_key("arn:aws:iam::418295730164:user/alice") is None
    assert assumed_role_key(None) is None


def test_identity_keys_for_cloudtrail_user_identity() -> None:
    ident = load("cloudtrail-assumed-role.json")["userIdentity"]
    assert identity_keys(ident) == [
        "arn:aws:sts::418295730164:assumed-role/payments-deployer/gha-run-8841",
        "arn:aws:iam::418295730164:role/deploy/payments-deployer",
        "arn:aws:sts::418295730164:assumed-role/payments-deployer",
    ]
    bare = {"type": "AssumedRole", "arn": ident["arn"]}  # no sessionContext
    assert identity_keys(bare)[-1] == "arn:aws:sts::418295730164:assumed-role/payments-deployer"
    user = {"type": "IAMUser", "arn": "arn:aws:iam::418295730164:user/alice"}
    assert identity_keys(user) == ["arn:aws:iam::418295730164:user/alice"]
    assert identity_keys({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}) == []


def test_instance_id_from_provider_id() -> None:
    assert (
        instance_id_from_provider_id("aws:///eu-west-1b/i-0a7f3c9e21b4d5f68")
        == "i-0a7f3c9e21b4d5f68"
    )
    assert instance_id_from_provider_id("gce://proj/europe-west1-b/node-1") is None
    assert instance_id_from_provider_id(None) is None


def test_encoding_is_stable() -> None:
    assert encode({"b": 1, "a": {"d": 2, "c": 3}}) == encode({"a": {"c": 3, "d": 2}, "b": 1})


def test_options_from_environment_and_command_line() -> None:
    cfg = Config.load(env={})
    env = {"FALCONET_CLOUD_META_IDENTITIES": "true", "FALCONET_CLOUD_META_TAGS_OWNER": "Owner, owner-email",
           "FALCONET_CLOUD_META_IMDS_IPV6": "yes"}  # fmt: skip
    opts = Options.from_config(
        cfg, {"cloud_meta.imds": True, "cloud_meta.node_name": "n1"}, env=env
    )
    assert opts.modes == ("imds", "identities")
    assert opts.tag_keys.owner == ("Owner", "owner-email")
    assert opts.imds_endpoint == IMDS_IPV6 and opts.node_name == "n1"
    with pytest.raises(ConfigError, match="nothing to publish"):
        Options.from_config(cfg, env={})
    with pytest.raises(ConfigError, match="not an IAM role ARN"):
        Options.from_config(cfg, {"cloud_meta.identities": True,
                                  "cloud_meta.assume_roles": "arn:aws:iam::123:user/x"}, env={})  # fmt: skip
    with pytest.raises(
        ConfigError,
        match="FALCONET_CLOUD_META_REFRESH_SECONDS: cloud_meta.refresh_seconds must be an integer",
    ):
        Options.from_config(cfg, env={"FALCONET_CLOUD_META_REFRESH_SECONDS": "soon"})
    with pytest.raises(ConfigError, match="needs a source"):
        Options.from_config(
            cfg, {"cloud_meta.accounts": True, "cloud_meta.organizations": False}, env={}
        )
    assert all(s.key.startswith("cloud_meta.") and s.doc for s in SETTINGS)


def test_settings_are_documented() -> None:
    from tests.conftest import ROOT

    page = (ROOT / "docs" / "sensors" / "cloud-meta.md").read_text()
    for s in SETTINGS:
        assert f"`{s.key}`" in page and f"`{s.env}`" in page, s.key


def test_table_diff_publishes_changes_and_deletes_only_covered_records() -> None:
    from falconet.sensors.cloud_meta.inventory import Snapshot
    from falconet.sensors.cloud_meta.table import MetaTable

    table = MetaTable("falconet.meta.identities.v1", "cloud-meta")
    same = {"principal": "arn:aws:iam::111111111111:user/a", "account_id": "111111111111"}
    table.published = {
        "arn:aws:iam::111111111111:user/a": encode(same),
        "arn:aws:iam::111111111111:user/gone": encode({"account_id": "111111111111"}),
        "arn:aws:iam::222222222222:user/unread": encode({"account_id": "222222222222"}),
    }
    changed = {"principal": "arn:aws:iam::111111111111:role/r", "account_id": "111111111111"}
    snap = Snapshot(
        {"arn:aws:iam::111111111111:user/a": dict(reversed(list(same.items()))),
         "arn:aws:iam::111111111111:role/r": changed},
        covers=lambda key, value: value.get("account_id") == "111111111111",
    )  # fmt: skip
    upserts, deletes = table.diff(snap)
    assert list(upserts) == ["arn:aws:iam::111111111111:role/r"]  # same content: not republished
    assert deletes == ["arn:aws:iam::111111111111:user/gone"]  # the unread account is kept

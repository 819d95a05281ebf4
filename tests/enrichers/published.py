"""Metadata tables as the publishers fill them: their own translation code run over real
API payloads (tests/fixtures/k8s_meta, tests/fixtures/cloud_meta), so the enrichment tests
join exactly what lands on the ``meta.*.v1`` topics."""

from __future__ import annotations

from typing import Any

import orjson

from falconet.enrichers.cloud_keys import role_alias_key
from falconet.sensors.cloud_meta.records import (
    TagKeys,
    account_from_organizations,
    identity_from_iam,
    instance_from_document,
    tag_dict,
)
from falconet.sensors.k8s_meta.translate import (
    Filters,
    Owner,
    container_records,
    namespace_record,
    node_record,
    pod_record,
)
from tests.conftest import FIXTURES

CLUSTER = "eu-1"
NODE = "ip-10-0-12-34.eu-west-1.compute.internal"
CONTAINER = "3f5c9a1e7b2d"  # the payments-api container of pod_deployment.json
POD_UID = "6f1d3c2a-8e4b-4f7a-b0c9-2d5e7a9f1b34"
ACCOUNT = "418295730164"  # prod-payments, the account of the IMDS document
ROLE = "arn:aws:iam::418295730164:role/deploy/payments-deployer"


def k8s(name: str) -> dict[str, Any]:
    return orjson.loads((FIXTURES / "k8s_meta" / name).read_bytes())


def cloud(name: str) -> Any:
    return orjson.loads((FIXTURES / "cloud_meta" / name).read_bytes())


def records() -> dict[str, dict[str, dict[str, Any]]]:
    """table → key → value, as the k8s-meta and cloud-meta publishers publish them."""
    filters = Filters(cluster=CLUSTER)
    pod = k8s("pod_deployment.json")
    ns = k8s("namespace.json")
    node = k8s("node_aws.json")
    keys = TagKeys()
    org_account = next(a for a in cloud("organizations-list-accounts.json")["Accounts"]
                       if a["Id"] == ACCOUNT)  # fmt: skip
    account = account_from_organizations(
        org_account, tag_dict(cloud("organizations-list-tags-for-resource.json")["Tags"]), keys
    )
    role = next(r for r in cloud("iam-list-roles.json")["Roles"] if r["Arn"] == ROLE)
    identity = identity_from_iam(role, "role", tag_dict(cloud("iam-list-role-tags.json")["Tags"]), keys)
    instance = instance_from_document(cloud("instance-identity-document.json"), NODE)
    ident_value = identity.value("cloud-meta")
    return {
        "containers": container_records(pod, filters),
        "pods": {POD_UID: pod_record(pod, Owner("Deployment", "payments-api"), filters)},
        "namespaces": {"prod": namespace_record(ns, filters)},
        "nodes": {NODE: node_record(node, filters)},
        "instances": {NODE: instance.value("cloud-meta")},
        "accounts": {ACCOUNT: account.value("cloud-meta")},
        "identities": {ROLE: ident_value, role_alias_key(ROLE): ident_value},
    }


def tables(recs: dict[str, dict[str, dict[str, Any]]] | None = None) -> dict[str, dict[bytes, bytes]]:
    """The worker's view: bytes keys and JSON bytes values."""
    recs = records() if recs is None else recs
    return {t: {k.encode(): orjson.dumps(v) for k, v in rows.items()} for t, rows in recs.items()}

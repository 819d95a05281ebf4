"""MetadataEnricher: events joined with the tables exactly as the publishers fill them."""

from __future__ import annotations

import copy

import orjson

from falconet.enrichers.metadata import MetadataEnricher
from falconet.event import Event
from tests.enrichers import published as P
from tests.helpers import syscall


def enricher(recs=None) -> MetadataEnricher:
    return MetadataEnricher(P.tables(recs))


def cloudtrail(record: dict) -> Event:
    return Event("aws_cloudtrail", record["eventName"], 1, "collector", "x", record)


def audit(namespace: str, user: str, cluster: str = "eu-1") -> Event:
    payload = {"kind": "Event", "auditID": "a1", "verb": "create", "user": {"username": user},
               "objectRef": {"resource": "pods", "namespace": namespace, "name": "x"}}  # fmt: skip
    return Event("k8s_audit", "create", 1, "webhook", "a1", payload, {}, {"cluster": cluster})


def test_syscall_joins_container_pod_namespace_node_instance_and_account() -> None:
    ev = syscall("execve", container=P.CONTAINER, host=P.NODE)
    enricher().enrich(ev)
    e = ev.enrichment
    assert e["container"]["name"] == "api" and e["container"]["pod_uid"] == P.POD_UID
    assert e["container"]["image"] == {
        "repository": "registry.example.com/payments/api",
        "tag": "1.8.2",
        "digest": e["container"]["image"]["digest"],
    }
    assert e["k8s"]["pod"]["name"] == "payments-api-7c9d8b6f5d-x8k2p"
    assert e["k8s"]["pod"]["owner"] == {"kind": "Deployment", "name": "payments-api"}
    assert e["k8s"]["ns"]["labels"]["environment"] == "production"
    assert e["node"]["name"] == P.NODE and e["node"]["provider_id"].startswith("aws:///")
    assert e["node"]["cloud"]["instance_id"] == "i-0a7f3c9e21b4d5f68"  # IMDS wins over providerID
    assert e["cloud"]["account"]["name"] == "prod-payments"
    assert e["cloud"]["account"]["owner"] == "team-payments"


def test_unknown_container_still_gets_node_and_account() -> None:
    ev = syscall("execve", container="0123456789ab", host=P.NODE)
    enricher().enrich(ev)
    assert "container" not in ev.enrichment and "k8s" not in ev.enrichment
    assert ev.enrichment["cloud"]["account"]["id"] == P.ACCOUNT


def test_host_process_gets_node_only() -> None:
    ev = syscall("execve", container="host", host=P.NODE)
    enricher().enrich(ev)
    assert set(ev.enrichment) == {"node", "cloud"}


def test_inline_enrichment_wins_and_runtime_labels_join_the_pod() -> None:
    """A recorded event carrying its own container metadata (with kubelet's labels, no
    pod_uid): the table does not overwrite it, and the labels lead to the pod."""
    recs = P.records()
    del recs["containers"][P.CONTAINER]
    inline = {"container": {"id": P.CONTAINER, "name": "recorded-name",
                            "labels": {"io.kubernetes.pod.uid": P.POD_UID,
                                       "io.kubernetes.pod.namespace": "prod"}}}  # fmt: skip
    ev = syscall("execve", container=P.CONTAINER, host=P.NODE, enrichment=copy.deepcopy(inline))
    enricher(recs).enrich(ev)
    assert ev.enrichment["container"]["name"] == "recorded-name"
    assert ev.enrichment["k8s"]["pod"]["uid"] == P.POD_UID
    assert ev.enrichment["k8s"]["ns"]["name"] == "prod"


def test_namespace_from_the_container_record_when_the_pod_is_unknown() -> None:
    recs = P.records()
    recs["pods"].clear()
    ev = syscall("execve", container=P.CONTAINER, host=P.NODE)
    enricher(recs).enrich(ev)
    assert "pod" not in ev.enrichment["k8s"]
    assert ev.enrichment["k8s"]["ns"]["name"] == "prod"


def test_cloudtrail_session_resolves_to_its_role_and_account() -> None:
    record = P.cloud("cloudtrail-assumed-role.json")
    ev = cloudtrail(record)
    enricher().enrich(ev)
    assert ev.enrichment["identity"]["principal"] == P.ROLE
    assert ev.enrichment["identity"]["owner"] == "alice@example.com"
    assert ev.enrichment["cloud"]["account"]["environment"] == "production"
    # without sessionContext the alias key finds the role
    bare = copy.deepcopy(record)
    del bare["userIdentity"]["sessionContext"]
    ev = cloudtrail(bare)
    enricher().enrich(ev)
    assert ev.enrichment["identity"]["team"] == "team-payments"


def test_k8s_audit_namespace_identity_and_cluster() -> None:
    recs = P.records()
    recs["identities"]["system:serviceaccount:ci:runner"] = {
        "principal": "system:serviceaccount:ci:runner", "kind": "serviceaccount", "owner": "team-ci",
    }  # fmt: skip
    ev = audit("prod", "system:serviceaccount:ci:runner")
    enricher(recs).enrich(ev)
    assert ev.enrichment["k8s"]["ns"]["labels"]["team"] == "payments"
    assert ev.enrichment["k8s"]["cluster"] == "eu-1"
    assert ev.enrichment["identity"]["owner"] == "team-ci"


def test_k8s_audit_of_a_namespace_itself_joins_it_by_name() -> None:
    payload = {"kind": "Event", "auditID": "a2", "verb": "patch", "user": {"username": "bob"},
               "objectRef": {"resource": "namespaces", "name": "prod"}}  # fmt: skip
    ev = Event("k8s_audit", "patch", 1, "webhook", "a2", payload)
    enricher().enrich(ev)
    assert ev.enrichment["k8s"]["ns"]["labels"]["environment"] == "production"
    assert "identity" not in ev.enrichment


def test_a_bad_table_value_is_ignored() -> None:
    tables = P.tables()
    tables["pods"][P.POD_UID.encode()] = b"not json"
    tables["accounts"][P.ACCOUNT.encode()] = orjson.dumps(["a", "list"])
    ev = syscall("execve", container=P.CONTAINER, host=P.NODE)
    MetadataEnricher(tables).enrich(ev)
    assert ev.enrichment["container"]["name"] == "api"
    assert "pod" not in ev.enrichment.get("k8s", {}) and "cloud" not in ev.enrichment

"""Fields over enrichment: Falco's container.*/k8s.* names and falconet's own falconet.*.

Events are enriched from tables filled by the publishers' own translation of real API
payloads (tests/enrichers/published.py), so every field is checked against what the
metadata topics really carry. Missing enrichment gives Falco's missing value: comparisons
false, ``<NA>`` in text output, ``null`` in JSON ``output_fields``.
"""

from __future__ import annotations

import copy

import pytest
from click.testing import CliRunner

from falconet.cli import main
from falconet.enrichers.metadata import MetadataEnricher
from falconet.event import Event
from falconet.rules.fields import falconet as F
from falconet.rules.fields import registry_for
from tests.enrichers import published as P
from tests.helpers import engine, syscall


def get(ev: Event, expr: str):
    name, _, arg = expr.partition("[")
    return registry_for(ev.source).bind(name, arg[:-1] if arg else None).extract(ev)


def enriched(ev: Event, recs=None) -> Event:
    MetadataEnricher(P.tables(recs)).enrich(ev)
    return ev


@pytest.fixture()
def shell() -> Event:
    return enriched(syscall("execve", container=P.CONTAINER, host=P.NODE, proc={"name": "bash"}))


def test_container_and_k8s_fields_from_published_records(shell: Event) -> None:
    assert get(shell, "container.id") == P.CONTAINER
    assert get(shell, "container.name") == "api"
    assert get(shell, "container.type") == "containerd"  # the k8s record names it `runtime`
    assert get(shell, "container.image.repository") == "registry.example.com/payments/api"
    assert get(shell, "container.image.tag") == "1.8.2"
    assert get(shell, "container.image.digest").startswith("sha256:")
    assert get(shell, "k8s.pod.name") == "payments-api-7c9d8b6f5d-x8k2p"
    assert get(shell, "k8s.pod.uid") == P.POD_UID
    assert get(shell, "k8s.pod.label[team]") == "payments"
    assert get(shell, "k8s.pod.labels") == (
        "app.kubernetes.io/name:payments-api, app.kubernetes.io/part-of:payments, "
        "pod-template-hash:7c9d8b6f5d, team:payments"
    )
    assert get(shell, "k8s.ns.name") == "prod"
    assert get(shell, "k8s.ns.label[environment]") == "production"
    assert "environment:production" in get(shell, "k8s.ns.labels")
    # the k8s publisher does not know what only the node knows
    assert get(shell, "container.privileged") is None
    assert get(shell, "container.mounts") is None


def test_runtime_record_fields() -> None:
    """A record of the container runtime publisher (privileged, mounts) joins the same way."""
    recs = P.records()
    recs["containers"][P.CONTAINER] = {
        "id": P.CONTAINER, "name": "api", "type": "containerd", "runtime": "containerd",
        "image": {"name": "registry.example.com/payments/api:1.8.2",
                  "repository": "registry.example.com/payments/api", "tag": "1.8.2",
                  "digest": "sha256:ab", "id": "sha256:cd"},
        "privileged": True,
        "mounts": [{"source": "/var/run/docker.sock", "dest": "/var/run/docker.sock",
                    "mode": "", "rdwr": True, "propagation": "rprivate"}],
        "labels": {"io.kubernetes.pod.uid": P.POD_UID}, "pod_uid": P.POD_UID,
    }  # fmt: skip
    ev = enriched(syscall("execve", container=P.CONTAINER, host=P.NODE), recs)
    assert get(ev, "container.privileged") is True
    assert get(ev, "container.mounts") == "/var/run/docker.sock:/var/run/docker.sock::true:rprivate"
    assert get(ev, "container.mount.dest[/var/run/docker.sock]") == "/var/run/docker.sock"
    assert get(ev, "k8s.ns.name") == "prod"


def test_falconet_syscall_fields(shell: Event) -> None:
    expected = {
        "falconet.workload.kind": "Deployment",
        "falconet.workload.name": "payments-api",
        "falconet.cluster": "eu-1",
        "falconet.node.name": P.NODE,
        "falconet.ns.label[team]": "payments",
        "falconet.cloud.provider": "aws",
        "falconet.cloud.account_id": P.ACCOUNT,
        "falconet.cloud.region": "eu-west-1",
        "falconet.cloud.zone": "eu-west-1b",
        "falconet.cloud.instance_id": "i-0a7f3c9e21b4d5f68",
        "falconet.cloud.instance_type": "m6i.xlarge",
        "falconet.account.id": P.ACCOUNT,
        "falconet.account.name": "prod-payments",
        "falconet.account.environment": "production",
        "falconet.account.criticality": "high",
        "falconet.account.owner": "team-payments",
        # the pod's `team` label is more specific than the account's owner
        "falconet.owner": "payments",
        "falconet.environment": "production",
    }
    assert {k: get(shell, k) for k in expected} == expected


def test_cloud_fields_from_the_node_record_alone() -> None:
    recs = P.records()
    recs["instances"].clear()
    ev = enriched(syscall("execve", container=P.CONTAINER, host=P.NODE), recs)
    assert get(ev, "falconet.cloud.provider") == "aws"
    assert get(ev, "falconet.cloud.instance_id") == "i-0abc1234def567890"  # providerID
    assert get(ev, "falconet.cloud.zone") == "eu-west-1a"
    assert get(ev, "falconet.cloud.account_id") is None
    assert get(ev, "falconet.account.name") is None


def test_owner_and_environment_fall_back_in_order() -> None:
    recs = P.records()
    recs["pods"][P.POD_UID]["labels"]["owner"] = "alice"
    ev = enriched(syscall("execve", container=P.CONTAINER, host=P.NODE), recs)
    assert get(ev, "falconet.owner") == "alice"  # `owner` before `team`
    del recs["pods"][P.POD_UID]["labels"]["owner"]
    recs["pods"][P.POD_UID]["labels"].pop("team")
    ev = enriched(syscall("execve", container=P.CONTAINER, host=P.NODE), recs)
    assert get(ev, "falconet.owner") == "payments"  # the namespace's `team` label
    recs["namespaces"]["prod"]["labels"].pop("team")
    ev = enriched(syscall("execve", container=P.CONTAINER, host=P.NODE), recs)
    assert get(ev, "falconet.owner") == "team-payments"  # the account's owner tag
    assert F.owner(ev) == "team-payments"
    recs["accounts"].clear()
    recs["instances"][P.NODE]["cloud"]["tags"] = {"Owner": "platform", "Environment": "staging"}
    ev = enriched(syscall("execve", container=P.CONTAINER, host=P.NODE), recs)
    assert get(ev, "falconet.owner") == "platform"  # the node's tag, any case
    assert get(ev, "falconet.environment") == "production"  # the namespace's label
    recs["namespaces"]["prod"]["labels"].pop("environment")
    ev = enriched(syscall("execve", container=P.CONTAINER, host=P.NODE), recs)
    assert get(ev, "falconet.environment") == "staging"
    assert F.environment(ev) == "staging"


def test_missing_enrichment_is_missing_not_empty() -> None:
    bare = syscall("execve", container=P.CONTAINER, host="elsewhere")
    for name in ("container.name", "k8s.pod.name", "k8s.ns.name", "k8s.ns.label[environment]",
                 "k8s.ns.labels", "falconet.workload.name", "falconet.cluster",
                 "falconet.node.name", "falconet.cloud.region", "falconet.account.id",
                 "falconet.owner", "falconet.environment"):  # fmt: skip
        assert get(bare, name) is None, name


def test_missing_values_in_conditions_and_outputs(shell: Event) -> None:
    rule = (
        "- rule: Shell in prod workload\n  desc: d\n"
        "  condition: evt.type=execve and proc.name=bash and falconet.environment != lab\n"
        "  output: shell in %falconet.workload.kind/%falconet.workload.name ns=%k8s.ns.name "
        "owner=%falconet.owner account=%falconet.account.name\n"
        "  priority: WARNING\n"
    )
    e = engine(rule, suggested_output=False)
    [d] = e.process(shell)
    assert "shell in Deployment/payments-api ns=prod owner=payments" in d.output
    assert d.output_fields["falconet.account.name"] == "prod-payments"
    # without metadata: `!=` on a missing value is false, so the rule does not fire ...
    bare = syscall("execve", container=P.CONTAINER, host="elsewhere", proc={"name": "bash"})
    assert e.process(bare) == []
    # ... and an output prints <NA> / null
    e = engine(rule.replace(" and falconet.environment != lab", ""), suggested_output=False)
    [d] = e.process(bare)
    assert "shell in <NA>/<NA> ns=<NA> owner=<NA> account=<NA>" in d.output
    assert d.output_fields["falconet.workload.name"] is None


def test_cloudtrail_fields() -> None:
    record = P.cloud("cloudtrail-assumed-role.json")
    ev = enriched(Event("aws_cloudtrail", record["eventName"], 1, "c", "x", record))
    assert get(ev, "falconet.identity.principal") == P.ROLE
    assert get(ev, "falconet.identity.kind") == "role"
    assert get(ev, "falconet.identity.name") == "payments-deployer"
    assert get(ev, "falconet.identity.owner") == "alice@example.com"
    assert get(ev, "falconet.identity.team") == "team-payments"
    assert get(ev, "falconet.account.name") == "prod-payments"
    assert get(ev, "falconet.account.criticality") == "high"
    assert get(ev, "falconet.owner") == "alice@example.com"  # who acted, then the account
    assert get(ev, "falconet.environment") == "production"
    bare = Event("aws_cloudtrail", "x", 1, "c", "x", copy.deepcopy(record))
    assert get(bare, "falconet.account.id") == P.ACCOUNT  # from the record itself
    assert get(bare, "falconet.account.name") is None and get(bare, "falconet.owner") is None


def test_k8s_audit_fields() -> None:
    recs = P.records()
    recs["identities"]["alice@example.com"] = {"principal": "alice@example.com", "kind": "user",
                                               "owner": "alice", "team": "platform"}  # fmt: skip
    payload = {"kind": "Event", "auditID": "a1", "verb": "delete", "user": {"username": "alice@example.com"},
               "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db"}}  # fmt: skip
    ev = enriched(Event("k8s_audit", "delete", 1, "w", "a1", payload, {}, {"cluster": "eu-1"}), recs)
    assert get(ev, "falconet.cluster") == "eu-1"
    assert get(ev, "falconet.ns.label[environment]") == "production"
    assert get(ev, "falconet.identity.owner") == "alice"
    assert get(ev, "falconet.owner") == "payments"  # the namespace's team label
    assert get(ev, "falconet.environment") == "production"


def test_fields_per_source_and_listed_by_the_cli() -> None:
    syscall_names = {f.name for f in registry_for("syscall") if f.name.startswith("falconet.")}
    ct = {f.name for f in registry_for("aws_cloudtrail") if f.name.startswith("falconet.")}
    audit = {f.name for f in registry_for("k8s_audit") if f.name.startswith("falconet.")}
    assert "falconet.workload.name" in syscall_names and "falconet.workload.name" not in ct
    assert "falconet.identity.owner" in ct and "falconet.identity.owner" in audit
    assert "falconet.identity.owner" not in syscall_names
    assert {"falconet.owner", "falconet.environment", "falconet.account.id"} <= syscall_names & ct & audit
    for source, names in (("syscall", syscall_names), ("aws_cloudtrail", ct), ("k8s_audit", audit)):
        out = CliRunner().invoke(main, ["fields", "--source", source]).output
        for name in names:
            line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
            assert "CHARBUF" in line and len(line.split("CHARBUF", 1)[1].strip()) > 10, line

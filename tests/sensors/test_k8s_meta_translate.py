"""The k8s-meta publisher's translation of API objects into meta records, from payloads in
the shape the API server returns them (tests/fixtures/k8s_meta)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from falconet.enrichers.metadata import MetadataEnricher
from falconet.event import Event
from falconet.sensors.k8s_meta.client import JOBS, NAMESPACES, NODES, PODS, REPLICASETS
from falconet.sensors.k8s_meta.metrics import K8sMetaStats
from falconet.sensors.k8s_meta.state import MetaState
from falconet.sensors.k8s_meta.translate import (
    Filters,
    ImageRef,
    parse_container_id,
    parse_image,
    parse_provider_id,
)
from tests.conftest import FIXTURES

DIR = FIXTURES / "k8s_meta"


def load(name: str) -> dict[str, Any]:
    return orjson.loads((DIR / name).read_bytes())


class Tables:
    """A sink that keeps the latest value per key, as a compacted topic's table does."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[bytes, bytes]] = {}
        self.log: list[tuple[str, str, bytes | None]] = []

    def __call__(self, table: str, key: str, value: bytes | None) -> None:
        self.log.append((table, key, value))
        t = self.tables.setdefault(table, {})
        if value is None:
            t.pop(key.encode(), None)
        else:
            t[key.encode()] = value

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        raw = self.tables.get(table, {}).get(key.encode())
        return None if raw is None else orjson.loads(raw)


def make(cluster: str = "eu-1", containers: bool = True) -> tuple[MetaState, Tables, K8sMetaStats]:
    tables, stats = Tables(), K8sMetaStats()
    return MetaState(tables, stats, Filters(cluster=cluster), containers), tables, stats


@pytest.mark.parametrize(
    ("value", "runtime", "short"),
    [
        ("containerd://3f5c9a1e7b2d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a", "containerd", "3f5c9a1e7b2d"),
        ("cri-o://8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b", "cri-o", "8c7b6a5f4e3d"),
        ("docker://4c2a9e7f1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a", "docker", "4c2a9e7f1b3d"),
    ],
)  # fmt: skip
def test_container_ids_of_each_runtime_give_the_12_character_key(
    value: str, runtime: str, short: str
) -> None:
    cid = parse_container_id(value)
    assert cid is not None and cid.runtime == runtime and cid.short == short and len(cid.full) == 64


@pytest.mark.parametrize(
    "value", [None, "", "containerd://", "docker://not-hex-at-all-zzzz", "3f5c9a1e7b2d"]
)
def test_missing_or_malformed_container_ids_are_none(value: Any) -> None:
    assert parse_container_id(value) is None


@pytest.mark.parametrize(
    ("image", "image_id", "expected"),
    [
        ("registry.example.com/payments/api:1.8.2", "registry.example.com/payments/api@sha256:9b2e",
         ImageRef("registry.example.com/payments/api", "1.8.2", "sha256:9b2e")),
        ("postgres:16.4", "docker-pullable://postgres@sha256:d0f8", ImageRef("postgres", "16.4", "sha256:d0f8")),
        ("registry.local:5000/tools/netshoot", "", ImageRef("registry.local:5000/tools/netshoot", "", "")),
        ("quay.io/x/wait@sha256:4d6f", "", ImageRef("quay.io/x/wait", "", "sha256:4d6f")),
        ("sha256:77aa", "quay.io/x/app@sha256:11bb", ImageRef("quay.io/x/app", "", "sha256:11bb")),
    ],
)  # fmt: skip
def test_images_split_into_repository_tag_and_digest(
    image: str, image_id: str, expected: ImageRef
) -> None:
    assert parse_image(image, image_id) == expected


def test_deployment_pod_names_the_deployment_through_its_replicaset() -> None:
    state, tables, _ = make()
    state.upsert(REPLICASETS, load("replicaset_deployment.json"))
    state.upsert(PODS, load("pod_deployment.json"))
    rec = tables.get("pods", "6f1d3c2a-8e4b-4f7a-b0c9-2d5e7a9f1b34")
    assert rec is not None
    assert rec["owner"] == {"kind": "Deployment", "name": "payments-api"}
    assert rec["name"] == "payments-api-7c9d8b6f5d-x8k2p" and rec["namespace"] == "prod"
    assert rec["labels"]["team"] == "payments"
    assert rec["node"] == "ip-10-0-12-34.eu-west-1.compute.internal"
    assert rec["ip"] == "10.0.13.87" and rec["service_account"] == "payments-api"
    assert rec["cluster"] == "eu-1"
    assert rec["annotations"]["prometheus.io/port"] == "9102"
    assert [c["id"] for c in rec["containers"]] == ["3f5c9a1e7b2d", "a1b2c3d4e5f6"]
    assert "status" not in rec and "conditions" not in orjson.dumps(rec).decode()


def test_containers_are_keyed_by_short_id_with_image_and_pod_link() -> None:
    state, tables, _ = make()
    state.upsert(PODS, load("pod_deployment.json"))
    api = tables.get("containers", "3f5c9a1e7b2d")
    assert api == {
        "id": "3f5c9a1e7b2d",
        "full_id": "3f5c9a1e7b2d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a",
        "runtime": "containerd", "name": "api",
        "image": {"repository": "registry.example.com/payments/api", "tag": "1.8.2",
                  "digest": "sha256:9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f"},
        "pod_uid": "6f1d3c2a-8e4b-4f7a-b0c9-2d5e7a9f1b34",
        "pod_name": "payments-api-7c9d8b6f5d-x8k2p", "namespace": "prod",
        "source": "k8s", "cluster": "eu-1",
    }  # fmt: skip
    # the envoy container restarted: its previous id still resolves (events in flight)
    assert tables.get("containers", "0e1f2a3b4c5d")["name"] == "envoy"
    assert tables.get("containers", "a1b2c3d4e5f6")["name"] == "envoy"


def test_pod_seen_before_its_replicaset_is_resolved_when_the_replicaset_arrives() -> None:
    state, tables, _ = make()
    state.upsert(PODS, load("pod_deployment.json"))
    uid = "6f1d3c2a-8e4b-4f7a-b0c9-2d5e7a9f1b34"
    assert tables.get("pods", uid)["owner"] == {
        "kind": "ReplicaSet",
        "name": "payments-api-7c9d8b6f5d",
    }
    state.upsert(REPLICASETS, load("replicaset_deployment.json"))
    assert tables.get("pods", uid)["owner"] == {"kind": "Deployment", "name": "payments-api"}


def test_cronjob_pod_names_the_cronjob_through_its_job_with_crio_ids() -> None:
    state, tables, _ = make()
    state.upsert(JOBS, load("job_cronjob.json"))
    state.upsert(PODS, load("pod_cronjob.json"))
    rec = tables.get("pods", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d")
    assert rec["owner"] == {"kind": "CronJob", "name": "nightly-report"}
    report = tables.get("containers", "8c7b6a5f4e3d")
    assert (
        report["runtime"] == "cri-o" and report["image"]["repository"] == "quay.io/finance/report"
    )
    init = tables.get("containers", "f0e1d2c3b4a5")  # init containers are published too
    assert init["name"] == "wait-db" and init["image"]["digest"].startswith("sha256:4d6f")


def test_statefulset_pod_owner_and_docker_ids_and_excluded_annotation() -> None:
    state, tables, _ = make()
    state.upsert(PODS, load("pod_statefulset.json"))
    rec = tables.get("pods", "b3c4d5e6-f7a8-4b9c-8d0e-1f2a3b4c5d6e")
    assert rec["owner"] == {"kind": "StatefulSet", "name": "postgres"}
    assert rec["annotations"] == {}  # last-applied-configuration is never published
    c = tables.get("containers", "4c2a9e7f1b3d")
    assert c["runtime"] == "docker" and c["image"] == {
        "repository": "postgres", "tag": "16.4",
        "digest": "sha256:d0f8c8a6e4b2d0f8a6c4e2b0d8f6a4c2e0b8d6f4a2c0e8b6d4f2a0c8e6b4d2f0",
    }  # fmt: skip


def test_static_pod_is_owned_by_its_node_and_bare_pod_by_nobody() -> None:
    state, tables, _ = make()
    state.upsert(PODS, load("pod_static.json"))
    state.upsert(PODS, load("pod_bare_pending.json"))
    static = tables.get("pods", "3b1f0c9e-8d7a-4b5c-9d3e-2f1a0b9c8d7e")
    assert static["owner"] == {"kind": "Node", "name": "cp-1"} and static["host_network"] is True
    bare = tables.get("pods", "c9d0e1f2-a3b4-4c5d-8e6f-7a8b9c0d1e2f")
    assert bare["owner"] is None and bare["ip"] == ""
    assert bare["containers"] == [{"name": "debug", "id": "",
                                   "image": {"repository": "registry.local:5000/tools/netshoot", "tag": "", "digest": ""}}]  # fmt: skip
    assert not [k for t, k, _ in tables.log if t == "containers" and k.startswith("c9d0")]


def test_namespace_and_aws_node_records() -> None:
    state, tables, _ = make()
    state.upsert(NAMESPACES, load("namespace.json"))
    state.upsert(NODES, load("node_aws.json"))
    ns = tables.get("namespaces", "prod")
    assert ns["labels"]["environment"] == "production" and ns["annotations"] == {
        "owner": "team-payments@example.com"
    }
    node = tables.get("nodes", "ip-10-0-12-34.eu-west-1.compute.internal")
    assert node["provider_id"] == "aws:///eu-west-1a/i-0abc1234def567890"
    assert node["provider"] == {
        "cloud": "aws",
        "zone": "eu-west-1a",
        "instance_id": "i-0abc1234def567890",
    }
    assert (node["zone"], node["region"], node["instance_type"]) == (
        "eu-west-1a",
        "eu-west-1",
        "m6i.xlarge",
    )
    assert {"type": "InternalIP", "address": "10.0.12.34"} in node["addresses"]
    assert "conditions" not in orjson.dumps(node).decode()  # heartbeats change nothing


def test_provider_ids_of_other_clouds() -> None:
    assert parse_provider_id("gce://acme-prod/europe-west1-b/gke-prod-pool-1-8f2a9c3d-k2lm") == {
        "cloud": "gce", "project": "acme-prod", "zone": "europe-west1-b",
        "instance_id": "gke-prod-pool-1-8f2a9c3d-k2lm",
    }  # fmt: skip
    azure = parse_provider_id(
        "azure:///subscriptions/1111-2222/resourceGroups/mc_rg/providers/Microsoft.Compute/"
        "virtualMachineScaleSets/aks-pool-123/virtualMachines/0"
    )
    assert azure["cloud"] == "azure" and azure["subscription"] == "1111-2222"
    assert parse_provider_id("kind://docker/kind/kind-control-plane")["cloud"] == "kind"
    assert parse_provider_id("") == {}


def test_status_churn_publishes_nothing_new_and_deletion_tombstones_pod_and_containers() -> None:
    state, tables, stats = make()
    obj = load("pod_deployment.json")
    state.upsert(PODS, obj)
    published = len(tables.log)
    obj["status"]["conditions"][2]["lastTransitionTime"] = "2026-11-21T00:00:00Z"
    obj["status"]["containerStatuses"][0]["restartCount"] = 0
    obj["metadata"]["resourceVersion"] = "48299999"
    state.upsert(PODS, obj)
    assert len(tables.log) == published and stats.unchanged["pods"] == 1
    obj["metadata"]["labels"]["version"] = "v2"
    state.upsert(PODS, obj)
    assert tables.log[-1][0] == "pods" and len(tables.log) == published + 1
    state.delete(PODS, obj)
    tombstones = {(t, k) for t, k, v in tables.log if v is None}
    assert tombstones == {("pods", "6f1d3c2a-8e4b-4f7a-b0c9-2d5e7a9f1b34"), ("containers", "3f5c9a1e7b2d"),
                          ("containers", "a1b2c3d4e5f6"), ("containers", "0e1f2a3b4c5d")}  # fmt: skip
    assert tables.tables["pods"] == {} and tables.tables["containers"] == {}


def test_restarted_container_replaces_the_id_of_two_restarts_ago() -> None:
    state, tables, _ = make()
    obj = load("pod_deployment.json")
    state.upsert(PODS, obj)
    envoy = obj["status"]["containerStatuses"][1]
    envoy["lastState"]["terminated"]["containerID"] = envoy["containerID"]
    envoy["containerID"] = "containerd://" + "99" * 32
    state.upsert(PODS, obj)
    assert tables.get("containers", "0e1f2a3b4c5d") is None  # two restarts ago: gone
    assert tables.get("containers", "a1b2c3d4e5f6")["name"] == "envoy"
    assert tables.get("containers", "999999999999")["name"] == "envoy"


def test_without_publish_containers_only_pods_are_published() -> None:
    state, tables, _ = make(containers=False)
    state.upsert(PODS, load("pod_deployment.json"))
    assert "containers" not in tables.tables and "pods" in tables.tables


def test_replaced_node_of_the_same_name_keeps_its_record() -> None:
    state, tables, _ = make()
    old = load("node_aws.json")
    new = load("node_aws.json")
    new["metadata"]["uid"] = "00000000-1111-4222-8333-444455556666"
    state.upsert(NODES, new)  # a relist saw the new node first ...
    state.delete(NODES, old)  # ... then the old uid as gone
    assert tables.get("nodes", old["metadata"]["name"])["uid"] == new["metadata"]["uid"]


def test_the_enricher_joins_a_syscall_through_these_records() -> None:
    state, tables, _ = make()
    for res, name in ((REPLICASETS, "replicaset_deployment.json"), (NAMESPACES, "namespace.json"),
                      (NODES, "node_aws.json"), (PODS, "pod_deployment.json")):  # fmt: skip
        state.upsert(res, load(name))
    ev = Event("syscall", "openat", 1, "ip-10-0-12-34.eu-west-1.compute.internal", "e1",
               {"container": {"id": "3f5c9a1e7b2d"}})  # fmt: skip
    MetadataEnricher(tables.tables).enrich(ev)
    assert ev.enrichment["container"]["image"]["tag"] == "1.8.2"
    assert ev.enrichment["k8s"]["pod"]["owner"] == {"kind": "Deployment", "name": "payments-api"}
    assert ev.enrichment["k8s"]["ns"]["labels"]["team"] == "payments"
    assert ev.enrichment["node"]["provider"]["instance_id"] == "i-0abc1234def567890"

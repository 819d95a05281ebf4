"""Acceptance: publishers → metadata topics → worker tables → an enriched detection.

Everything runs for real on the session's broker except the two services that cannot run
here, which are replaced by loopback servers that behave like them:

* the Kubernetes API server is the fake of tests/sensors/test_k8s_meta_apiserver.py (list
  with resourceVersion and pages, chunked watch streams, bookmarks, 410 Gone; TLS and a
  bearer token), fed the real API objects of tests/fixtures/k8s_meta; the publisher is
  `falconet sensor k8s-meta`, its own process, with a kubeconfig;
* AWS Organizations is moto's server (the account and its `environment`/`owner` tags),
  and the node's instance identity comes from the loopback IMDSv2 of
  tests/sensors/test_cloud_meta_imds.py, both through the cloud-meta publisher's code.

A `falconet worker` then gets a syscall event (bash started in the payments-api
container) **before** the container's pod exists: the worker holds the record
(``enrich.wait_ms``), the pod is created in the API server, the publisher publishes it
from its watch, and the detection comes out carrying pod, namespace, workload, labels,
node, cluster, account and owner — in ``output_fields`` through the rule's fields, and
in ``enrichment``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet.broker import die_with_parent
from falconet.streams.topics import DETECTIONS, events_topic
from tests.helpers import syscall
from tests.integration.harness import ROOT, Stack, make_stack, reader, wait_for
from tests.integration.test_cloud_meta_publisher import client, publish_once
from tests.integration.test_k8s_meta_publisher import api, fixture
from tests.sensors.test_cloud_meta_imds import ImdsServer
from tests.sensors.test_k8s_meta_apiserver import NAMESPACES, NODES, PODS, REPLICASETS, pod

__all__ = ["api"]  # a fixture, imported to be shared (moto_url and aws come from tests/moto.py)

NODE = "ip-10-0-12-34.eu-west-1.compute.internal"  # node_aws.json, the pod's nodeName
CONTAINER = "3f5c9a1e7b2d"  # the api container of pod_deployment.json

RULE = """
- rule: Shell in a workload container
  desc: a shell was started in a container (test rule)
  condition: evt.type=execve and container.id != host and proc.name=bash
  output: >-
    shell in container %container.name (image %container.image.repository:%container.image.tag)
    pod=%k8s.pod.name ns=%k8s.ns.name workload=%falconet.workload.kind/%falconet.workload.name
    team=%k8s.pod.label[team] env=%k8s.ns.label[environment] node=%falconet.node.name
    cluster=%falconet.cluster instance=%falconet.cloud.instance_id
    account=%falconet.account.id (%falconet.account.name, %falconet.account.environment,
    %falconet.account.owner)
    owner=%falconet.owner environment=%falconet.environment
  priority: WARNING
"""


@pytest.fixture()
def stack(kafka, topic_prefix: str, tmp_path: Path) -> Stack:
    s = make_stack(kafka.bootstrap, topic_prefix, tmp_path)
    yield s
    for w in s.workers:
        s.stop(w, signal.SIGKILL)


def shell(container: str, num: int) -> bytes:
    ev = syscall("execve", proc={"name": "bash", "pid": 4000 + num, "tty": 34816}, num=num,
                 host=NODE, container=container)  # fmt: skip
    return orjson.dumps([ev.to_json_obj()])


def test_syscall_detection_carries_kubernetes_cloud_and_owner_context(
    stack: Stack, api: tuple[Any, Path], aws: str
) -> None:
    srv, kubeconfig = api
    # -- the organisation: an account with environment and owner tags (moto)
    org = client(aws, "organizations")
    org.create_organization(FeatureSet="ALL")
    account = org.create_account(
        Email="prod@example.com", AccountName="prod-payments",
        Tags=[{"Key": "environment", "Value": "production"}, {"Key": "owner", "Value": "team-payments"}],
    )["CreateAccountStatus"]["AccountId"]  # fmt: skip
    publish_once(stack, accounts=True, endpoint_url=aws)
    # -- the node's instance identity, in that account (IMDSv2)
    with ImdsServer(tags={"team": "platform"}) as imds:
        imds.set_document(accountId=account, instanceId="i-0abc1234def567890",
                          availabilityZone="eu-west-1a")  # fmt: skip
        publish_once(stack, imds=True, node_name=NODE, imds_endpoint=imds.url, imds_timeout=5)

    # -- the cluster: the Deployment's ReplicaSet, a labelled namespace, an AWS node, and
    #    one other pod in the namespace (the payments pod comes later)
    srv.apply(REPLICASETS, fixture("replicaset_deployment.json"))
    srv.apply(NAMESPACES, fixture("namespace.json"))
    srv.apply(NODES, fixture("node_aws.json"))
    warm = srv.apply(PODS, pod("warmup", "prod", app="warmup"))
    warm_cid = warm["status"]["containerStatuses"][0]["containerID"].split("://")[1][:12]
    log_path = stack.tmp / "k8s-meta.log"
    with open(log_path, "ab") as log:
        publisher = subprocess.Popen(
            [sys.executable, "-m", "falconet", "sensor", "k8s-meta", "--kubeconfig", str(kubeconfig),
             "--cluster", "eu-1"],
            env=stack.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, preexec_fn=die_with_parent(),
        )  # fmt: skip
    try:
        rules = stack.tmp / "rules.yaml"
        rules.write_text(RULE)
        w = stack.start_worker("w1", "--rules", str(rules), env={"FALCONET_ENRICH_WAIT_MS": "60000"})
        events = events_topic("syscall")
        with reader(stack, DETECTIONS) as read:
            # 1. the worker's tables fill from the meta topics: a shell in the warm-up pod
            #    comes out with its pod and the node's account once they are all there
            def warmed(seen: list[Any]) -> bool:
                return any(d["output_fields"]["k8s.ns.label[environment]"] == "production"
                           and d["output_fields"]["falconet.account.environment"] == "production"
                           and d["output_fields"]["k8s.pod.name"] == "warmup" for d in seen)  # fmt: skip

            for i in range(60):
                stack.produce(events, [(NODE.encode(), shell(warm_cid, i + 1))])
                if warmed(read(until=warmed, timeout=2, workers=[w])):
                    break
            assert warmed(read(timeout=0.1)), stack.log_of("w1")[-3000:]

            # 2. bash in the payments container, whose pod does not exist yet: the worker holds it
            stack.produce(events, [(NODE.encode(), shell(CONTAINER, 1000))])
            wait_for(lambda: f"enrich.wait containers={CONTAINER}" in stack.log_of("w1"), 60,
                     "the worker to hold the record")  # fmt: skip
            assert publisher.poll() is None, log_path.read_text()[-3000:]
            # 3. the pod is created; the publisher's watch publishes it and the record goes on
            srv.apply(PODS, fixture("pod_deployment.json"))
            seen = read(until=lambda s: any(d["event_id"] == f"{NODE}-1000" for d in s), timeout=60,
                        workers=[w])  # fmt: skip
        hit = next((d for d in seen if d["event_id"] == f"{NODE}-1000"), None)
        assert hit is not None, stack.log_of("w1")[-3000:]
    finally:
        publisher.send_signal(signal.SIGTERM)
        try:
            publisher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            publisher.kill()
            publisher.wait()

    f = hit["output_fields"]
    assert f["container.name"] == "api"
    assert f["container.image.repository"] == "registry.example.com/payments/api"
    assert f["k8s.pod.name"] == "payments-api-7c9d8b6f5d-x8k2p"
    assert f["k8s.ns.name"] == "prod"
    assert f["falconet.workload.kind"] == "Deployment" and f["falconet.workload.name"] == "payments-api"
    assert f["k8s.pod.label[team]"] == "payments"
    assert f["k8s.ns.label[environment]"] == "production"
    assert f["falconet.node.name"] == NODE and f["falconet.cluster"] == "eu-1"
    assert f["falconet.cloud.instance_id"] == "i-0abc1234def567890"
    assert f["falconet.account.id"] == account
    assert f["falconet.account.name"] == "prod-payments"
    assert f["falconet.account.owner"] == "team-payments"  # the account's owner tag (moto)
    assert f["falconet.owner"] == "payments"  # the pod's team label
    assert f["falconet.environment"] == "production"
    assert "pod=payments-api-7c9d8b6f5d-x8k2p ns=prod workload=Deployment/payments-api" in hit["output"]
    e = hit["enrichment"]
    assert e["k8s"]["pod"]["owner"] == {"kind": "Deployment", "name": "payments-api"}
    assert e["k8s"]["pod"]["labels"]["team"] == "payments"
    assert e["k8s"]["ns"]["labels"]["environment"] == "production"
    assert e["node"]["name"] == NODE and e["node"]["cloud"]["account_id"] == account
    assert e["cloud"]["account"]["owner"] == "team-payments"
    assert "enrich.wait_expired" not in stack.log_of("w1")  # resolved, not given up

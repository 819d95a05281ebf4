"""`falconet sensor k8s-meta` on the real broker, fed by a loopback Kubernetes API server.

The API server is the fake of tests/sensors/test_k8s_meta_apiserver.py: it serves list
(resourceVersion, limit/continue pages) and chunked watch streams (ADDED, MODIFIED,
DELETED, BOOKMARK, ERROR) as kube-apiserver does, over TLS with a bearer token, and
answers 410 Gone for a resourceVersion older than its compaction point. A real cluster
cannot run here; the fake checks what the real server checks for these requests. The
publisher runs as its own process with a kubeconfig, as it would outside a cluster, and
the test reads the compacted meta topics it writes.
"""

from __future__ import annotations

import copy
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme

from falconet.broker import die_with_parent
from falconet.streams.topics import meta_topic
from tests.conftest import FIXTURES
from tests.integration.harness import ROOT, Stack, make_stack, wait_for
from tests.sensors.test_k8s_meta_apiserver import (
    JOBS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    FakeApiServer,
    pod,
)

TABLES = ("pods", "containers", "namespaces", "nodes")


def fixture(name: str) -> dict[str, Any]:
    return orjson.loads((FIXTURES / "k8s_meta" / name).read_bytes())


@pytest.fixture()
def stack(kafka, topic_prefix: str, tmp_path: Path) -> Stack:
    return make_stack(kafka.bootstrap, topic_prefix, tmp_path)


class MetaReader:
    """Reads the four meta topics from the start: every (table, key, value or None)."""

    def __init__(self, stack: Stack) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self.consumer = Consumer(stack.settings.confluent(**{
            "group.id": f"{stack.prefix}meta-{time.time_ns()}", "enable.auto.commit": False,
        }))  # fmt: skip
        self.tables = {stack.topic(meta_topic(t)): t for t in TABLES}
        parts = []
        for topic in self.tables:
            meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
            parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        self.consumer.assign(parts)
        self.log: list[tuple[str, str, Any]] = []
        self.state: dict[str, dict[str, Any]] = {t: {} for t in TABLES}

    def poll(
        self, until: Callable[[], bool], timeout: float = 60.0, proc: subprocess.Popen | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "timed out reading the meta topics"
            if proc is not None:
                assert proc.poll() is None, f"the publisher exited with {proc.returncode}"
            msg = self.consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            table, key = self.tables[msg.topic()], msg.key().decode()
            value = None if msg.value() is None else orjson.loads(msg.value())
            self.log.append((table, key, value))
            if value is None:
                self.state[table].pop(key, None)
            else:
                self.state[table][key] = value

    def tombstoned(self, table: str, key: str) -> bool:
        return (table, key, None) in self.log

    def close(self) -> None:
        self.consumer.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[FakeApiServer, Path]]:
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    srv = FakeApiServer(token="it-sa-token", ssl_context=ctx).start()
    ca.cert_pem.write_to_path(tmp_path / "ca.crt")
    (tmp_path / "token").write_text("it-sa-token\n")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters:
- {{name: it, cluster: {{server: "{srv.url}", certificate-authority: ca.crt}}}}
users:
- {{name: k8s-meta, user: {{tokenFile: token}}}}
contexts:
- {{name: it, context: {{cluster: it, user: k8s-meta}}}}
current-context: it
""")
    yield srv, kubeconfig
    srv.stop()


def list_starts(srv: FakeApiServer, path: str) -> int:
    return sum(1 for p in srv.lists(path) if "continue" not in p)


def test_publishes_records_and_tombstones_survives_410_and_follows_bookmarks(
    stack: Stack, api: tuple[FakeApiServer, Path]
) -> None:
    srv, kubeconfig = api
    srv.apply(REPLICASETS, fixture("replicaset_deployment.json"))
    srv.apply(JOBS, fixture("job_cronjob.json"))
    srv.apply(NAMESPACES, fixture("namespace.json"))
    srv.apply(NODES, fixture("node_aws.json"))
    payments = srv.apply(PODS, fixture("pod_deployment.json"))["metadata"]["uid"]
    report = srv.apply(PODS, fixture("pod_cronjob.json"))["metadata"]["uid"]
    srv.apply(PODS, fixture("pod_statefulset.json"))
    for name in ("web-a", "web-b", "doomed"):
        srv.apply(PODS, pod(name, "shop", app="web"))
    doomed = srv.objects[PODS]["shop/doomed"]["metadata"]["uid"]
    doomed_cid = srv.objects[PODS]["shop/doomed"]["status"]["containerStatuses"][0]["containerID"]
    metrics_port = free_port()

    log_path = stack.tmp / "k8s-meta.log"
    env = {**stack.env, "FALCONET_K8S_META_PAGE_SIZE": "2", "FALCONET_K8S_META_BACKOFF_INITIAL_MS": "20",
           "FALCONET_K8S_META_BACKOFF_MAX_MS": "200"}  # fmt: skip
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "falconet", "sensor", "k8s-meta", "--kubeconfig", str(kubeconfig),
             "--cluster", "it-1", "--metrics-port", str(metrics_port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, preexec_fn=die_with_parent(),
        )  # fmt: skip
    reader = MetaReader(stack)
    try:
        # 1. everything listed is published, joined up
        reader.poll(lambda: len(reader.state["pods"]) == 6 and len(reader.state["nodes"]) == 1
                    and "prod" in reader.state["namespaces"] and "3f5c9a1e7b2d" in reader.state["containers"],
                    proc=proc)  # fmt: skip
        pods = reader.state["pods"]
        assert pods[payments]["owner"] == {"kind": "Deployment", "name": "payments-api"}
        assert pods[report]["owner"] == {"kind": "CronJob", "name": "nightly-report"}
        assert pods[payments]["cluster"] == "it-1"
        container = reader.state["containers"]["3f5c9a1e7b2d"]
        assert container["pod_uid"] == payments and container["image"]["tag"] == "1.8.2"
        node = reader.state["nodes"]["ip-10-0-12-34.eu-west-1.compute.internal"]
        assert node["provider"]["instance_id"] == "i-0abc1234def567890"
        assert list_starts(srv, PODS) == 1 and len(srv.lists(PODS)) == 3  # six pods, pages of two
        wait_for(lambda: srv.open_watches(PODS) == 1, 30, "the pod watch")
        watch = srv.watches(PODS)[0]
        assert watch["allowWatchBookmarks"] == "true" and "timeoutSeconds" in watch

        # 2. a watched deletion: tombstones for the pod and its container
        srv.delete(PODS, "shop", "web-a")
        web_a = next(k for k, v in pods.items() if v["name"] == "web-a")
        short_a = pods[web_a]["containers"][0]["id"]
        reader.poll(
            lambda: reader.tombstoned("pods", web_a) and reader.tombstoned("containers", short_a),
            proc=proc,
        )

        # 3. a bookmark moves the resourceVersion: after compaction the watch resumes from it
        srv.touch_other(5)
        mark = srv.bookmark(PODS)
        srv.compact(PODS)
        srv.drop_watches(PODS)
        wait_for(
            lambda: len(srv.watches(PODS)) >= 2 and srv.open_watches(PODS) == 1, 30, "the rewatch"
        )
        assert srv.watches(PODS)[1]["resourceVersion"] == str(mark)
        assert list_starts(srv, PODS) == 1  # no relist

        # 4. 410 Gone after a deletion nobody saw: one relist, the tombstone, then watch again
        with srv.away(PODS):
            srv.delete(PODS, "shop", "doomed")
            srv.apply(PODS, pod("web-c", "shop", app="web"))
        doomed_short = doomed_cid.split("://")[1][:12]
        reader.poll(lambda: reader.tombstoned("pods", doomed) and reader.tombstoned("containers", doomed_short)
                    and any(v["name"] == "web-c" for v in reader.state["pods"].values()), proc=proc)  # fmt: skip
        wait_for(lambda: srv.open_watches(PODS) == 1, 30, "the watch after the relist")
        for i in range(6):
            srv.apply(PODS, pod(f"after-{i}", "shop", app="web"))
        reader.poll(lambda: sum(v["name"].startswith("after-") for v in reader.state["pods"].values()) == 6,
                    proc=proc)  # fmt: skip
        assert list_starts(srv, PODS) == 2  # exactly one relist, not one per event
        assert list_starts(srv, NAMESPACES) == 1 and list_starts(srv, NODES) == 1

        # 5. unchanged status churn publishes nothing
        count = len(reader.log)
        churn = copy.deepcopy(srv.objects[PODS]["prod/payments-api-7c9d8b6f5d-x8k2p"])
        churn["status"]["conditions"][0]["lastTransitionTime"] = "2026-11-22T00:00:00Z"
        srv.apply(PODS, churn)
        srv.apply(PODS, pod("sentinel", "shop"))
        reader.poll(
            lambda: any(v and v.get("name") == "sentinel" for _, _, v in reader.log[count:]),
            proc=proc,
        )
        assert not any(k == payments for _, k, _ in reader.log[count:])

        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
            .read()
            .decode()
        )
        assert 'falconet_k8s_meta_relists_total{kind="Pod"} 1.0' in metrics
        assert 'falconet_k8s_meta_gone_total{kind="Pod"} 1.0' in metrics
        assert 'falconet_k8s_meta_bookmarks_total{kind="Pod"} 1.0' in metrics
        assert 'falconet_k8s_meta_objects{kind="Pod"}' in metrics
    finally:
        reader.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    text = log_path.read_text(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert "k8s_meta.listed kind=Pod" in text and "relist=True" in text
    assert "falconet sensor k8s-meta:" in text and "it-sa-token" not in text


def test_unusable_kubeconfig_stops_at_start_with_exit_2(stack: Stack, tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text(
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\ncurrent-context: gone\nusers: []\n"
    )
    result = stack.falconet("sensor", "k8s-meta", "--kubeconfig", str(bad), timeout=60)
    assert result.returncode == 2
    assert "no context named 'gone'" in result.stderr

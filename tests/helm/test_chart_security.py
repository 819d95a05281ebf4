"""The security posture of the rendered manifests, as docs/deploy.md promises it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.conftest import SCENARIOS, Rendering, Tools, render

ROOT_CONTAINERS = {"syscall", "runtime-meta"}  # UID 0, documented in docs/deploy.md
SENSOR_CAPS = ["BPF", "PERFMON"]


def effective(pod: dict[str, Any], c: dict[str, Any], key: str) -> Any:
    """A securityContext field as the kubelet resolves it: container first, then pod."""
    csc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
    return csc[key] if key in csc else psc.get(key)


@pytest.fixture(scope="module", params=SCENARIOS)
def rendering(request: pytest.FixtureRequest, tools: Tools) -> Rendering:
    return render(tools, request.param)


def test_nothing_is_privileged_by_default(rendering: Rendering) -> None:
    for w, pod, c in rendering.containers():
        assert effective(pod, c, "privileged") in (None, False), (w["metadata"]["name"], c["name"])
        assert effective(pod, c, "allowPrivilegeEscalation") is False, c["name"]
        assert not pod.get("hostNetwork"), w["metadata"]["name"]
        assert not pod.get("hostIPC"), w["metadata"]["name"]


def test_capabilities_are_exactly_those_needed(rendering: Rendering) -> None:
    for _, _, c in rendering.containers():
        caps = c["securityContext"]["capabilities"]
        assert caps["drop"] == ["ALL"], c["name"]
        assert caps.get("add", []) == (SENSOR_CAPS if c["name"] == "syscall" else []), c["name"]


def test_value_gated_capabilities_and_privileged(tools: Tools) -> None:
    r = render(tools, "defaults", "nodeAgent.syscall.kernelBefore511=true")
    sensor = next(c for _, _, c in r.containers() if c["name"] == "syscall")
    assert sensor["securityContext"]["capabilities"]["add"] == ["BPF", "PERFMON", "SYS_RESOURCE"]
    r = render(tools, "defaults", "nodeAgent.syscall.procAccess=true")
    sensor = next(c for _, _, c in r.containers() if c["name"] == "syscall")
    assert sensor["securityContext"]["capabilities"]["add"] == ["BPF", "PERFMON", "SYS_PTRACE"]
    r = render(tools, "defaults", "nodeAgent.syscall.privileged=true")
    privileged = [(w["metadata"]["name"], c["name"]) for w, _, c in r.containers()
                  if c.get("securityContext", {}).get("privileged")]  # fmt: skip
    assert privileged == [("fc-falconet-node-agent", "syscall")]


def test_non_root_everywhere_but_the_node_agent_containers_that_need_root(rendering: Rendering) -> None:
    for w, pod, c in rendering.containers():
        where = (w["metadata"]["name"], c["name"])
        if c["name"] in ROOT_CONTAINERS:
            assert w["kind"] == "DaemonSet"
            assert effective(pod, c, "runAsUser") == 0 and effective(pod, c, "runAsNonRoot") is False, where
        else:
            assert effective(pod, c, "runAsNonRoot") is True, where
            assert effective(pod, c, "runAsUser") not in (None, 0), where


def test_read_only_root_and_runtime_default_seccomp(rendering: Rendering) -> None:
    for w, pod, c in rendering.containers():
        assert effective(pod, c, "readOnlyRootFilesystem") is True, c["name"]
        assert effective(pod, c, "seccompProfile") == {"type": "RuntimeDefault"}, (w["metadata"]["name"], c["name"])


def test_every_container_has_requests_and_limits(rendering: Rendering) -> None:
    for w, _, c in rendering.containers():
        res = c["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(res.get(kind, {})), (w["metadata"]["name"], c["name"], kind)


def test_rbac_is_list_and_watch_on_five_resources(rendering: Rendering) -> None:
    roles = rendering.of_kind("ClusterRole") + rendering.of_kind("Role")
    if not rendering.of_kind("Deployment") or not any(
        o["metadata"]["name"].endswith("-k8s-meta") for o in rendering.of_kind("Deployment")
    ):
        assert roles == [] and rendering.of_kind("ClusterRoleBinding") == []
        return
    assert [r["metadata"]["name"] for r in roles] == ["fc-falconet-k8s-meta"]
    rules = roles[0]["rules"]
    granted = {(g, res, verb) for rule in rules for g in rule["apiGroups"] for res in rule["resources"]
               for verb in rule["verbs"]}  # fmt: skip
    assert granted == {(g, res, v) for g, res in [("", "pods"), ("", "namespaces"), ("", "nodes"),
                                                  ("apps", "replicasets"), ("batch", "jobs")]
                       for v in ("list", "watch")}  # fmt: skip
    assert all(set(rule) == {"apiGroups", "resources", "verbs"} for rule in rules)  # no resourceNames tricks
    (binding,) = rendering.of_kind("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == "fc-falconet-k8s-meta"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "fc-falconet-k8s-meta", "namespace": "falconet"}]


def test_only_the_api_and_cloud_clients_mount_a_token(rendering: Rendering) -> None:
    """Service account tokens only where they are used: the Kubernetes API (k8s-meta) and
    cloud credentials by web identity (cloudtrail, cloud-meta)."""
    for w in rendering.workloads():
        pod = w["spec"]["template"]["spec"]
        name = w["metadata"]["name"]
        wants = name.endswith(("-k8s-meta", "-cloudtrail", "-cloud-meta"))
        sa = next((s for s in rendering.of_kind("ServiceAccount")
                   if s["metadata"]["name"] == pod.get("serviceAccountName")), None)  # fmt: skip
        mounted = pod.get("automountServiceAccountToken", (sa or {}).get("automountServiceAccountToken", True))
        assert mounted is wants, name


def test_node_agent_mounts_and_scheduling(tools: Tools) -> None:
    r = render(tools, "defaults")
    ds = r.one("DaemonSet", "-node-agent")
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostPID"] is True and pod["hostNetwork"] is False
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["priorityClassName"] == "fc-falconet-node"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["btf"]["hostPath"]["path"] == "/sys/kernel/btf"
    assert volumes["host-passwd"]["hostPath"] == {"path": "/etc/passwd", "type": "File"}
    sockets = sorted(v["hostPath"]["path"] for n, v in volumes.items() if n.startswith("runtime-socket-"))
    assert sockets == ["/run/containerd/containerd.sock", "/var/run/crio/crio.sock", "/var/run/docker.sock"]
    host_paths = {n for n, v in volumes.items() if "hostPath" in v}
    for c in pod["containers"]:
        for m in c["volumeMounts"]:
            if m["name"] in host_paths:
                assert m.get("readOnly") is True, (c["name"], m)
    by_name = {c["name"]: c for c in pod["containers"]}
    assert {m["name"] for m in by_name["syscall"]["volumeMounts"]} & host_paths == {"btf", "host-passwd", "host-group"}
    assert {m["name"] for m in by_name["runtime-meta"]["volumeMounts"]} & host_paths == {
        n for n in host_paths if n.startswith("runtime-socket-")}  # fmt: skip
    env = {e["name"]: e for e in by_name["syscall"]["env"]}
    assert env["FALCONET_SYSCALL_HOST"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_k8s_meta_leaves_containers_to_the_runtime_publisher(tools: Tools) -> None:
    def publish(r: Rendering) -> str:
        c = r.one("Deployment", "-k8s-meta")["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value") for e in c["env"]}["FALCONET_K8S_META_PUBLISH_CONTAINERS"]

    assert publish(render(tools, "defaults")) == "false"
    assert publish(render(tools, "defaults", "nodeAgent.runtimeMeta.enabled=false")) == "true"


def test_sink_credentials_only_come_from_secrets(tools: Tools) -> None:
    for scenario in ("everything", "kafka-tls-sasl", "sinks-existing-secret"):
        r = render(tools, scenario)
        sink = r.one("Deployment", "-sink")["spec"]["template"]["spec"]["containers"][0]
        sink_env = [e for e in sink["env"] if e["name"].startswith("FALCONET_SINK_")]
        assert sink_env, scenario
        for e in sink_env:
            assert "value" not in e and set(e["valueFrom"]) == {"secretKeyRef"}, e
        config = r.one("ConfigMap", "-sink")["data"]["falconet.yaml"]
        for word in ("credentials", "token:", "secret:", "password", "api_key"):
            assert word not in config, (scenario, word)
    r = render(tools, "sinks-existing-secret")
    sink = r.one("Deployment", "-sink")["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in sink["env"] if e["name"].startswith("FALCONET_SINK_")}
    assert refs == {
        "FALCONET_SINK_SENTINEL_CLIENT_SECRET": {"name": "falconet-sink-credentials", "key": "sentinel-client-secret"},
        "FALCONET_SINK_SOC_SPLUNK_TOKEN": {"name": "falconet-sink-credentials", "key": "splunk-hec-token"},
        "FALCONET_SINK_ES_API_KEY": {"name": "es-api-key", "key": "encoded"},
    }
    assert r.of_kind("Secret") == []  # existingSecret: the chart makes none
    # secretValues: the chart stores them in a Secret of its own, referenced the same way
    r = render(tools, "kafka-tls-sasl")
    (secret,) = r.of_kind("Secret")
    assert secret["metadata"]["name"] == "fc-falconet-sink-credentials" and set(secret["data"]) == {"webhook-hmac"}


def test_kafka_secrets_are_files_and_secret_refs(tools: Tools) -> None:
    r = render(tools, "kafka-tls-sasl")
    for _w, pod, c in r.containers():
        env = {e["name"]: e for e in c["env"]}
        assert env["FALCONET_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert "FALCONET_KAFKA_SASL_PASSWORD" not in env
        assert env["FALCONET_KAFKA_SASL_USERNAME"]["valueFrom"] == {
            "secretKeyRef": {"name": "kafka-scram", "key": "username"}}  # fmt: skip
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        for var, mount, secret in [("FALCONET_KAFKA_SASL_PASSWORD_FILE", "/etc/falconet/kafka-sasl", "kafka-scram"),
                                   ("FALCONET_KAFKA_SSL_CA_FILE", "/etc/falconet/kafka-tls", "kafka-client-tls"),
                                   ("FALCONET_KAFKA_SSL_CERT_FILE", "/etc/falconet/kafka-tls", "kafka-client-tls"),
                                   ("FALCONET_KAFKA_SSL_KEY_FILE", "/etc/falconet/kafka-tls", "kafka-client-tls")]:  # fmt: skip
            path = env[var]["value"]
            assert path.startswith(mount + "/"), (c["name"], var)
            m = mounts[mount]
            assert m["readOnly"] is True
            vol = volumes[m["name"]]["secret"]
            assert vol["secretName"] == secret
            assert path.rsplit("/", 1)[1] in {i["path"] for i in vol["items"]}
    for o in r.objects:  # no Secret value of Kafka's anywhere in the manifests
        assert "kafka-scram" not in str(o.get("data", {}))


def test_network_policies_cover_every_pod(rendering: Rendering) -> None:
    policies = rendering.of_kind("NetworkPolicy")
    for w in rendering.workloads():
        labels = w["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in policies
                    if all(labels.get(k) == v for k, v in p["spec"]["podSelector"]["matchLabels"].items())]  # fmt: skip
        assert len(matching) == 1, w["metadata"]["name"]
        assert matching[0]["spec"]["policyTypes"] == ["Ingress", "Egress"]


def test_rules_reach_workers_through_the_pusher(tools: Tools) -> None:
    r = render(tools, "everything")
    pusher = r.one("Deployment", "-rules-pusher")["spec"]["template"]["spec"]
    args = pusher["containers"][0]["args"]
    assert args[:4] == ["rules", "push", "--watch", "--interval=10"]
    assert args[4:] == ["/opt/falconet/rules", "/etc/falconet/rules/10-falco", "/etc/falconet/rules/20-team-rules",
                        "/etc/falconet/rules/90-custom"]  # fmt: skip
    mounts = {m["mountPath"]: m["name"] for m in pusher["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v.get("configMap", {}).get("name") for v in pusher["volumes"]}
    assert [volumes[mounts[p]] for p in args[5:]] == ["falco-rules", "team-rules", "fc-falconet-rules"]
    # workers are not restarted by a rules change: their pods do not depend on the rules
    worker = r.one("Deployment", "-worker")["spec"]["template"]
    assert not any("rules" in k for k in worker["metadata"]["annotations"])
    # with filterByRules the sensor reads the same files (and rolls when they change)
    ds = r.one("DaemonSet", "-node-agent")["spec"]["template"]
    sensor = next(c for c in ds["spec"]["containers"] if c["name"] == "syscall")
    assert [a.split("=", 1)[1] for a in sensor["args"] if a.startswith("--rules=")] == args[4:]
    assert "checksum/rules" in ds["metadata"]["annotations"]


def test_worker_autoscaling_on_consumer_lag(tools: Tools) -> None:
    r = render(tools, "everything")
    hpa = r.one("HorizontalPodAutoscaler", "-worker")
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
    ext = metrics["External"]["external"]
    assert ext["metric"]["name"] == "falconet_worker_consumer_lag"
    assert ext["target"] == {"type": "AverageValue", "averageValue": "50000"}
    assert "replicas" not in r.one("Deployment", "-worker")["spec"]  # the HPA owns it

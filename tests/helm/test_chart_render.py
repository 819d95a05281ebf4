"""The chart lints, renders and validates against the Kubernetes schemas of every supported
version (kubeconform -strict: an unknown or misplaced field is an error), offline."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.helm.conftest import CHART, SCENARIOS, VALUES, Tools, render

MONITORING = ("monitoring.coreos.com/v1",)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint(tools: Tools, scenario: str) -> None:
    for version in tools.k8s_versions:
        proc = tools.run(tools.helm, "lint", "--strict", str(CHART), "-f", str(VALUES / f"{scenario}.yaml"),
                         "--kube-version", version)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_rendering_is_valid_for_every_supported_kubernetes(tools: Tools, scenario: str) -> None:
    for version in tools.k8s_versions:
        for apis in ((), MONITORING):
            r = render(tools, scenario, kube_version=version, api_versions=apis)
            proc = tools.validate(r.text, version)
            assert proc.returncode == 0, f"Kubernetes {version}:\n{proc.stdout}{proc.stderr}"
            summary = re.search(r"(\d+) resources found.*Valid: (\d+), Invalid: (\d+), Errors: (\d+), Skipped: (\d+)",
                                proc.stdout)  # fmt: skip
            assert summary, proc.stdout
            found, valid, invalid, errors, skipped = map(int, summary.groups())
            assert found == len(r.objects) == valid and invalid == errors == skipped == 0, proc.stdout


def test_every_component_renders_when_all_are_on(tools: Tools) -> None:
    r = render(tools, "everything", api_versions=MONITORING)
    names = {(o["kind"], o["metadata"]["name"]) for o in r.objects}
    for kind, name in [
        ("DaemonSet", "fc-falconet-node-agent"), ("Deployment", "fc-falconet-worker"),
        ("Deployment", "fc-falconet-sink"), ("Deployment", "fc-falconet-cloudtrail"),
        ("Deployment", "fc-falconet-k8s-audit"), ("Service", "fc-falconet-k8s-audit"),
        ("Deployment", "fc-falconet-k8s-meta"), ("Deployment", "fc-falconet-cloud-meta"),
        ("Deployment", "fc-falconet-rules-pusher"), ("Job", "fc-falconet-topics"),
        ("HorizontalPodAutoscaler", "fc-falconet-worker"), ("PodDisruptionBudget", "fc-falconet-worker"),
        ("ClusterRole", "fc-falconet-k8s-meta"), ("PriorityClass", "fc-falconet-node"),
        ("ServiceMonitor", "fc-falconet"), ("PersistentVolumeClaim", "fc-falconet-cloudtrail"),
    ]:  # fmt: skip
        assert (kind, name) in names, (kind, name)


def test_the_defaults_are_a_working_pipeline(tools: Tools) -> None:
    """Only kafka.bootstrap set: topics hook, node agent, workers, k8s metadata, rules pusher."""
    r = render(tools, "defaults")
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in r.workloads())
    assert kinds == ["DaemonSet/fc-falconet-node-agent", "Deployment/fc-falconet-k8s-meta",
                     "Deployment/fc-falconet-rules-pusher", "Deployment/fc-falconet-worker",
                     "Job/fc-falconet-topics"]  # fmt: skip
    for _, _, c in r.containers():
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["FALCONET_KAFKA_BOOTSTRAP"] == "kafka-0.kafka.kafka.svc:9092"
        assert env["FALCONET_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    job = r.one("Job", "-topics")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["topics", "create"]
    # no sink configured: no sink Deployment (it would refuse to start without sinks)
    assert not [o for o in r.workloads() if o["metadata"]["name"].endswith("-sink")]
    # no ServiceMonitor without the CRD's API
    assert not r.of_kind("ServiceMonitor")


def test_strict_schemas_catch_a_misplaced_field(tools: Tools) -> None:
    """The generated schemas are strict: kubeconform refuses an unknown field and a wrong type."""
    version = tools.k8s_versions[0]
    r = render(tools, "defaults", kube_version=version)
    worker = r.one("Deployment", "-worker")
    bad = yaml.safe_load(yaml.safe_dump(worker))
    bad["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {"privileged": True}
    proc = tools.validate(yaml.safe_dump(bad), version)
    assert proc.returncode == 1 and "securityContex" in proc.stdout, proc.stdout
    bad = yaml.safe_load(yaml.safe_dump(worker))
    bad["spec"]["replicas"] = "two"
    proc = tools.validate(yaml.safe_dump(bad), version)
    assert proc.returncode == 1 and "replicas" in proc.stdout, proc.stdout


@pytest.mark.parametrize(("sets", "message"), [
    ((), "kafka.bootstrap is required"),
    (("kafka.bootstrap=k:9092", "worker.replica=3"), "additional properties 'replica' not allowed"),
    (("kafka.bootstrap=k:9092", "sink.sinks[0].name=soc", "sink.sinks[0].type=splunk", "sink.sinks[0].token=abc"),
     "/sink/sinks/0/token"),
    (("kafka.bootstrap=k:9092", "kafka.sasl.enabled=true"), "kafka.sasl.existingSecret"),
    (("kafka.bootstrap=k:9092", "k8sAudit.enabled=true"), "k8sAudit.tls.existingSecret"),
    (("kafka.bootstrap=k:9092", "k8sAudit.enabled=true", "k8sAudit.tls.existingSecret=t"), "authenticates the API server"),
    (("kafka.bootstrap=k:9092", "cloudtrail.enabled=true"), "cloudtrail.sqsQueueUrl or cloudtrail.bucket"),
    (("kafka.bootstrap=k:9092", "nodeAgent.syscall.ringMb=100"), "/nodeAgent/syscall/ringMb"),
    (("kafka.bootstrap=k:9092", "worker.resources.limits=null"), "/worker/resources"),
    (("kafka.bootstrap=k:9092", "worker.autoscaling.enabled=true", "worker.autoscaling.cpu.enabled=false"),
     "worker.autoscaling.cpu.enabled and/or worker.autoscaling.lag.enabled"),
    (("kafka.bootstrap=k:9092", "rules.bundled=false"), "rules.pusher.enabled needs rules to push"),
])  # fmt: skip
def test_bad_values_are_refused_with_a_message(tools: Tools, sets: tuple[str, ...], message: str) -> None:
    proc = tools.template(sets=sets)
    assert proc.returncode == 1
    assert message in proc.stderr, proc.stderr


def render_notes(tools: Tools, tmp_path: Path, values: Path) -> str:
    """NOTES.txt as `helm install` prints it. `helm install --dry-run` needs a cluster, so a
    copy of the chart renders the same file through `tpl` into a ConfigMap."""
    chart = tmp_path / "falconet"
    shutil.copytree(CHART, chart)
    (chart / "notes").mkdir()
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes" / "NOTES.txt")
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n"
        '  notes: |\n    {{- tpl (.Files.Get "notes/NOTES.txt") . | nindent 4 }}\n'
    )
    proc = tools.run(tools.helm, "template", "fc", str(chart), "--namespace", "falconet", "-f", str(values),
                     "--kube-version", tools.k8s_versions[-1], "--show-only", "templates/zz-notes.yaml")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)["data"]["notes"]


def test_notes_print_the_audit_webhook_kubeconfig(tools: Tools, tmp_path: Path) -> None:
    notes = render_notes(tools, tmp_path, VALUES / "everything.yaml")
    kubeconfig = notes.split("on each control-plane node:", 1)[1].split("and the kube-apiserver flags", 1)[0]
    cfg = yaml.safe_load(kubeconfig)
    assert cfg["kind"] == "Config"
    assert cfg["clusters"][0]["cluster"]["server"] == "https://fc-falconet-k8s-audit.falconet.svc:9765/k8s-audit"
    user = cfg["users"][0]["user"]
    assert set(user) == {"client-certificate", "client-key", "tokenFile"}
    assert "--audit-webhook-config-file=/etc/kubernetes/audit/webhook.yaml" in notes
    assert "pod-security.kubernetes.io/enforce=privileged" in notes
    assert "Kubernetes audit webhook" not in render_notes(tools, tmp_path / "d", VALUES / "defaults.yaml")


def test_the_schema_describes_every_value() -> None:
    """values.schema.json names every key of values.yaml (free-form maps only where the value
    is a Kubernetes object passed through, such as affinity), and refuses unknown ones."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    free_form: list[str] = []

    def walk(value: object, node: dict, path: str) -> None:
        if not isinstance(value, dict):
            return
        if "properties" not in node:
            free_form.append(path)
            return
        assert node.get("additionalProperties") is False, f"{path}: unknown keys must be refused"
        for key, sub in value.items():
            assert key in node["properties"], f"{path}.{key} is not in values.schema.json"
            walk(sub, node["properties"][key], f"{path}.{key}")

    walk(values, schema, "")
    assert sorted(free_form) == sorted([
        ".commonLabels", ".podAnnotations", ".config", ".podSecurityContext", ".containerSecurityContext",
        ".nodeAgent.nodeSelector", ".nodeAgent.affinity", ".nodeAgent.updateStrategy",
        ".nodeAgent.serviceAccount.annotations", ".worker.autoscaling.lag.selector",
        ".worker.autoscaling.behavior", ".worker.podAnnotations", ".worker.nodeSelector", ".worker.affinity",
        ".worker.serviceAccount.annotations", ".sink.secretValues", ".sink.serviceAccount.annotations",
        ".cloudtrail.serviceAccount.annotations", ".k8sAudit.service.annotations",
        ".k8sAudit.serviceAccount.annotations", ".k8sMeta.serviceAccount.annotations",
        ".cloudMeta.accountsInventory", ".cloudMeta.serviceAccount.annotations", ".rules.files",
        ".metrics.serviceMonitor.labels",
    ])  # fmt: skip

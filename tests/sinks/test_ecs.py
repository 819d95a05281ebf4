"""The ECS mapping of detections (sinks/ecs.py), on alerts of the real Falco rules.

The alerts come from falconet's engine running the unmodified Falco rule files of the shared
corpus (falco_rules.yaml, the cloudtrail and k8saudit plugin rules) on the recorded events
of tests/fixtures, so they are shaped exactly as Falco's JSON output.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from falconet.priority import Priority
from falconet.rules.engine import Engine, EngineConfig
from falconet.run import run_files
from falconet.sinks.ecs import SEVERITY, dedot, threat, to_ecs
from tests.conftest import FIXTURES, corpus_dir

RULES = {
    "syscall": "falco/falcosecurity-rules/rules/falco_rules.yaml",
    "aws_cloudtrail": "falco/falcosecurity-plugins/plugins/cloudtrail/rules/aws_cloudtrail_rules.yaml",
    "k8s_audit": "falco/falcosecurity-plugins/plugins/k8saudit/rules/k8s_audit_rules.yaml",
}  # fmt: skip
INPUTS = {
    "syscall": [
        "syscall/execve_bash_container.json",
        "syscall/openat_shadow_read.json",
        "syscall/connect_k8s_api.json",
        "syscall/dup2_socket_stdin.json",
        "syscall/ptrace_attach.json",
        "syscall/symlinkat_shadow.json",
    ],
    "aws_cloudtrail": ["cloudtrail/123456789012_CloudTrail_us-east-1_20240301T1020Z_sample.json"],
    "k8s_audit": ["k8s_audit/exec_pod.json", "k8s_audit/secret_get.json"],
}


@functools.cache
def _alerts(corpus: Path) -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = []
    for source, rules in RULES.items():
        engine = Engine(EngineConfig(rule_matching="all"))
        res = engine.load([corpus / rules])
        assert res.ok, "\n".join(m.format() for m in res.messages)
        paths = [str(FIXTURES / p) for p in INPUTS[source]]
        stats = run_files(engine, paths, lambda d: out.append(d.to_json_obj()), lambda _: None)
        assert stats.input_errors == 0 and stats.eval_errors == 0
    return tuple(out)


def real_alerts() -> tuple[dict[str, Any], ...]:
    """Falco JSON alerts of the real rules (skips when the shared corpus is missing)."""
    corpus = corpus_dir()
    if not (corpus / "falco").is_dir():
        pytest.skip(f"the shared Falco corpus is not at {corpus} (set FALCONET_CORPUS)")
    return _alerts(corpus)


def alert(rule: str) -> dict[str, Any]:
    for a in real_alerts():
        if a["rule"] == rule:
            return a
    raise AssertionError(f"no alert of {rule!r} in the fixtures")


NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def test_terminal_shell_in_container() -> None:
    a = alert("Terminal shell in container")
    d = to_ecs(a, now=NOW)
    assert d["@timestamp"] == a["time"]
    assert d["message"] == a["output"]
    assert d["tags"] == a["tags"]
    assert d["event"]["kind"] == "alert"
    assert d["event"]["id"] == a["id"]
    assert d["event"]["severity"] == SEVERITY["notice"]
    assert d["event"]["created"] == "2026-01-02T03:04:05.678Z"
    assert d["event"]["dataset"] == "falconet.detections"
    assert d["event"]["action"] == "execve"
    assert "process" in d["event"]["category"] and "start" in d["event"]["type"]
    assert d["rule"]["name"] == "Terminal shell in container"
    assert d["log"]["level"] == "notice"
    assert d["host"]["name"] == "node-a"
    p = d["process"]
    assert (p["name"], p["executable"], p["command_line"]) == ("bash", "/usr/bin/bash", "bash")
    assert p["parent"]["name"] == "runc"
    assert p["interactive"] is True  # proc.tty 34816
    assert d["user"] == {"name": "root", "id": "0"}
    c = d["container"]
    assert c["id"].startswith("3ad7b26ded6d") and len(c["id"]) == 64  # full id from enrichment
    assert c["name"] == "web" and c["runtime"] == "containerd"
    assert c["image"]["name"] == "docker.io/library/nginx"
    assert c["image"]["tag"] == ["1.25.3"]
    assert c["security_context"]["privileged"] is False
    # label keys dedotted: io.kubernetes.pod.name cannot collide with io.kubernetes...
    assert c["labels"]["io_kubernetes_pod_namespace"] == "shop"
    o = d["orchestrator"]
    assert o["type"] == "kubernetes" and o["namespace"] == "shop"
    assert o["resource"]["type"] == "pod" and o["resource"]["name"] == "web-7d9f8b6c5-x2x9q"
    assert "app=web" in o["resource"]["label"]
    t = d["threat"]
    assert t["framework"] == "MITRE ATT&CK"
    assert t["tactic"]["id"] == ["TA0002"] and t["tactic"]["name"] == ["Execution"]
    assert t["technique"]["id"] == ["T1059"]
    # the original alert rides along; falconet's fields too
    assert d["falco"]["rule"] == a["rule"] and d["falco"]["priority"] == "Notice"
    assert d["falco"]["output_fields"]["proc_name"] == "bash"
    assert d["falconet"] == {"id": a["id"], "event_id": a["event_id"]}


def test_read_sensitive_file_untrusted_maps_the_file() -> None:
    d = to_ecs(alert("Read sensitive file untrusted"), now=NOW)
    assert d["file"] == {"path": "/etc/shadow", "directory": "/etc", "name": "shadow",
                         "type": "file"}  # fmt: skip
    assert "file" in d["event"]["category"] and "access" in d["event"]["type"]
    assert d["event"]["severity"] == SEVERITY["warning"]
    assert d["process"]["command_line"] == "cat /etc/shadow"
    assert d["threat"]["tactic"]["name"] == ["Credential Access"]
    assert "source" not in d and "destination" not in d


def test_socket_fields_become_source_destination_and_network() -> None:
    d = to_ecs(alert("Contact K8S API Server From Container"), now=NOW)
    assert d["source"] == {"ip": "10.244.1.7", "port": 41234}
    assert d["destination"] == {"ip": "10.96.0.1", "port": 443}
    assert d["network"] == {"transport": "tcp", "type": "ipv4"}
    assert "network" in d["event"]["category"]
    assert "file" not in d  # a socket's fd.name is no file path
    d = to_ecs(alert("Redirect STDOUT/STDIN to Network Connection in Container"), now=NOW)
    assert d["destination"] == {"ip": "203.0.113.50", "port": 4444}


def test_ipv6_socket_and_explicit_client_server_fields() -> None:
    d = to_ecs({"time": "2024-01-01T00:00:00Z", "rule": "r", "priority": "Error", "output": "o",
                "source": "syscall", "tags": [], "hostname": "h",
                "output_fields": {"evt.type": "connect", "fd.type": "ipv6", "fd.l4proto": "udp",
                                  "fd.name": "fd00::1:5353->2001:db8::53:53",
                                  "fd.sip.name": "dns.example"}})  # fmt: skip
    assert d["source"] == {"ip": "fd00::1", "port": 5353}
    assert d["destination"] == {"ip": "2001:db8::53", "port": 53, "domain": "dns.example"}
    assert d["network"] == {"transport": "udp", "type": "ipv6"}


def test_symlink_over_sensitive_file_has_link_and_target() -> None:
    d = to_ecs(alert("Create Symlink Over Sensitive Files"), now=NOW)
    assert d["file"]["path"] == "/tmp/.s" and d["file"]["target_path"] == "/etc/shadow"
    assert "creation" in d["event"]["type"]


def test_ptrace_subtechnique() -> None:
    d = to_ecs(alert("PTRACE attached to process"), now=NOW)
    t = d["threat"]["technique"]
    assert t["id"] == ["T1055"]
    assert t["subtechnique"] == {
        "id": ["T1055.008"],
        "reference": ["https://attack.mitre.org/techniques/T1055/008/"],
    }
    assert d["threat"]["tactic"]["id"] == ["TA0004"]
    assert d["process"]["parent"]["command_line"] == "bash"


def test_cloudtrail_rules() -> None:
    d = to_ecs(alert("CloudTrail Logging Disabled"), now=NOW)
    assert d["cloud"] == {"provider": "aws", "region": "us-east-1"}
    assert d["user"]["name"] == "OpsAdmin"
    assert d["source"] == {"address": "192.0.2.44", "ip": "192.0.2.44"}
    assert d["event"]["provider"] == "aws_cloudtrail"
    assert "configuration" in d["event"]["category"]
    assert d["event"]["severity"] == SEVERITY["warning"]
    assert "process" not in d and "threat" not in d  # no MITRE tag on these rules
    login = to_ecs(alert("Console Login Without MFA"), now=NOW)
    assert "authentication" in login["event"]["category"] and "start" in login["event"]["type"]
    assert login["event"]["severity"] == SEVERITY["critical"]


def test_cloudtrail_fields_a_rule_may_print() -> None:
    """ct.name/ct.src/ct.user.accountid (printed by custom rules) and the account table."""
    a = {"time": "2024-03-01T10:17:45.000000000Z", "rule": "Stop logging", "priority": "Warning",
         "output": "x", "source": "aws_cloudtrail", "tags": ["aws", "mitre_defense_evasion",
         "T1562.008"], "hostname": "collector-1", "id": "abc", "event_id": "ev",
         "output_fields": {"ct.name": "StopLogging", "ct.src": "cloudtrail.amazonaws.com",
                           "ct.user": "alice", "ct.user.accountid": "123456789012",
                           "ct.srcip": "cloudtrail.amazonaws.com", "ct.region": "eu-west-1",
                           "ct.id": "0c1f", "ct.useragent": "aws-cli/2.15",
                           "evt.time": 1709288265000000000},
         "enrichment": {"cloud": {"account": {"id": "123456789012", "name": "prod"}}}}  # fmt: skip
    d = to_ecs(a, now=NOW)
    assert d["event"]["action"] == "StopLogging"
    assert d["event"]["provider"] == "cloudtrail.amazonaws.com"
    assert d["cloud"] == {"provider": "aws", "region": "eu-west-1",
                          "account": {"id": "123456789012", "name": "prod"}}  # fmt: skip
    # a service calling on the user's behalf: an address, not an IP
    assert d["source"] == {"address": "cloudtrail.amazonaws.com"}
    assert d["user_agent"] == {"original": "aws-cli/2.15"}
    assert d["threat"]["technique"]["subtechnique"]["id"] == ["T1562.008"]


def test_k8s_audit_rules() -> None:
    d = to_ecs(alert("Attach/Exec Pod"), now=NOW)
    assert d["user"]["name"] == "dev-bob"
    o = d["orchestrator"]
    assert o["type"] == "kubernetes" and o["namespace"] == "default"
    assert o["resource"] == {"type": "pods", "name": "web-7d4b9c6f8-x2k4q"}
    assert "api" in d["event"]["category"]
    s = to_ecs(alert("K8s Secret Get Successfully"), now=NOW)
    assert s["http"]["response"]["status_code"] == 200
    assert s["event"]["outcome"] == "success"
    assert s["event"]["severity"] == SEVERITY["error"]
    assert s["orchestrator"]["resource"] == {"type": "secrets", "name": "db-password"}


def test_k8s_audit_verb_and_cluster() -> None:
    d = to_ecs({"time": "2024-03-01T11:00:00Z", "rule": "r", "priority": "Notice", "output": "o",
                "source": "k8s_audit", "tags": ["k8s"], "hostname": "vm",
                "output_fields": {"ka.user.name": "eve", "ka.verb": "delete",
                                  "ka.target.resource": "configmaps", "ka.target.name": "cm",
                                  "ka.target.namespace": "kube-system",
                                  "ka.cluster.name": "eu-1", "ka.response.code": "403"}})  # fmt: skip
    assert d["event"]["action"] == "delete" and "deletion" in d["event"]["type"]
    assert d["event"]["outcome"] == "failure"
    assert d["orchestrator"]["cluster"] == {"name": "eu-1"}


def test_every_priority_has_a_severity_higher_for_worse() -> None:
    values = [SEVERITY[p.name.lower()] for p in sorted(Priority)]  # EMERGENCY (0) first
    assert len(set(values)) == 8
    assert values == sorted(values, reverse=True)
    for p in Priority:
        d = to_ecs({"time": "2024-01-01T00:00:00Z", "rule": "r", "priority": p.title,
                    "output": "o", "output_fields": {}})  # fmt: skip
        assert d["event"]["severity"] == SEVERITY[p.name.lower()]
        assert d["log"]["level"] == p.name.lower()


def test_missing_values_are_absent_not_empty() -> None:
    a = alert("Console Login Without MFA")
    no_user = next(
        x
        for x in real_alerts()
        if "ct.user" in x["output_fields"] and not x["output_fields"]["ct.user"]
    )
    d = to_ecs(no_user, now=NOW)
    assert "user" not in d  # ct.user printed <NA>
    d = to_ecs({**a, "output_fields": {"proc.name": "<NA>", "container.id": "host",
                                       "container.name": "host", "evt.type": "open"}})  # fmt: skip
    assert "process" not in d and "container" not in d


def test_mitre_tags() -> None:
    assert threat(["container", "maturity_stable"]) == {}
    t = threat(["mitre_persistence", "T1098", "mitre_persistence", "T1098.004", "mitre_nope"])
    assert t["tactic"]["id"] == ["TA0003"]
    assert t["technique"]["id"] == ["T1098"]
    assert t["technique"]["subtechnique"]["id"] == ["T1098.004"]


def test_output_fields_dedotted_or_kept() -> None:
    fields = {"container.image": "nginx:1", "container.image.repository": "nginx"}
    assert dedot(fields) == {"container_image": "nginx:1", "container_image_repository": "nginx"}
    a = {"time": "2024-01-01T00:00:00Z", "rule": "r", "priority": "Info", "output": "o",
         "output_fields": fields}  # fmt: skip
    assert to_ecs(a)["falco"]["output_fields"] == dedot(fields)
    assert to_ecs(a, flatten_fields=False)["falco"]["output_fields"] == fields
    assert to_ecs(a)["event"]["severity"] == SEVERITY["informational"]


def test_timestamp_from_evt_time_when_time_is_missing() -> None:
    d = to_ecs({"rule": "r", "priority": "Debug", "output": "o",
                "output_fields": {"evt.time": 1718000000123456789}})  # fmt: skip
    assert d["@timestamp"] == "2024-06-10T06:13:20.123456789Z"


def test_container_from_output_fields_alone_and_dedup_count() -> None:
    a = dict(alert("Terminal shell in container"))
    a.pop("enrichment", None)
    a["dedup"] = {"count": 3, "first_time": a["time"], "last_time": a["time"]}
    d = to_ecs(a, now=NOW)
    assert d["container"] == {
        "id": "3ad7b26ded6d",
        "name": "web",
        "image": {"name": "docker.io/library/nginx", "tag": ["1.25.3"]},
    }
    assert d["orchestrator"]["resource"] == {"type": "pod", "name": "web-7d9f8b6c5-x2x9q"}
    assert d["falconet"]["dedup"]["count"] == 3

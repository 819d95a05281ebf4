"""k8s_audit fields against audit.k8s.io Events, as the k8saudit plugin extracts them."""

from __future__ import annotations

import copy
import json
import re
from calendar import timegm
from pathlib import Path
from typing import Any

import pytest

from falconet.event import Event
from falconet.fields import ArgMode, FieldArgError, FieldType
from falconet.rules.fields import k8saudit, registry_for

SOURCE = "k8s_audit"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "k8s_audit"
REG = registry_for(SOURCE)

_TS = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z")


def rfc3339_ns(text: str) -> int:
    m = _TS.fullmatch(text)
    assert m, text
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac = (m.group(7) or "").ljust(9, "0")[:9]
    return timegm((y, mo, d, h, mi, s)) * 1_000_000_000 + int(frac)


def split_events(doc: Any) -> list[dict[str, Any]]:
    """What the plugin pushes: an array or an EventList is split into its Events."""
    if isinstance(doc, list):
        return [e for item in doc for e in split_events(item)]
    if doc.get("kind") == "EventList":
        return list(doc["items"])
    assert doc.get("kind") == "Event"
    return [doc]


def load(name: str) -> list[dict[str, Any]]:
    return split_events(json.loads((FIXTURES / name).read_text()))


def ev(payload: dict[str, Any]) -> Event:
    return Event(
        source=SOURCE,
        type=payload.get("verb", ""),
        ts=rfc3339_ns(payload["stageTimestamp"]),
        host="",
        id=payload.get("auditID", ""),
        payload=payload,
    )


def x(name: str, payload: dict[str, Any], arg: str | None = None) -> Any:
    return REG.bind(name, arg).extract(ev(payload))


def spec_edit(payload: dict[str, Any], **spec: Any) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    out["requestObject"]["spec"].update(spec)
    return out


(POD,) = load("pod_create_privileged.json")
(EXEC,) = load("exec_pod.json")
(SECRET,) = load("secret_get.json")
(CRB,) = load("clusterrolebinding_cluster_admin.json")
(CM,) = load("configmap_aws_keys.json")
(ANON,) = load("anonymous_request.json")
CLUSTERROLE, SERVICE, HEALTHZ, NO_AUDIT_ID = load("eventlist.json")
ALL = [POD, EXEC, SECRET, CRB, CM, ANON, CLUSTERROLE, SERVICE, HEALTHZ, NO_AUDIT_ID]


def test_plugin_metadata() -> None:
    assert k8saudit.PLUGIN == "k8saudit"
    assert k8saudit.PLUGIN_VERSIONS == {
        "k8saudit": "0.18.0",
        "k8saudit-aks": "0.6.0",
        "k8saudit-eks": "0.12.0",
        "k8saudit-gke": "0.9.0",
        "k8saudit-ovh": "0.6.0",
    }
    assert x("evt.pluginname", POD) == "k8saudit"


def test_field_table() -> None:
    fields = {f.name: f for f in k8saudit.FIELDS}
    assert len(fields) == len(k8saudit.FIELDS) == 100
    assert all(f.type is FieldType.CHARBUF for f in fields.values())
    required = {n for n, f in fields.items() if f.arg is ArgMode.REQUIRED}
    assert required == {"ka.uri.param", "ka.req.binding.subject.has_name", "ka.req.volume.hostpath"}
    assert not any(fields[n].index_arg for n in required)
    plain_lists = {n for n, f in fields.items() if f.is_list and f.arg is ArgMode.NONE}
    assert plain_lists == {
        "ka.user.groups",
        "ka.req.binding.subjects",
        "ka.req.binding.subjects.user_names",
        "ka.req.binding.subjects.serviceaccount_names",
        "ka.req.binding.subjects.serviceaccount_ns_names",
        "ka.req.binding.subjects.group_names",
        "ka.req.role.rules",
        "ka.req.pod.supplemental_groups",
    }
    for n, f in fields.items():
        if f.arg is ArgMode.OPTIONAL:
            assert f.is_list and f.index_arg, n
    for lst, count in (("containers", 15), ("initContainers", 15), ("ephemeralContainers", 14)):
        assert sum(n.startswith(f"ka.req.pod.{lst}.") for n in fields) == count
    assert "ka.req.pod.ephemeralContainers.host_port" not in fields


# ---------------------------------------------------------------------------- basic fields


def test_event_fields() -> None:
    assert x("ka.auditid", POD) == "5a7c3e1f-2b4d-4c6e-8f0a-1b2c3d4e5f60"
    assert x("ka.stage", POD) == "ResponseComplete"
    assert x("ka.stage", EXEC) == "ResponseStarted"
    assert x("ka.verb", POD) == "create"
    assert x("ka.verb", ANON) == "list"
    assert x("ka.uri", HEALTHZ) == "/healthz?verbose=1"
    assert x("ka.user.name", POD) == "dev-bob"
    assert x("ka.user.groups", POD) == ("developers", "system:authenticated")
    assert x("ka.user.groups", ANON) == ("system:unauthenticated",)
    assert x("ka.useragent", ANON) == "curl/8.5.0"
    assert x("ka.target.name", POD) == "debug-tools"
    assert x("ka.target.namespace", POD) == "default"
    assert x("ka.target.resource", POD) == "pods"
    assert x("ka.target.subresource", POD) is None
    assert x("ka.target.subresource", EXEC) == "exec"
    assert x("ka.target.name", ANON) is None  # a list has no name
    assert x("ka.target.resource", HEALTHZ) is None  # non-resource URL: no objectRef
    assert x("ka.resp.name", POD) == "debug-tools"
    assert x("ka.resp.name", EXEC) is None
    assert x("ka.cluster.name", POD) == "prod-eu-1"
    assert x("ka.cluster.name", EXEC) is None


def test_values_are_strings() -> None:
    assert x("ka.response.code", POD) == "201"
    assert x("ka.response.code", EXEC) == "101"
    assert x("ka.response.code", ANON) == "200"
    assert x("ka.response.reason", POD) is None
    assert x("ka.req.pod.host_network", POD) == "true"
    assert x("ka.req.pod.host_pid", POD) == "false"
    assert x("ka.req.container.host_network", POD) == "true"
    assert x("ka.req.pod.host_ipc", POD) is None
    assert x("ka.req.pod.run_as_user", POD) == "1000"
    assert x("ka.req.pod.fs_group", POD) == "2000"
    assert x("ka.req.pod.run_as_group", POD) is None
    assert x("ka.req.pod.supplemental_groups", POD) == ("3000", "3001")
    forbidden = copy.deepcopy(ANON)
    forbidden["responseStatus"] = {"metadata": {}, "status": "Failure", "reason": "Forbidden",
                                   "code": 403}  # fmt: skip
    assert x("ka.response.reason", forbidden) == "Forbidden"
    assert x("ka.response.code", forbidden) == "403"
    nulls = copy.deepcopy(ANON)
    nulls["objectRef"]["namespace"] = None
    assert x("ka.target.namespace", nulls) == "null"  # non-strings become JSON text


def test_annotations() -> None:
    assert x("ka.auth.decision", ANON) == "allow"
    assert x("ka.auth.reason", ANON) == (
        'RBAC: allowed by ClusterRoleBinding "anon-view" of ClusterRole "view" to User "system:anonymous"'
    )
    assert x("ka.auth.reason", POD) == ""
    assert x("ka.security.pod.violations", POD).startswith("would violate PodSecurity")
    assert x("ka.auth.openshift.decision", POD) is None
    assert x("ka.auth.openshift.username", POD) is None
    assert x("ka.validations.admission.policy.failure", POD) is None
    openshift = copy.deepcopy(ANON)
    openshift["annotations"].update(
        {
            "authentication.openshift.io/decision": "allow",
            "authentication.openshift.io/username": "kube:admin",
            "validation.policy.admission.k8s.io/validation_failure": '[{"message":"no"}]',
        }
    )
    assert x("ka.auth.openshift.decision", openshift) == "allow"
    assert x("ka.auth.openshift.username", openshift) == "kube:admin"
    assert x("ka.validations.admission.policy.failure", openshift) == '[{"message":"no"}]'


def test_impersonation() -> None:
    assert x("ka.impuser.name", SECRET) == "ops-admin"
    assert x("ka.impuser.name", POD) is None
    assert x("ka.user.name", SECRET) == "system:serviceaccount:ci:deployer"


def test_every_field_is_missing_without_audit_id() -> None:
    assert "auditID" not in NO_AUDIT_ID
    assert NO_AUDIT_ID["verb"] == "list" and NO_AUDIT_ID["user"]["username"]
    e = ev(NO_AUDIT_ID)
    for f in k8saudit.FIELDS:
        arg = "x" if f.arg is ArgMode.REQUIRED else None
        assert f.bind(arg).extract(e) is None, f.name
    # the json plugin does not care
    assert REG.bind("jevt.value", "/verb").extract(e) == "list"
    assert REG.bind("jevt.value", "/stage").extract(e) == "ResponseComplete"
    # a null auditID is still an auditID
    assert x("ka.verb", {**NO_AUDIT_ID, "auditID": None}) == "list"


def test_uri_params() -> None:
    assert x("ka.uri.param", EXEC, "command") == "sh"  # first value only
    assert x("ka.uri.param", EXEC, "container") == "web"
    assert x("ka.uri.param", EXEC, "tty") == "true"
    assert x("ka.uri.param", EXEC, "missing") is None
    assert x("ka.uri.param", ANON, "limit") == "500"
    assert x("ka.uri.param", POD, "fieldManager") == "kubectl-client-side-apply"
    assert x("ka.uri.param", SECRET, "limit") is None  # no query at all


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/api?command=a%20b&x=1", "a b"),
        ("/api?command=a+b", "a b"),
        ("/api?command=id%3B+cat+%2Fetc%2Fshadow", "id; cat /etc/shadow"),
        ("/api?command=", ""),
        ("/api?command", ""),
        ("/api?a=1&&command=z", "z"),
        ("/api?command=x#frag", "x"),
        ("/api?command=%C3%A9", "é"),
        # Go's url.ParseQuery reports an error for any bad pair: the field is missing
        ("/api?command=x&bad=%zz", None),
        ("/api?command=x;y=1", None),
        ("/api?command=%2", None),
        # url.Parse errors
        ("/api\x7f?command=x", None),
        ("/api%zz?command=x", None),
        ("/api?command=x#%zz", None),
        ("a:b/c?command=x", "x"),  # scheme "a", opaque
        ("1a:b?command=x", None),  # no scheme: first path segment has a colon
        (":x?command=x", None),  # missing protocol scheme
        ("//host:port/p?command=x", None),  # bad port
        ("//host:80/p?command=x", "x"),
    ],
)
def test_uri_param_parsing(uri: str, expected: str | None) -> None:
    payload = {**SECRET, "requestURI": uri}
    assert x("ka.uri.param", payload, "command") == expected


def test_target_pod_name() -> None:
    assert x("ka.target.pod.name", POD) == "debug-tools"
    assert x("ka.target.pod.name", EXEC) is None  # subresource
    assert x("ka.target.pod.name", SECRET) is None


# ---------------------------------------------------------------------------- pods


def test_container_images() -> None:
    assert x("ka.req.pod.containers.image", POD) == (
        "docker.io/library/nginx:1.25.4",
        "registry.example.com:5000/tools/debug@sha256:4f0c1a2b3c4d5e6f",
    )
    assert x("ka.req.pod.containers.image", POD, "1") == (
        "registry.example.com:5000/tools/debug@sha256:4f0c1a2b3c4d5e6f",
    )
    assert x("ka.req.pod.containers.image", POD, "2") is None
    assert x("ka.req.pod.initContainers.image", POD) == ("busybox:1.36",)
    assert x("ka.req.pod.ephemeralContainers.image", POD) is None
    assert x("ka.req.container.image", POD) == "docker.io/library/nginx:1.25.4"
    assert x("ka.req.pod.containers.name", POD) == ("shell", "sidecar")
    assert x("ka.req.pod.containers.image", SECRET) is None


def test_image_repository_quirk() -> None:
    # cut at the first ':' then at '@': a registry port swallows the rest
    assert x("ka.req.pod.containers.image.repository", POD) == (
        "docker.io/library/nginx",
        "registry.example.com",
    )
    assert x("ka.req.container.image.repository", POD) == "docker.io/library/nginx"
    assert x("ka.req.pod.initContainers.image.repository", POD) == ("busybox",)
    pod = spec_edit(POD, containers=[{"name": "a", "image": "falcosecurity/falco@sha256:abc"},
                                     {"name": "b", "image": "nginx"}])  # fmt: skip
    assert x("ka.req.pod.containers.image.repository", pod) == ("falcosecurity/falco", "nginx")


def test_one_container_without_image_fails_the_list() -> None:
    pod = spec_edit(POD, containers=[{"name": "a", "image": "nginx"}, {"name": "b"}])
    assert x("ka.req.pod.containers.image", pod) is None
    assert x("ka.req.pod.containers.image.repository", pod) is None
    assert x("ka.req.pod.containers.image", pod, "0") == ("nginx",)
    assert x("ka.req.container.image", pod) == "nginx"
    assert x("ka.req.pod.containers.name", pod) == ("a", "b")


def test_privileged_lists() -> None:
    # the sidecar sets no securityContext: skipped, not "false"
    assert x("ka.req.pod.containers.privileged", POD) == ("true",)
    assert x("ka.req.pod.containers.privileged", POD, "0") == ("true",)
    assert x("ka.req.pod.containers.privileged", POD, "1") is None
    assert x("ka.req.pod.initContainers.privileged", POD) == ("false",)
    assert x("ka.req.pod.ephemeralContainers.privileged", POD) is None
    assert x("ka.req.container.privileged", POD) == "true"
    unprivileged = spec_edit(POD, containers=[{"name": "a", "image": "x"}])
    assert x("ka.req.pod.containers.privileged", unprivileged) is None
    assert x("ka.req.container.privileged", unprivileged) == "false"
    assert x("ka.req.container.privileged", SECRET) is None


def test_ephemeral_containers() -> None:
    pod = copy.deepcopy(POD)
    pod["requestObject"]["spec"]["ephemeralContainers"] = [
        {"name": "debugger", "image": "ghcr.io/x/dbg:2", "securityContext": {"privileged": True},
         "targetContainerName": "shell"},
    ]  # fmt: skip
    assert x("ka.req.pod.ephemeralContainers.image", pod) == ("ghcr.io/x/dbg:2",)
    assert x("ka.req.pod.ephemeralContainers.name", pod) == ("debugger",)
    assert x("ka.req.pod.ephemeralContainers.privileged", pod) == ("true",)
    assert x("ka.req.pod.ephemeralContainers.image.repository", pod) == ("ghcr.io/x/dbg",)


def test_security_context_lists() -> None:
    assert x("ka.req.pod.containers.allow_privilege_escalation", POD) == ("true",)
    assert x("ka.req.pod.containers.read_only_fs", POD) is None
    assert x("ka.req.pod.containers.run_as_user", POD) is None
    assert x("ka.req.pod.containers.proc_mount", POD) is None
    # each container's add list is one JSON text
    assert x("ka.req.pod.containers.add_capabilities", POD) == ('["NET_ADMIN","SYS_TIME"]',)
    pod = spec_edit(POD, containers=[{"securityContext": {"runAsUser": 0, "runAsGroup": 10,
                                                          "readOnlyRootFilesystem": False,
                                                          "procMount": "Unmasked"}}])  # fmt: skip
    assert x("ka.req.pod.containers.run_as_user", pod) == ("0",)
    assert x("ka.req.pod.containers.run_as_group", pod) == ("10",)
    assert x("ka.req.pod.containers.read_only_fs", pod) == ("false",)
    assert x("ka.req.pod.containers.proc_mount", pod) == ("Unmasked",)


def test_effective_run_as_quirk() -> None:
    # upstream reads spec.runAsUser / <container>.runAsUser (not securityContext): "0" each
    assert x("ka.req.pod.containers.eff_run_as_user", POD) == ("0", "0")
    assert x("ka.req.pod.containers.eff_run_as_group", POD) == ("0", "0")
    assert x("ka.req.pod.initContainers.eff_run_as_user", POD) == ("0",)
    pod = spec_edit(POD, runAsUser=7, containers=[{"runAsUser": 9}, {"name": "x"}])
    assert x("ka.req.pod.containers.eff_run_as_user", pod) == ("9", "7")
    assert x("ka.req.pod.containers.eff_run_as_user", pod, "0") == ("9",)
    # with an index, a container lacking the key is "not available", not a hole
    assert x("ka.req.pod.containers.eff_run_as_user", pod, "1") is None


def test_commands_and_args() -> None:
    assert x("ka.req.pod.containers.command", POD) == ("sleep infinity",)
    assert x("ka.req.pod.containers.args", POD) == ("--verbose --port=9090",)
    assert x("ka.req.pod.initContainers.command", POD) == ("sh -c chmod 700 /data",)
    assert x("ka.req.pod.initContainers.args", POD) is None
    bad = spec_edit(POD, containers=[{"command": ["a", 1]}])
    assert x("ka.req.pod.containers.command", bad) is None
    bad = spec_edit(POD, containers=[{"command": "a"}])
    assert x("ka.req.pod.containers.command", bad) is None
    assert x("ka.req.pod.containers.command", spec_edit(POD, containers=[{"command": []}])) == ("",)


def test_host_ports() -> None:
    # hostPort if set, else containerPort
    assert x("ka.req.pod.containers.host_port", POD) == ("80", "9090")
    assert x("ka.req.pod.initContainers.host_port", POD) is None
    assert x("ka.req.pod.containers.host_port", spec_edit(POD, containers=[{"ports": 1}])) is None


def test_volumes() -> None:
    assert x("ka.req.pod.volumes.hostpath", POD) == ("/var/run/docker.sock", "/etc")
    assert x("ka.req.pod.volumes.hostpath", POD, "2") == ("/etc",)
    assert x("ka.req.pod.volumes.hostpath", POD, "1") is None
    assert x("ka.req.pod.volumes.volume_type", POD) == ("hostPath", "emptyDir", "hostPath")
    assert x("ka.req.pod.volumes.volume_type", POD, "1") == ("emptyDir",)
    assert x("ka.req.pod.volumes.flexvolume_driver", POD) is None
    flex = spec_edit(POD, volumes=[{"name": "f", "flexVolume": {"driver": "cifs"}}])
    assert x("ka.req.pod.volumes.flexvolume_driver", flex) == ("cifs",)
    assert x("ka.req.volume.hostpath", POD, "/etc") == "true"
    assert x("ka.req.volume.hostpath", POD, "/var/run/*") == "true"
    assert x("ka.req.volume.hostpath", POD, "/var/run") == "false"
    assert x("ka.req.volume.hostpath", SECRET, "/etc") is None


# ---------------------------------------------------------------------------- rbac, services


def test_binding_fields() -> None:
    assert x("ka.req.binding.role", CRB) == "cluster-admin"
    subjects = x("ka.req.binding.subjects", CRB)
    assert subjects[0] == '{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"eve"}'
    assert len(subjects) == 4
    assert x("ka.req.binding.subjects.user_names", CRB) == ("eve",)
    assert x("ka.req.binding.subjects.serviceaccount_names", CRB) == ("default", "orphan")
    # a service account without namespace is dropped from the namespaced form
    assert x("ka.req.binding.subjects.serviceaccount_ns_names", CRB) == ("kube-system:default",)
    assert x("ka.req.binding.subjects.group_names", CRB) == ("contractors",)
    assert x("ka.req.binding.subjects.group_names", POD) is None
    assert x("ka.req.binding.subject.has_name", CRB, "eve") == "true"
    assert x("ka.req.binding.subject.has_name", POD, "anything") == "true"


def test_role_rules() -> None:
    rules = x("ka.req.role.rules", CLUSTERROLE)
    assert (
        rules[0]
        == '{"apiGroups":[""],"resources":["pods","pods/exec"],"verbs":["get","list","delete"]}'
    )
    assert len(rules) == 3
    assert x("ka.req.role.rules.verbs", CLUSTERROLE) == ("get", "list", "delete", "*", "get")
    assert x("ka.req.role.rules.resources", CLUSTERROLE) == ("pods", "pods/exec", "deployments")
    assert x("ka.req.role.rules.apiGroups", CLUSTERROLE) == ("", "apps")
    assert x("ka.req.role.rules.nonResourceURLs", CLUSTERROLE) == ("/metrics",)
    assert x("ka.req.role.rules.verbs", CLUSTERROLE, "1") == ("*",)
    assert x("ka.req.role.rules.verbs", CLUSTERROLE, "3") is None
    assert x("ka.req.role.rules", CRB) is None


def test_service_fields() -> None:
    assert x("ka.req.service.type", SERVICE) == "NodePort"
    # the whole ports array is one element
    assert x("ka.req.service.ports", SERVICE) == (
        '[{"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":30080}]',
    )
    assert x("ka.req.service.ports", SERVICE, "5") == x("ka.req.service.ports", SERVICE)


def test_configmap_fields() -> None:
    assert x("ka.req.configmap.name", CM) == "backup-config"
    obj = x("ka.req.configmap.obj", CM)
    assert obj.startswith('{"credentials":"[default]\\naws_access_key_id = AKIA2EXAMPLEBACKUP01\\n')
    assert "aws_access_key_id" in obj
    # written the way the apiserver's Go encoder writes it
    assert obj.endswith('"endpoint":"https://s3.example.com/?region=eu\\u0026style=path"}')


def test_sourceips_quirk() -> None:
    # upstream reads requestObject.rules[*].sourceIPs: missing for ordinary events
    assert POD["sourceIPs"] == ["10.0.12.34"]
    assert x("ka.sourceips", POD) is None
    odd = copy.deepcopy(CLUSTERROLE)
    odd["requestObject"]["rules"][0]["sourceIPs"] = ["10.1.1.1"]
    assert x("ka.sourceips", odd) == ("10.1.1.1",)


def test_list_indexes_are_validated() -> None:
    for arg in ("01", "x", "-1", ""):
        with pytest.raises(FieldArgError):
            REG.bind("ka.req.pod.containers.image", arg)
    REG.bind("ka.req.pod.containers.image", str(2**64 - 1))
    with pytest.raises(FieldArgError):
        REG.bind("ka.req.pod.containers.image", str(2**64))


def test_huge_index_is_no_filter() -> None:
    # int(uint64(2^64-1)) is -1 in Go: the plugin's "no index"
    assert x("ka.req.pod.containers.image", POD, str(2**64 - 1)) == x(
        "ka.req.pod.containers.image", POD
    )
    assert x("ka.req.pod.containers.image", POD, str(2**63)) is None


# ---------------------------------------------------------------------------- json, info


def test_jevt_fields_used_by_rules() -> None:
    assert x("jevt.value", POD, "/stage") == "ResponseComplete"
    assert x("jevt.value", EXEC, "/stage") == "ResponseStarted"
    assert x("jevt.value", POD, "/requestObject/spec/tls") is None
    volumes = x("jevt.value", POD, "/requestObject/spec/volumes")
    assert volumes.startswith('[{"name":"docker-sock","hostPath":{"path":"/var/run/docker.sock"')
    assert x("jevt.value", POD, "/requestObject/ephemeralContainers/0/image") is None
    assert x("jevt.rawtime", POD) == "1709290801204518000"
    obj = x("jevt.obj", CRB)
    assert obj.startswith('{\n  "kind": "Event",\n  "apiVersion": "audit.k8s.io/v1",\n')
    assert json.loads(obj) == CRB


def test_plugininfo_is_the_compact_event() -> None:
    info = x("evt.plugininfo", POD)
    assert info.startswith(
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse"'
    )
    assert '"note":"tools \\u003cdebug\\u003e \\u0026 more"' in info
    assert json.loads(info) == POD


def test_rule_macros_see_expected_values() -> None:
    """Values the k8s_audit_rules.yaml macros compare against."""
    # kevt / kevt_started
    assert x("jevt.value", POD, "/stage") in ("ResponseComplete",)
    # response_successful: ka.response.code startswith 2
    assert x("ka.response.code", POD).startswith("2")
    # pod / pod_subresource
    assert x("ka.target.resource", EXEC) == "pods" and x("ka.target.subresource", EXEC) in (
        "exec",
        "attach",
    )
    # Create Privileged Pod: any_container_privileged uses `intersects (true)`
    assert "true" in x("ka.req.pod.containers.privileged", POD)
    # sensitive_vol_mount: intersects (/proc, /var/run/docker.sock, /, /etc, ...)
    assert {"/var/run/docker.sock", "/etc"} <= set(x("ka.req.pod.volumes.hostpath", POD))
    # Create HostNetwork Pod: ka.req.pod.host_network intersects (true)
    assert x("ka.req.pod.host_network", POD) == "true"
    # Anonymous Request Allowed
    assert x("ka.user.name", ANON) == "system:anonymous" and x("ka.auth.decision", ANON) == "allow"
    # health_endpoint: ka.uri=/healthz or ka.uri startswith /healthz?
    assert x("ka.uri", HEALTHZ).startswith("/healthz?")
    # K8s Secret Get: secret, kget
    assert (x("ka.target.resource", SECRET), x("ka.verb", SECRET)) == ("secrets", "get")
    # Create/Modify Configmap With Private Credentials
    assert "aws_access_key_id" in x("ka.req.configmap.obj", CM)
    # ClusterRole With Wildcard / Exec created
    assert "*" in x("ka.req.role.rules.verbs", CLUSTERROLE)
    assert "pods/exec" in x("ka.req.role.rules.resources", CLUSTERROLE)
    # Attach to cluster-admin Role
    assert x("ka.req.binding.role", CRB) == "cluster-admin"


def test_every_event_extracts_every_field() -> None:
    for payload in ALL:
        e = ev(payload)
        for f in k8saudit.FIELDS:
            value = f.bind("x" if f.arg is ArgMode.REQUIRED else None).extract(e)
            if value is not None:
                assert isinstance(value, str) or (
                    isinstance(value, tuple) and value and all(isinstance(v, str) for v in value)
                ), f.name

"""End-to-end fidelity of the public Kubernetes audit rules (falcosecurity/plugins
``plugins/k8saudit/rules/k8s_audit_rules.yaml``, 48 rules) and the GKE overlay.

Events are audit.k8s.io/v1 ``Event`` objects as the API server writes them (stage,
responseStatus.code, the authorization annotations, requestObject bodies). All k8s audit
rules share one bucket, so with Falco's default ``rule_matching: first`` only the earliest
matching rule in file order fires; "Disallowed K8s User", the first rule, shadows the others
for any user outside the allow lists (falco-language.md §3.14). Field mapping: §4.6 and the
k8saudit plugin's extract.go.

Five rules cannot fire with the file's defaults because their tuning hook is always true
(``allowed_k8s_containers``, ``allowed_full_admin_users``, ``allow_all_k8s_nodes``) or the
rule's gate is never true (``consider_all_events``); they are exercised with the one-macro
override a user would write.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from falconet.event import Event
from falconet.inputs import RecordDecoder
from falconet.rules.engine import Engine, EngineConfig
from falconet.run import run_files

PLUGINS = "falco/falcosecurity-plugins/plugins/"
K8S = PLUGINS + "k8saudit/rules/k8s_audit_rules.yaml"
GKE = PLUGINS + "k8saudit-gke/rules/k8s_audit_rules_gke.yaml"


def _engine(corpus: Path, matching: str, *files: str, extra: tuple[str, ...] = ()) -> Engine:
    e = Engine(EngineConfig(rule_matching=matching))
    texts = [(Path(f).name, (corpus / f).read_text()) for f in (files or (K8S,))]
    texts += [(f"custom{i}.yaml", t) for i, t in enumerate(extra)]
    res = e.load_texts(texts)
    assert res.ok, "\n".join(m.format() for m in res.messages)
    return e


@pytest.fixture(scope="module")
def all_engine(corpus: Path) -> Engine:
    return _engine(corpus, "all")


@pytest.fixture(scope="module")
def first_engine(corpus: Path) -> Engine:
    return _engine(corpus, "first")


# -- audit events -------------------------------------------------------------------------------

_nums = itertools.count(1)
_decoder = RecordDecoder(host="apiserver-audit", cluster="prod-eu-1")

ADMIN = ("kubernetes-admin", ["system:masters", "system:authenticated"])
BOB = ("dev-bob", ["developers", "system:authenticated"])
ANON = ("system:anonymous", ["system:unauthenticated"])
RS_CONTROLLER = ("system:serviceaccount:kube-system:replicaset-controller",
                 ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                  "system:authenticated"])  # fmt: skip

_PLURAL_KIND = {
    "pods": ("Pod", "v1"), "services": ("Service", "v1"), "configmaps": ("ConfigMap", "v1"),
    "secrets": ("Secret", "v1"), "namespaces": ("Namespace", "v1"),
    "serviceaccounts": ("ServiceAccount", "v1"), "nodes": ("Node", "v1"),
    "deployments": ("Deployment", "apps/v1"),
    "ingresses": ("Ingress", "networking.k8s.io/v1"),
    "roles": ("Role", "rbac.authorization.k8s.io/v1"),
    "clusterroles": ("ClusterRole", "rbac.authorization.k8s.io/v1"),
    "rolebindings": ("RoleBinding", "rbac.authorization.k8s.io/v1"),
    "clusterrolebindings": ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1"),
}  # fmt: skip
_REASONS = {200: "", 201: "", 101: "", 403: "Forbidden", 404: "NotFound", 409: "AlreadyExists"}


def _uri(verb: str, resource: str, ns: str | None, name: str | None, sub: str | None) -> str:
    _, api = _PLURAL_KIND.get(resource, ("", "v1"))
    base = "/api/v1" if api == "v1" else f"/apis/{api}"
    path = base + (f"/namespaces/{ns}" if ns and resource != "namespaces" else "") + f"/{resource}"
    if name and verb not in ("create",) or sub:
        path += f"/{name}"
    if sub:
        path += f"/{sub}"
    if verb == "create" and not sub:
        path += "?fieldManager=kubectl-client-side-apply&fieldValidation=Strict"
    return path


def audit(verb: str, resource: str, *, name: str | None = None, namespace: str | None = "default",
          subresource: str | None = None, who: tuple[str, list[str]] = ADMIN,
          stage: str = "ResponseComplete", code: int | None = None,
          request: dict[str, Any] | None = None, uri: str | None = None,
          decision: str = "allow", reason: str | None = None,
          response: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """One audit.k8s.io/v1 Event."""
    n = next(_nums)
    if code is None:
        code = 201 if verb == "create" and not subresource else 101 if subresource in (
            "exec", "attach", "portforward") else 200
    obj_ref: dict[str, Any] = {"resource": resource}
    if namespace is not None and resource not in ("namespaces", "nodes", "clusterroles",
                                                  "clusterrolebindings"):
        obj_ref["namespace"] = namespace
    if name is not None:
        obj_ref["name"] = name
    obj_ref["apiVersion"] = _PLURAL_KIND.get(resource, ("", "v1"))[1].split("/")[-1]
    if "/" in _PLURAL_KIND.get(resource, ("", "v1"))[1]:
        obj_ref["apiGroup"] = _PLURAL_KIND[resource][1].split("/")[0]
    if subresource is not None:
        obj_ref["subresource"] = subresource
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse" if request is not None else "Metadata",
        "auditID": f"5a7c3e1f-2b4d-4c6e-8f0a-{n:012x}",
        "stage": stage,
        "requestURI": uri or _uri(verb, resource, obj_ref.get("namespace"), name, subresource),
        "verb": verb,
        "user": {"username": who[0], "groups": list(who[1])},
        "sourceIPs": ["10.0.12.34"],
        "userAgent": "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819",
        "objectRef": obj_ref,
    }
    if stage != "RequestReceived":
        status: dict[str, Any] = {"metadata": {}, "code": code}
        if code >= 400:
            status.update({"status": "Failure", "reason": _REASONS.get(code, "Invalid"),
                           "message": f"{resource} \"{name}\" {_REASONS.get(code, 'invalid')}"})
        ev["responseStatus"] = status
    if request is not None:
        ev["requestObject"] = copy.deepcopy(request)
    if response is not None:
        ev["responseObject"] = response
    elif request is not None and code < 300 and verb == "create":
        meta = dict(request.get("metadata", {}), uid=f"0c9b8a7d-6e5f-4a3b-2c1d-{n:012x}",
                    resourceVersion=str(918000 + n), creationTimestamp="2024-03-01T11:00:01Z")
        ev["responseObject"] = {"kind": request.get("kind"), "apiVersion": request.get("apiVersion"),
                                "metadata": meta}
    ev["requestReceivedTimestamp"] = f"2024-03-01T11:{n % 60:02d}:01.180233Z"
    ev["stageTimestamp"] = f"2024-03-01T11:{n % 60:02d}:01.204518Z"
    ev["annotations"] = {
        "authorization.k8s.io/decision": decision,
        "authorization.k8s.io/reason": reason if reason is not None else (
            'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" '
            'to Group "system:masters"' if decision == "allow" else ""),
    }
    return ev


def to_event(ev: dict[str, Any]) -> Event:
    e = _decoder.audit(ev)
    e.num = next(_nums)
    return e


def pod_spec(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"containers": list(containers), "restartPolicy": "Always",
            "serviceAccountName": "default", **spec}  # fmt: skip


def container(image: str, name: str = "app", privileged: bool | None = None,
              **extra: Any) -> dict[str, Any]:  # fmt: skip
    c: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                         "resources": {}, **extra}  # fmt: skip
    if privileged is not None:
        c["securityContext"] = {"privileged": privileged}
    return c


def create_pod(spec: dict[str, Any], *, name: str = "debug-tools", namespace: str = "default",
               who: tuple[str, list[str]] = ADMIN) -> dict[str, Any]:  # fmt: skip
    body = {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "debug"}},
            "spec": spec, "status": {}}  # fmt: skip
    return audit("create", "pods", name=name, namespace=namespace, who=who, request=body)


ALPINE = "docker.io/library/alpine:3.19"
NGINX = "docker.io/library/nginx:1.25.4"


def privileged_pod(*images: str, init: bool = False) -> dict[str, Any]:
    if init:
        return create_pod(pod_spec(container(NGINX), initContainers=[
            container(images[0], "init-sysctl", privileged=True,
                      command=["sysctl", "-w", "vm.max_map_count=262144"])]))
    return create_pod(pod_spec(*(container(img, f"c{i}", privileged=i == 0)
                                 for i, img in enumerate(images))))  # fmt: skip


def hostpath_pod(path: str, image: str = NGINX) -> dict[str, Any]:
    return create_pod(pod_spec(
        container(image, volumeMounts=[{"name": "host", "mountPath": "/host"}]),
        volumes=[{"name": "host", "hostPath": {"path": path, "type": ""}},
                 {"name": "kube-api-access-x2x", "projected": {"sources": []}}]))


def node_shell_pod() -> dict[str, Any]:
    # what `kubectl node-shell` creates: nsenter into the node with everything open
    spec = pod_spec(
        container(ALPINE, "shell", privileged=True,
                  command=["nsenter", "--target", "1", "--mount", "--uts", "--ipc", "--net",
                           "--pid", "--", "bash", "-l"]),
        hostNetwork=True, hostPID=True, hostIPC=True,
        volumes=[{"name": "root", "hostPath": {"path": "/"}}])  # fmt: skip
    return create_pod(spec, name="nsenter-x7k2p")


def service(svc_type: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": svc_type, "selector": {"app": "web"},
                            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    if svc_type == "NodePort":
        spec["ports"][0]["nodePort"] = 31337
    body = {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "shop"},
            "spec": spec}  # fmt: skip
    return audit("create", "services", name="web", namespace="shop", request=body)


def configmap(verb: str, data: dict[str, str]) -> dict[str, Any]:
    if verb == "create":
        body: dict[str, Any] = {"kind": "ConfigMap", "apiVersion": "v1",
                                "metadata": {"name": "backup-config", "namespace": "default"},
                                "data": data}  # fmt: skip
    else:  # a strategic-merge patch body
        body = {"data": data}
    return audit(verb, "configmaps", name="backup-config", request=body)


def anonymous(uri: str, resource: str | None = None, verb: str = "get",
              decision: str = "allow") -> dict[str, Any]:  # fmt: skip
    reason = ('RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole '
              '"system:public-info-viewer" to Group "system:unauthenticated"')  # fmt: skip
    ev = audit(verb, resource or "", who=ANON, uri=uri, decision=decision,
               reason=reason if decision == "allow" else "", code=200 if decision == "allow" else 403)
    if resource is None:  # a non-resource URL: no objectRef
        del ev["objectRef"]
    return ev


def exec_pod(sub: str = "exec", stage: str = "ResponseStarted", verb: str = "create",
             who: tuple[str, list[str]] = BOB) -> dict[str, Any]:  # fmt: skip
    uri = ("/api/v1/namespaces/default/pods/web-7d4b9c6f8-x2k4q/" + sub +
           "?command=sh&command=-c&command=id%3B+cat+%2Fetc%2Fshadow&container=web&stdin=true"
           "&stdout=true&tty=true" if sub == "exec" else
           f"/api/v1/namespaces/default/pods/web-7d4b9c6f8-x2k4q/{sub}")  # fmt: skip
    return audit(verb, "pods", name="web-7d4b9c6f8-x2k4q", subresource=sub, stage=stage, uri=uri,
                 who=who)


def ephemeral_container(verb: str = "patch") -> dict[str, Any]:
    # `kubectl debug -it web --image=busybox --target=web`
    body = {"spec": {"ephemeralContainers": [{
        "name": "debugger-x7k2p", "image": "busybox:1.36", "stdin": True, "tty": True,
        "targetContainerName": "web", "terminationMessagePolicy": "File"}]}}  # fmt: skip
    return audit(verb, "pods", name="web-7d4b9c6f8-x2k4q", subresource="ephemeralcontainers",
                 request=body)


def namespace_op(verb: str, name: str, code: int | None = None,
                 who: tuple[str, list[str]] = ADMIN) -> dict[str, Any]:  # fmt: skip
    body = ({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name}, "spec": {},
             "status": {"phase": "Active"}} if verb == "create" else None)  # fmt: skip
    return audit(verb, "namespaces", name=name, namespace=None, code=code, request=body, who=who)


def serviceaccount(name: str, namespace: str, code: int | None = None) -> dict[str, Any]:
    body = {"kind": "ServiceAccount", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace}}  # fmt: skip
    return audit("create", "serviceaccounts", name=name, namespace=namespace, request=body,
                 code=code)


def role_obj(kind: str, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    resource = "clusterroles" if kind == "ClusterRole" else "roles"
    meta: dict[str, Any] = {"name": name}
    if kind == "Role":
        meta["namespace"] = "shop"
    body = {"kind": kind, "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": meta,
            "rules": rules}  # fmt: skip
    return audit("create", resource, name=name, namespace="shop", request=body)


def binding(role: str, kind: str = "ClusterRoleBinding") -> dict[str, Any]:
    resource = "clusterrolebindings" if kind == "ClusterRoleBinding" else "rolebindings"
    body = {"kind": kind, "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": f"ops-{role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "ci-bot", "namespace": "ci"}]}  # fmt: skip
    return audit("create", resource, name=f"ops-{role}", namespace="shop", request=body)


def system_clusterrole(verb: str, name: str) -> dict[str, Any]:
    body = ({"metadata": {"labels": {"kubernetes.io/bootstrapping": None}}}
            if verb == "patch" else None)  # fmt: skip
    return audit(verb, "clusterroles", name=name, namespace=None, request=body)


def deployment(verb: str, code: int | None = None) -> dict[str, Any]:
    body = ({"kind": "Deployment", "apiVersion": "apps/v1",
             "metadata": {"name": "web", "namespace": "shop"},
             "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": {"labels": {"app": "web"}},
                                   "spec": pod_spec(container(NGINX))}}}
            if verb == "create" else None)  # fmt: skip
    return audit(verb, "deployments", name="web", namespace="shop", request=body, code=code)


def secret(verb: str, *, namespace: str = "shop", code: int | None = None,
           who: tuple[str, list[str]] = ADMIN, name: str | None = "db-credentials") -> dict[str, Any]:  # fmt: skip
    body = ({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": name, "namespace": namespace},
             "type": "Opaque", "data": {"password": "aHVudGVyMg=="}}
            if verb == "create" else None)  # fmt: skip
    return audit(verb, "secrets", name=name, namespace=namespace, request=body, code=code, who=who)


def ingress(tls: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"ingressClassName": "nginx", "rules": [{
        "host": "shop.example.com", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}  # fmt: skip
    if tls:
        spec["tls"] = [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]
    body = {"kind": "Ingress", "apiVersion": "networking.k8s.io/v1",
            "metadata": {"name": "shop", "namespace": "shop"}, "spec": spec}  # fmt: skip
    return audit("create", "ingresses", name="shop", namespace="shop", request=body)


def node_register(code: int) -> dict[str, Any]:
    who = ("system:node:ip-10-0-1-23.eu-west-1.compute.internal", ["system:nodes", "system:authenticated"])
    body = {"kind": "Node", "apiVersion": "v1",
            "metadata": {"name": "ip-10-0-1-23.eu-west-1.compute.internal",
                         "labels": {"kubernetes.io/os": "linux"}}}  # fmt: skip
    return audit("create", "nodes", name="ip-10-0-1-23.eu-west-1.compute.internal", namespace=None,
                 who=who, request=body, code=code,
                 decision="allow", reason="")  # Node authorizer


# -- cases ----------------------------------------------------------------------------------------

DISALLOWED_USER = "Disallowed K8s User"
DISALLOWED_POD = "Create Disallowed Pod"
PRIV = "Create Privileged Pod"
MOUNT = "Create Sensitive Mount Pod"
HOSTNET = "Create HostNetwork Pod"
HOSTPID = "Create HostPid Pod"
HOSTIPC = "Create HostIPC Pod"
NODEPORT = "Create NodePort Service"
CM_CREDS = "Create/Modify Configmap With Private Credentials"
ANON_ALLOWED = "Anonymous Request Allowed"
EXEC = "Attach/Exec Pod"
PORTFWD = "port-forward"
EPHEMERAL = "EphemeralContainers Created"
DIS_NS = "Create Disallowed Namespace"
KUBE_NS_POD = "Pod Created in Kube Namespace"
KUBE_NS_SA = "Service Account Created in Kube Namespace"
SYS_ROLE = "System ClusterRole Modified/Deleted"
CLUSTER_ADMIN = "Attach to cluster-admin Role"
WILDCARD = "ClusterRole With Wildcard Created"
WRITE = "ClusterRole With Write Privileges Created"
POD_EXEC_ROLE = "ClusterRole With Pod Exec Created"
DEPLOY_C = "K8s Deployment Created"
DEPLOY_D = "K8s Deployment Deleted"
SVC_C = "K8s Service Created"
CM_C = "K8s ConfigMap Created"
NS_C = "K8s Namespace Created"
NS_D = "K8s Namespace Deleted"
SA_C = "K8s Serviceaccount Created"
ROLE_C = "K8s Role Created"
CROLE_C = "K8s ClusterRole Created"
CROLE_D = "K8s ClusterRole Deleted"
RB_C = "K8s RoleBinding Created"
CRB_C = "K8s ClusterRoleBinding Created"
SECRET_C = "K8s Secret Created"
SECRET_D = "K8s Secret Deleted"
SECRET_GET = "K8s Secret Get Successfully"
SECRET_GET_FAIL = "K8s Secret Get Unsuccessfully Tried"
INGRESS = "Ingress Object without TLS Certificate Created"
ALL_EVENTS = "All K8s Audit Events"
FULL_ADMIN = "Full K8s Administrative Access"
NODE_OK = "Untrusted Node Successfully Joined the Cluster"
NODE_FAIL = "Untrusted Node Unsuccessfully Tried to Join the Cluster"

Case = tuple[str, str, Callable[[], dict[str, Any]], list[str]]

POSITIVES: list[Case] = [
    ("dev-bob-lists-pods", DISALLOWED_USER,
     lambda: audit("list", "pods", who=BOB, uri="/api/v1/namespaces/default/pods?limit=500"),
     [DISALLOWED_USER]),
    ("privileged-container", PRIV, lambda: privileged_pod(ALPINE), [PRIV]),
    ("privileged-init-container", PRIV, lambda: privileged_pod(ALPINE, init=True), [PRIV]),
    # `in` on a list field needs every image in the list: falco + alpine is not all allowed
    ("privileged-falco-plus-alpine", PRIV,
     lambda: privileged_pod("docker.io/falcosecurity/falco:0.44.1", ALPINE), [PRIV]),
    ("hostpath-docker-sock", MOUNT, lambda: hostpath_pod("/var/run/docker.sock"), [MOUNT]),
    ("hostpath-kubelet-pki", MOUNT, lambda: hostpath_pod("/var/lib/kubelet/pki"), [MOUNT]),
    ("host-network", HOSTNET,
     lambda: create_pod(pod_spec(container(NGINX), hostNetwork=True)), [HOSTNET]),
    ("host-pid", HOSTPID, lambda: create_pod(pod_spec(container(ALPINE), hostPID=True)), [HOSTPID]),
    ("host-ipc", HOSTIPC, lambda: create_pod(pod_spec(container(ALPINE), hostIPC=True)), [HOSTIPC]),
    # everything at once; the first-match winner is the privileged-pod rule
    ("node-shell-pod", PRIV, node_shell_pod, [PRIV, MOUNT, HOSTNET, HOSTPID, HOSTIPC]),
    ("nodeport-service", NODEPORT, lambda: service("NodePort"), [NODEPORT, SVC_C]),
    ("configmap-aws-keys", CM_CREDS, lambda: configmap("create", {
        "credentials": "[default]\naws_access_key_id = AKIA2EXAMPLEBACKUP01\n"
                       "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"}),
     [CM_CREDS, CM_C]),
    ("configmap-patch-password", CM_CREDS,
     lambda: configmap("patch", {"db_password": "hunter2"}), [CM_CREDS]),
    ("anonymous-list-secrets", ANON_ALLOWED,
     lambda: anonymous("/api/v1/namespaces/kube-system/secrets?limit=500", "secrets", "list"),
     [ANON_ALLOWED]),
    ("anonymous-version", ANON_ALLOWED, lambda: anonymous("/version"), [ANON_ALLOWED]),
    # health_endpoint & co match "/readyz" and "/readyz?..." only, not the per-check paths
    ("anonymous-readyz-etcd", ANON_ALLOWED, lambda: anonymous("/readyz/etcd"), [ANON_ALLOWED]),
    ("exec-started", EXEC, exec_pod, [EXEC]),
    ("attach-started", EXEC, lambda: exec_pod("attach"), [EXEC]),
    ("port-forward-admin", PORTFWD,
     lambda: exec_pod("portforward", stage="ResponseComplete", who=ADMIN), [PORTFWD]),
    # port-forward checks no stage: the ResponseStarted event fires too
    ("port-forward-started", PORTFWD, lambda: exec_pod("portforward"), [PORTFWD]),
    # a user outside the allow lists: "Disallowed K8s User" comes first
    ("port-forward-dev-bob", PORTFWD,
     lambda: exec_pod("portforward", stage="ResponseComplete"), [DISALLOWED_USER, PORTFWD]),
    ("kubectl-debug", EPHEMERAL, ephemeral_container, [EPHEMERAL]),
    ("kubectl-debug-update", EPHEMERAL, lambda: ephemeral_container("update"), [EPHEMERAL]),
    ("namespace-crypto", DIS_NS, lambda: namespace_op("create", "crypto-miner"), [DIS_NS, NS_C]),
    # the rule does not look at the response: a forbidden creation fires it too
    ("namespace-forbidden", DIS_NS,
     lambda: namespace_op("create", "crypto-miner", code=403), [DIS_NS]),
    ("pod-kube-system", KUBE_NS_POD,
     lambda: create_pod(pod_spec(container(ALPINE)), namespace="kube-system"), [KUBE_NS_POD]),
    ("sa-kube-system", KUBE_NS_SA, lambda: serviceaccount("backdoor-sa", "kube-system"),
     [KUBE_NS_SA, SA_C]),
    ("patch-system-node-role", SYS_ROLE, lambda: system_clusterrole("patch", "system:node"),
     [SYS_ROLE]),
    ("delete-system-role", SYS_ROLE, lambda: system_clusterrole("delete", "system:kube-scheduler"),
     [SYS_ROLE, CROLE_D]),
    ("bind-cluster-admin", CLUSTER_ADMIN, lambda: binding("cluster-admin"), [CLUSTER_ADMIN, CRB_C]),
    ("wildcard-clusterrole", WILDCARD, lambda: role_obj("ClusterRole", "super", [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]), [WILDCARD, CROLE_C]),
    ("write-clusterrole", WRITE, lambda: role_obj("ClusterRole", "deployer", [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "patch"]}]),
     [WRITE, CROLE_C]),
    ("pod-exec-role-get", POD_EXEC_ROLE, lambda: role_obj("Role", "debug-exec", [
        {"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get"]}]),
     [POD_EXEC_ROLE, ROLE_C]),
    ("pod-exec-role-create", POD_EXEC_ROLE, lambda: role_obj("Role", "debug-exec", [
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]),
     [WRITE, POD_EXEC_ROLE, ROLE_C]),
    ("deployment-created", DEPLOY_C, lambda: deployment("create"), [DEPLOY_C]),
    ("deployment-deleted", DEPLOY_D, lambda: deployment("delete"), [DEPLOY_D]),
    ("clusterip-service-created", SVC_C, lambda: service("ClusterIP"), [SVC_C]),
    ("namespace-deleted", NS_D, lambda: namespace_op("delete", "shop"), [NS_D]),
    ("rolebinding-created", RB_C, lambda: binding("view", "RoleBinding"), [RB_C]),
    ("secret-created", SECRET_C, lambda: secret("create"), [SECRET_C]),
    ("secret-deleted", SECRET_D, lambda: secret("delete"), [SECRET_D]),
    ("secret-get", SECRET_GET, lambda: secret("get"), [SECRET_GET]),
    ("secret-get-forbidden", SECRET_GET_FAIL,
     lambda: secret("get", code=403, who=RS_CONTROLLER), [SECRET_GET_FAIL]),
    ("ingress-no-tls", INGRESS, lambda: ingress(False), [INGRESS]),
]

NEAR_MISSES: list[Case] = [
    ("system-serviceaccount", DISALLOWED_USER,
     lambda: audit("list", "pods", who=RS_CONTROLLER), []),
    ("kubernetes-admin", DISALLOWED_USER, lambda: audit("list", "pods"), []),
    ("eks-node-manager", DISALLOWED_USER,
     lambda: audit("list", "pods", who=("eks:node-manager", ["system:authenticated"])), []),
    # only ResponseComplete events are considered
    ("dev-bob-watch-started", DISALLOWED_USER,
     lambda: audit("watch", "pods", who=BOB, stage="ResponseStarted"), []),
    ("unprivileged-pod", PRIV, lambda: create_pod(pod_spec(container(ALPINE, privileged=False))), []),
    ("privileged-falco", PRIV, lambda: privileged_pod("docker.io/falcosecurity/falco:0.44.1"), []),
    ("hostpath-var-log", MOUNT, lambda: hostpath_pod("/var/log"), []),
    # the list holds "/etc": hostPath paths compare exactly
    ("hostpath-etc-trailing-slash", MOUNT, lambda: hostpath_pod("/etc/"), []),
    ("hostpath-docker-sock-datadog", MOUNT,
     lambda: hostpath_pod("/var/run/docker.sock", "docker.io/datadog/agent:7.52.0"), []),
    ("host-network-false", HOSTNET,
     lambda: create_pod(pod_spec(container(NGINX), hostNetwork=False)), []),
    ("host-network-kube-proxy", HOSTNET, lambda: create_pod(
        pod_spec(container("gke.gcr.io/kube-proxy:v1.29.1-gke.1589000"), hostNetwork=True)), []),
    ("host-pid-false", HOSTPID, lambda: create_pod(pod_spec(container(ALPINE), hostPID=False)), []),
    ("no-host-ipc", HOSTIPC, lambda: create_pod(pod_spec(container(ALPINE))), []),
    ("clusterip-service", NODEPORT, lambda: service("ClusterIP"), [SVC_C]),
    ("service-exists", SVC_C, lambda: dict(service("ClusterIP"), responseStatus={
        "metadata": {}, "status": "Failure", "reason": "AlreadyExists", "code": 409}), []),
    ("configmap-nginx-conf", CM_CREDS,
     lambda: configmap("create", {"nginx.conf": "server { listen 80; }"}), [CM_C]),
    # contains is case-sensitive: DB_PASSWORD does not contain "password"
    ("configmap-uppercase-password", CM_CREDS,
     lambda: configmap("patch", {"DB_PASSWORD": "hunter2"}), []),
    ("anonymous-healthz", ANON_ALLOWED, lambda: anonymous("/healthz"), []),
    ("anonymous-readyz-verbose", ANON_ALLOWED, lambda: anonymous("/readyz?verbose"), []),
    ("anonymous-forbidden", ANON_ALLOWED,
     lambda: anonymous("/api/v1/namespaces/kube-system/secrets", "secrets", "list", "forbid"), []),
    ("exec-complete", EXEC, lambda: exec_pod(stage="ResponseComplete", who=ADMIN), []),
    ("pod-logs", EXEC, lambda: exec_pod("log", verb="get", who=ADMIN, stage="ResponseComplete"), []),
    ("pod-proxy", PORTFWD, lambda: exec_pod("proxy", verb="get", who=ADMIN,
                                            stage="ResponseComplete"), []),
    ("patch-pod-labels", EPHEMERAL, lambda: audit("patch", "pods", name="web-7d4b9c6f8-x2k4q",
                                                  request={"metadata": {"labels": {"x": "y"}}}),
     []),
    ("namespace-default-exists", DIS_NS, lambda: namespace_op("create", "default", code=409), []),
    ("pod-kube-system-apiserver", KUBE_NS_POD, lambda: create_pod(
        pod_spec(container("registry.k8s.io/kube-apiserver:v1.29.2")), namespace="kube-system"), []),
    ("sa-coredns", KUBE_NS_SA, lambda: serviceaccount("coredns", "kube-system"), [SA_C]),
    ("sa-default-ns", KUBE_NS_SA, lambda: serviceaccount("backdoor-sa", "shop"), [SA_C]),
    ("sa-kube-system-conflict", KUBE_NS_SA,
     lambda: serviceaccount("backdoor-sa", "kube-system", code=409), []),
    ("patch-system-coredns", SYS_ROLE, lambda: system_clusterrole("patch", "system:coredns"), []),
    ("bind-view", CLUSTER_ADMIN, lambda: binding("view"), [CRB_C]),
    ("rolebinding-forbidden", RB_C, lambda: dict(binding("view", "RoleBinding"), responseStatus={
        "metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403}), []),
    ("read-only-clusterrole", WILDCARD, lambda: role_obj("ClusterRole", "reader", [
        {"apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list", "watch"]}]),
     [CROLE_C]),
    ("read-only-role", WRITE, lambda: role_obj("Role", "reader", [
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]), [ROLE_C]),
    ("pod-exec-role-missing", POD_EXEC_ROLE, lambda: role_obj("Role", "reader", [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]), [ROLE_C]),
    ("deployment-exists", DEPLOY_C, lambda: deployment("create", code=409), []),
    ("deployment-delete-missing", DEPLOY_D, lambda: deployment("delete", code=404), []),
    ("namespace-deleted-by-controller", NS_D, lambda: namespace_op(
        "delete", "shop", who=("system:serviceaccount:kube-system:namespace-controller",
                               ["system:serviceaccounts", "system:authenticated"])), []),
    ("secret-created-kube-system", SECRET_C, lambda: secret("create", namespace="kube-system"), []),
    ("secret-created-by-sa", SECRET_C, lambda: secret("create", who=RS_CONTROLLER), []),
    ("secret-delete-missing", SECRET_D, lambda: secret("delete", code=404), []),
    ("secret-list", SECRET_GET, lambda: secret("list", name=None), []),
    ("secret-list-forbidden", SECRET_GET_FAIL,
     lambda: secret("list", code=403, who=RS_CONTROLLER, name=None), []),
    ("ingress-tls", INGRESS, lambda: ingress(True), []),
    # neutered by default
    ("node-joined-default", NODE_OK, lambda: node_register(201), []),
    ("node-failed-default", NODE_FAIL, lambda: node_register(403), []),
    ("admin-default", FULL_ADMIN, lambda: audit("list", "pods"), []),
    ("pod-default", DISALLOWED_POD, lambda: create_pod(pod_spec(container(NGINX))), []),
    ("all-events-default", ALL_EVENTS, lambda: audit("get", "pods", name="web"), []),
]


def _ids(cases: list[Case]) -> list[str]:
    return [f"{rule}::{cid}" for cid, rule, _, _ in cases]


@pytest.mark.parametrize(("cid", "rule", "make", "expected"), POSITIVES, ids=_ids(POSITIVES))
def test_positive(all_engine: Engine, first_engine: Engine, cid: str, rule: str,
                  make: Callable[[], dict[str, Any]], expected: list[str]) -> None:  # fmt: skip
    ev = to_event(make())
    assert rule in expected
    assert [d.rule for d in all_engine.process(ev)] == expected
    assert [d.rule for d in first_engine.process(ev)] == expected[:1]


@pytest.mark.parametrize(("cid", "rule", "make", "expected"), NEAR_MISSES, ids=_ids(NEAR_MISSES))
def test_near_miss(all_engine: Engine, first_engine: Engine, cid: str, rule: str,
                   make: Callable[[], dict[str, Any]], expected: list[str]) -> None:  # fmt: skip
    ev = to_event(make())
    assert rule not in expected
    assert [d.rule for d in all_engine.process(ev)] == expected
    assert [d.rule for d in first_engine.process(ev)] == expected[:1]


def test_coverage(all_engine: Engine) -> None:
    names = {r.name for r in all_engine.rules}
    assert len(names) == 48
    positive = {rule for _, rule, _, _ in POSITIVES}
    near = {rule for _, rule, _, _ in NEAR_MISSES}
    assert positive <= names and near <= names
    assert len(positive) >= 25
    assert positive - near == set(), "every rule with a positive has a near-miss"


def test_first_match_shadowing_by_disallowed_user(first_engine: Engine, all_engine: Engine) -> None:
    # dev-bob binds cluster-admin: every rule sees it, Falco's default reports only the first
    ev = to_event(dict(binding("cluster-admin"), user={"username": "dev-bob", "groups": BOB[1]}))
    assert [d.rule for d in all_engine.process(ev)] == [DISALLOWED_USER, CLUSTER_ADMIN, CRB_C]
    assert [d.rule for d in first_engine.process(ev)] == [DISALLOWED_USER]


def test_event_without_audit_id_only_negated_checks_pass(all_engine: Engine) -> None:
    # every ka.* field is missing without auditID: `not ka.user.name in (...)` is then true,
    # but `non_system_user` is `not ka.user.name startswith "system:"`, true as well, so the
    # first rule still fires through the jevt.* stage check; the pod rules do not
    ev = privileged_pod(ALPINE)
    del ev["auditID"]
    assert [d.rule for d in all_engine.process(to_event(ev))] == [DISALLOWED_USER]


# -- rules neutered by default, exercised through their tuning hooks ------------------------------

HOOKS = """
- macro: allowed_k8s_containers
  condition: (ka.req.pod.containers.image.repository in (docker.io/library/nginx))
  override:
    condition: replace
- macro: allowed_full_admin_users
  condition: (k8s_audit_never_true)
  override:
    condition: replace
- macro: allow_all_k8s_nodes
  condition: (k8s_audit_never_true)
  override:
    condition: replace
- list: allowed_k8s_nodes
  items: [ip-10-0-1-10.eu-west-1.compute.internal]
  override:
    items: append
- macro: consider_all_events
  condition: (k8s_audit_always_true)
  override:
    condition: replace
"""


@pytest.fixture(scope="module")
def tuned_engine(corpus: Path) -> Engine:
    return _engine(corpus, "all", extra=(HOOKS,))


def test_untrusted_node_joined(tuned_engine: Engine) -> None:
    fired = [d.rule for d in tuned_engine.process(to_event(node_register(201)))]
    assert fired == [ALL_EVENTS, NODE_OK]  # "All K8s Audit Events" is defined earlier


def test_untrusted_node_failed_to_join(tuned_engine: Engine) -> None:
    fired = [d.rule for d in tuned_engine.process(to_event(node_register(403)))]
    assert fired == [ALL_EVENTS, NODE_FAIL]


def test_trusted_node_joined(tuned_engine: Engine) -> None:
    ev = node_register(201)
    ev["objectRef"]["name"] = "ip-10-0-1-10.eu-west-1.compute.internal"
    assert [d.rule for d in tuned_engine.process(to_event(ev))] == [ALL_EVENTS]


def test_full_admin_access(tuned_engine: Engine) -> None:
    assert [d.rule for d in tuned_engine.process(to_event(audit("list", "pods")))] == [
        ALL_EVENTS, FULL_ADMIN]  # fmt: skip
    # system users and other users do not count
    assert [d.rule for d in tuned_engine.process(to_event(audit("list", "pods", who=RS_CONTROLLER)))] == [
        ALL_EVENTS]  # fmt: skip


def test_disallowed_pod(tuned_engine: Engine) -> None:
    # pods created by the replicaset controller (a system user: no full-admin alert)
    ev = create_pod(pod_spec(container(ALPINE)), who=RS_CONTROLLER)
    assert [d.rule for d in tuned_engine.process(to_event(ev))] == [DISALLOWED_POD, ALL_EVENTS]
    ev = create_pod(pod_spec(container(NGINX)), who=RS_CONTROLLER)
    assert [d.rule for d in tuned_engine.process(to_event(ev))] == [ALL_EVENTS]
    # kubernetes-admin is also a full admin user
    ev = create_pod(pod_spec(container(ALPINE)))
    assert [d.rule for d in tuned_engine.process(to_event(ev))] == [
        DISALLOWED_POD, ALL_EVENTS, FULL_ADMIN]  # fmt: skip


# -- what the k8saudit plugin turns into events ------------------------------------------------


def _run_file(engine: Engine, tmp_path: Path, payload: Any) -> tuple[int, list[str]]:
    import json

    path = tmp_path / "audit.log"
    path.write_text(json.dumps(payload))
    found: list[str] = []
    stats = run_files(engine, [str(path)], lambda d: found.append(d.rule), lambda _: None,
                      RecordDecoder(host="apiserver-audit"))  # fmt: skip
    return stats.events, found


def test_eventlist_items_are_events(all_engine: Engine, tmp_path: Path) -> None:
    items = [exec_pod(), configmap("create", {"password": "hunter2"})]
    payload = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}
    assert _run_file(all_engine, tmp_path, payload) == (2, [EXEC, CM_CREDS, CM_C])


def test_events_over_max_event_size_are_dropped(all_engine: Engine, tmp_path: Path) -> None:
    # `kubectl apply` of a 300 KB dashboard configmap at RequestResponse level
    big = configmap("create", {"grafana.ini": "[security]\nadmin_password = hunter2\n",
                               "dashboards.json": "x" * 300_000})
    assert _run_file(all_engine, tmp_path, big) == (0, [])


# -- output text ----------------------------------------------------------------------------------


def _message(d: Any, priority: str) -> str:
    stamp, _, rest = d.output.partition(": ")
    assert len(stamp) == len("11:00:01.204518000")
    assert rest.startswith(priority + " ")
    return rest[len(priority) + 1:]


def test_output_disallowed_user_missing_name(all_engine: Engine) -> None:
    ev = audit("list", "pods", who=BOB, uri="/api/v1/namespaces/default/pods?limit=500")
    [d] = all_engine.process(to_event(ev))
    assert _message(d, "Warning") == (
        "K8s Operation performed by user not in allowed list of users (user=dev-bob"
        " target=<NA>/pods verb=list uri=/api/v1/namespaces/default/pods?limit=500 resp=200)"
    )
    assert d.output_fields["ka.target.name"] is None and d.output_fields["ka.response.code"] == "200"
    assert d.source == "k8s_audit"


def test_output_exec_command_param(all_engine: Engine) -> None:
    [d] = all_engine.process(to_event(exec_pod()))
    assert _message(d, "Notice") == (
        "Attach/Exec to pod (user=dev-bob pod=web-7d4b9c6f8-x2k4q resource=pods ns=default"
        " action=exec command=sh)"
    )


def test_output_privileged_pod_lists(all_engine: Engine) -> None:
    [d] = all_engine.process(to_event(privileged_pod(ALPINE, init=True)))
    assert _message(d, "Warning") == (
        "Pod started with privileged container (user=kubernetes-admin pod=debug-tools"
        f" resource=pods ns=default images=({NGINX}) init_images=({ALPINE})"
        " ephemeral_images=<NA>)"
    )
    f = d.output_fields
    assert f["ka.req.pod.containers.image"] == [NGINX]
    assert f["ka.req.pod.ephemeralContainers.image"] is None


def test_output_ephemeral_container_json_pointer(all_engine: Engine) -> None:
    # the output points at /requestObject/ephemeralContainers/0 (the old EphemeralContainers
    # kind); a PATCH by kubectl debug carries them under spec: the values are missing
    [d] = all_engine.process(to_event(ephemeral_container()))
    assert _message(d, "Notice") == (
        "Ephemeral container is created in pod (user=kubernetes-admin pod=web-7d4b9c6f8-x2k4q"
        " resource=pods ns=default ephemeral_container_name=<NA> ephemeral_container_image=<NA>)"
    )


def test_output_anonymous_and_binding(all_engine: Engine) -> None:
    [d] = all_engine.process(to_event(anonymous("/version")))
    assert _message(d, "Warning") == (
        "Request by anonymous user allowed (user=system:anonymous verb=get uri=/version"
        ' reason=RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole'
        ' "system:public-info-viewer" to Group "system:unauthenticated"))'
    )
    d, _ = all_engine.process(to_event(binding("cluster-admin")))
    assert _message(d, "Warning") == (
        "Cluster Role Binding to cluster-admin role (user=kubernetes-admin"
        ' subject=({"kind":"ServiceAccount","name":"ci-bot","namespace":"ci"}))'
    )


def test_output_role_rules(all_engine: Engine) -> None:
    d, _ = all_engine.process(to_event(role_obj("ClusterRole", "super", [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        {"nonResourceURLs": ["*"], "verbs": ["*"]}])))  # fmt: skip
    assert _message(d, "Warning") == (
        "Created Role/ClusterRole with wildcard (user=kubernetes-admin role=super"
        ' resource=clusterroles rules=({"apiGroups":["*"],"resources":["*"],"verbs":["*"]},'
        '{"nonResourceURLs":["*"],"verbs":["*"]}))'
    )


def test_output_nodeport_ports(all_engine: Engine) -> None:
    d, _ = all_engine.process(to_event(service("NodePort")))
    assert _message(d, "Warning") == (
        "NodePort Service Created (user=kubernetes-admin service=web resource=services ns=shop"
        ' ports=([{"port":80,"targetPort":8080,"protocol":"TCP","nodePort":31337}]))'
    )
    # the plugin walks requestObject/spec/ports without iterating the array: the list field
    # holds one element, the whole array as JSON text
    assert d.output_fields["ka.req.service.ports"] == [
        '[{"port":80,"targetPort":8080,"protocol":"TCP","nodePort":31337}]']


# -- the GKE overlay --------------------------------------------------------------------------------

GKE_ROBOT = ("service-123456789012@container-engine-robot.iam.gserviceaccount.com",
             ["system:authenticated"])  # fmt: skip


@pytest.fixture(scope="module")
def gke_engine(corpus: Path) -> Engine:
    return _engine(corpus, "all", K8S, GKE)


def test_gke_overlay_exception_suppresses_disallowed_user(all_engine: Engine,
                                                          gke_engine: Engine) -> None:  # fmt: skip
    ev = audit("update", "nodes", name="gke-prod-default-pool-1a2b3c4d-x9z8", namespace=None,
               who=GKE_ROBOT, request={"kind": "Node", "apiVersion": "v1", "metadata": {
                   "name": "gke-prod-default-pool-1a2b3c4d-x9z8"}})  # fmt: skip
    assert [d.rule for d in all_engine.process(to_event(ev))] == [DISALLOWED_USER]
    assert [d.rule for d in gke_engine.process(to_event(ev))] == []
    # anyone else is still reported
    bob = dict(ev, user={"username": "dev-bob", "groups": BOB[1]})
    assert [d.rule for d in gke_engine.process(to_event(bob))] == [DISALLOWED_USER]
    # the exception is an endswith test on the whole domain
    lookalike = dict(ev, user={"username": "attacker@container-engine-robot.iam.gserviceaccount.com.evil.io",
                               "groups": ["system:authenticated"]})  # fmt: skip
    assert [d.rule for d in gke_engine.process(to_event(lookalike))] == [DISALLOWED_USER]


def test_gke_overlay_appends_privileged_images(all_engine: Engine, gke_engine: Engine) -> None:
    ev = privileged_pod("gke.gcr.io/netd:v0.5.1-gke.1")
    assert [d.rule for d in all_engine.process(to_event(ev))] == [PRIV]
    assert [d.rule for d in gke_engine.process(to_event(ev))] == []

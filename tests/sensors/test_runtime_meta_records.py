"""Translation of real Docker and CRI answers into meta.containers.v1 values, and the
protobuf codec the CRI client speaks with."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from falconet.errors import ConfigError
from falconet.sensors.runtime_meta import cri_messages as M
from falconet.sensors.runtime_meta.docker import docker_change
from falconet.sensors.runtime_meta.protowire import DecodeError, decode, encode
from falconet.sensors.runtime_meta.records import (
    from_cri,
    from_docker,
    image_ref,
    parse_time,
    rfc3339,
)
from falconet.sensors.runtime_meta.settings import RuntimeMetaSettings
from tests.conftest import FIXTURES

DIR = FIXTURES / "runtime_meta"


def fixture(name: str) -> Any:
    return orjson.loads((DIR / name).read_bytes())


def wire(table: M.Message, name: str) -> dict[str, Any]:
    """A fixture as the client sees it: encoded to protobuf and decoded back."""
    return decode(table, encode(table, fixture(name)))


# -- Docker ------------------------------------------------------------------------------------
def test_docker_plain_container() -> None:
    rec = from_docker(fixture("docker_inspect_web.json"), fixture("docker_image_nginx.json"))
    v = rec.value("runtime-meta", "node-a")
    assert v["id"] == "3f4e1b2a9c8d" and v["full_id"].startswith("3f4e1b2a9c8d7e6f")
    assert (v["name"], v["type"], v["runtime"]) == ("web", "docker", "docker")
    assert v["image"] == {
        "name": "nginx:1.25",
        "repository": "nginx",
        "tag": "1.25",
        "digest": "sha256:a484819eb60211f5299034ac80f6a681b06f89e65866ce91f356ed7c72af059c",
        "id": "sha256:a8758716bb6aa4d90071160d27028fe4eaee7ce8166221a97d30440c8eac2be6",
    }
    assert v["privileged"] is False
    assert v["mounts"][0] == {"source": "/srv/www", "dest": "/usr/share/nginx/html",
                              "mode": "ro", "rdwr": False, "propagation": "rprivate"}  # fmt: skip
    assert v["mounts"][1]["source"].startswith("/var/lib/docker/volumes/")
    assert v["mounts"][1]["rdwr"] is True
    assert v["started_at"] == "2024-05-02T08:14:51.532104871Z"
    assert v["start_ts"] == 1714637691532104871
    assert v["labels"]["team"] == "web"
    assert (v["pod_uid"], v["pod_name"], v["namespace"]) == ("", "", "")
    assert v["ip"] == "172.17.0.3"
    assert v["host_ports"] == [
        {"container_port": 80, "protocol": "tcp", "host_ip": "0.0.0.0", "host_port": 8080},
        {"container_port": 80, "protocol": "tcp", "host_ip": "::", "host_port": 8080},
    ]
    assert (v["host_network"], v["host_pid"], v["host_ipc"]) == (False, False, False)
    assert (v["publisher"], v["node"]) == ("runtime-meta", "node-a")


def test_docker_kubernetes_container_by_image_id() -> None:
    """cri-dockerd: the image is referenced by id (the name comes from the image's tags), the
    pod from kubelet's labels, the name is the container's name in the pod spec."""
    rec = from_docker(fixture("docker_inspect_k8s.json"), fixture("docker_image_payments.json"))
    v = rec.value("runtime-meta", "node-a")
    assert v["name"] == "payments"
    assert v["image"]["name"] == "registry:5000/team/payments:1.8"
    assert (v["image"]["repository"], v["image"]["tag"]) == ("registry:5000/team/payments", "1.8")
    assert v["image"]["digest"].startswith("sha256:0d5a2b4c")
    assert v["image"]["id"].startswith("sha256:4c3b2a1f")
    assert v["privileged"] is True and v["host_pid"] is True and v["host_network"] is False
    assert v["pod_uid"] == "5b1f3a7e-2c9d-4e8f-a1b2-c3d4e5f6a7b8"
    assert (v["pod_name"], v["namespace"]) == ("payments-api-7d9c6b8f5-x2k4p", "prod")
    assert v["sandbox_id"].startswith("0f1e2d3c4b5a")
    assert {"source": "/var/run/docker.sock", "dest": "/var/run/docker.sock", "mode": "",
            "rdwr": True, "propagation": "rprivate"} in v["mounts"]  # fmt: skip
    assert v["started_at"] == "2024-05-03T11:02:08.012300000Z"


def test_docker_without_image_inspect_and_never_started() -> None:
    body = copy.deepcopy(fixture("docker_inspect_web.json"))
    body["State"]["StartedAt"] = "0001-01-01T00:00:00Z"
    v = from_docker(body, None).value("p", "n")
    assert v["image"]["digest"] == "" and v["image"]["id"].startswith("sha256:a875")
    assert (v["start_ts"], v["started_at"]) == (0, "")
    with pytest.raises(ValueError):
        from_docker({"Id": "not-hex"})


def test_docker_events() -> None:
    lines = (DIR / "docker_events.jsonl").read_bytes().splitlines()
    changes = [docker_change(orjson.loads(line)) for line in lines]
    kinds = [(c.kind, c.action) if c else None for c in changes]
    assert kinds == [("upsert", "create"), ("upsert", "start"), ("other", "exec_start: sh -c ls"),
                     ("other", "die"), ("delete", "destroy"), None]  # fmt: skip
    assert changes[0] is not None and changes[0].full_id.startswith("3f4e1b2a9c8d")


# -- CRI ---------------------------------------------------------------------------------------
def test_containerd_status_and_sandbox() -> None:
    status = wire(M.CONTAINER_STATUS_RESPONSE, "cri_containerd_status.json")
    sandbox = wire(M.POD_SANDBOX_STATUS_RESPONSE, "cri_containerd_sandbox.json")
    v = from_cri("containerd", status, sandbox).value("runtime-meta", "node-b")
    assert v["id"] == "e1d2c3b4a5f6" and (v["type"], v["runtime"]) == ("containerd", "containerd")
    assert v["name"] == "nginx"
    assert v["image"] == {
        "name": "docker.io/library/nginx:1.25",
        "repository": "docker.io/library/nginx",
        "tag": "1.25",
        "digest": "sha256:a484819eb60211f5299034ac80f6a681b06f89e65866ce91f356ed7c72af059c",
        "id": "sha256:7383c266ef252ad70806f3072ee8e63d2a16d1e6bafa6146a2da867fc7c41759",
    }
    assert v["privileged"] is True  # from the ContainerConfig in the verbose info
    assert v["mounts"] == [
        {"source": "/var/lib/kubelet/pods/8e7d6c5b-4a39-4281-b0a9-f8e7d6c5b4a3/volumes/"
                   "kubernetes.io~projected/kube-api-access-h7f2q",
         "dest": "/var/run/secrets/kubernetes.io/serviceaccount", "mode": "ro", "rdwr": False,
         "propagation": "private"},
        {"source": "/etc", "dest": "/host/etc", "mode": "rw", "rdwr": True,
         "propagation": "rslave"},
    ]  # fmt: skip
    assert v["start_ts"] == 1714728127913402117
    assert v["started_at"] == "2024-05-03T09:22:07.913402117Z"
    assert v["pod_uid"] == "8e7d6c5b-4a39-4281-b0a9-f8e7d6c5b4a3"
    assert (v["pod_name"], v["namespace"]) == ("web-5f6b7c8d9-abcde", "shop")
    assert v["sandbox_id"].startswith("7c6b5a4f3e2d")
    assert v["ip"] == "10.244.1.17"
    assert (v["host_network"], v["host_pid"], v["host_ipc"]) == (False, False, False)
    assert v["host_ports"] == [
        {"container_port": 80, "protocol": "tcp", "host_ip": "", "host_port": 30080}
    ]


def test_crio_status_by_digest_host_network() -> None:
    status = wire(M.CONTAINER_STATUS_RESPONSE, "cri_crio_status.json")
    sandbox = wire(M.POD_SANDBOX_STATUS_RESPONSE, "cri_crio_sandbox.json")
    v = from_cri("cri-o", status, sandbox).value("runtime-meta", "node-c")
    assert v["id"] == "0b1c2d3e4f5a" and v["type"] == "cri-o" and v["name"] == "agent"
    assert v["image"] == {
        "name": "registry:5000/team/app",
        "repository": "registry:5000/team/app",
        "tag": "",
        "digest": "sha256:0d5a2b4c6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b",
        "id": "sha256:9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4",
    }
    assert v["privileged"] is False
    assert v["host_network"] is True  # the sandbox shares the node's network namespace
    assert v["host_pid"] is False  # the OCI spec creates a pid namespace
    assert v["mounts"][1]["propagation"] == "rshared"
    assert (v["pod_name"], v["namespace"]) == ("node-agent-q7w8e", "kube-system")
    assert v["ip"] == "192.168.10.21"


def test_cri_without_sandbox_falls_back_to_labels() -> None:
    status = wire(M.CONTAINER_STATUS_RESPONSE, "cri_containerd_status.json")
    v = from_cri("containerd", status, None).value("p", "n")
    assert v["pod_uid"] == "8e7d6c5b-4a39-4281-b0a9-f8e7d6c5b4a3"
    assert v["namespace"] == "shop" and v["ip"] == ""
    assert v["sandbox_id"].startswith("7c6b5a4f")  # from the verbose info


@pytest.mark.parametrize(
    ("reference", "digest_ref", "expected"),
    [
        ("docker.io/library/nginx:1.25", "", ("docker.io/library/nginx", "1.25", "")),
        ("registry:5000/team/app@sha256:ab", "", ("registry:5000/team/app", "", "sha256:ab")),
        ("registry:5000/team/app", "", ("registry:5000/team/app", "", "")),
        ("sha256:abcd", "quay.io/x/y@sha256:ef", ("quay.io/x/y", "", "sha256:ef")),
        ("nginx", "nginx@sha256:01", ("nginx", "", "sha256:01")),
    ],
)
def test_image_references(reference: str, digest_ref: str, expected: tuple[str, ...]) -> None:
    img = image_ref(reference, digest_ref)
    assert (img.repository, img.tag, img.digest) == expected


def test_times() -> None:
    assert parse_time("2024-05-02T08:14:51.532104871Z") == 1714637691532104871
    assert parse_time("2024-05-02T10:14:51+02:00") == 1714637691_000000000
    assert parse_time("0001-01-01T00:00:00Z") == 0 and parse_time("soon") == 0
    assert rfc3339(1714637691_000000000) == "2024-05-02T08:14:51Z" and rfc3339(0) == ""


# -- protobuf codec ----------------------------------------------------------------------------
def test_protowire_round_trip_and_known_bytes() -> None:
    # ContainerStatusRequest{container_id: "abc", verbose: true} as protoc writes it
    assert encode(M.CONTAINER_STATUS_REQUEST, {"container_id": "abc", "verbose": True}) == (
        b"\x0a\x03abc\x10\x01"
    )
    assert encode(M.LIST_CONTAINERS_REQUEST, {}) == b""
    msg = {"containers": [{"id": "a" * 64, "pod_sandbox_id": "b" * 64, "state": 2,
                           "created_at": -5, "labels": {"k": "v"},
                           "metadata": {"name": "c", "attempt": 3}}]}  # fmt: skip
    back = decode(M.LIST_CONTAINERS_RESPONSE, encode(M.LIST_CONTAINERS_RESPONSE, msg))
    c = back["containers"][0]
    assert (c["id"], c["state"], c["created_at"], c["labels"]) == ("a" * 64, 2, -5, {"k": "v"})
    assert c["metadata"] == {"name": "c", "attempt": 3} and c["image_ref"] == ""
    # an unknown field (99, a string) is skipped
    assert decode(M.VERSION_RESPONSE, b"\x9a\x06\x01x\x0a\x02v1")["version"] == "v1"
    with pytest.raises(DecodeError):
        decode(M.VERSION_RESPONSE, b"\x0a\x05ab")


# -- settings ----------------------------------------------------------------------------------
def test_settings() -> None:
    s = RuntimeMetaSettings.load(env={"FALCONET_RUNTIME_META_RUNTIME": "crio", "NODE_NAME": "n1"})
    assert s.runtime == "cri-o" and s.node == "n1"
    assert s.candidates() == [
        ("cri-o", "/var/run/crio/crio.sock"),
        ("cri-o", "/run/crio/crio.sock"),
    ]
    auto = RuntimeMetaSettings.load(env={}, overrides={"runtime_meta.socket": "/x.sock"})
    assert [r for r, _ in auto.candidates()] == ["cri-o", "containerd", "docker"]
    with pytest.raises(ConfigError, match="runtime_meta.runtime"):
        RuntimeMetaSettings.load(env={"FALCONET_RUNTIME_META_RUNTIME": "podman"})
    with pytest.raises(ConfigError, match="poll_seconds"):
        RuntimeMetaSettings.load(env={"FALCONET_RUNTIME_META_POLL_SECONDS": "0"})


# -- what the rules read -----------------------------------------------------------------------
RULE = """
- rule: Privileged container opened a host file
  desc: test
  condition: >
    evt.type = openat and container.privileged = true
    and container.mount.dest[/var/run/docker.sock] = /var/run/docker.sock
  output: >
    %container.id %container.name %container.image.repository %container.image.tag
    %container.image.digest %container.type %k8s.pod.name %k8s.ns.name
    %container.mount.rdwr[/var/run/docker.sock] %container.start_ts
  priority: WARNING
"""


def test_rules_read_the_record() -> None:
    """A record joined by the enricher gives the rules' container.* fields (and k8s.* from
    the kubelet labels until the pod record arrives)."""
    from falconet.enrichers.metadata import MetadataEnricher
    from falconet.sensors.runtime_meta.records import encode as encode_value
    from tests.helpers import engine, syscall

    rec = from_docker(fixture("docker_inspect_k8s.json"), fixture("docker_image_payments.json"))
    tables = {"containers": {rec.id.encode(): encode_value(rec.value("runtime-meta", "n"))}}
    ev = syscall("openat", container=rec.id, args={"name": "/etc/shadow"})
    MetadataEnricher(tables).enrich(ev)
    [detection] = engine(RULE).process(ev)
    fields = detection.output_fields
    assert fields["container.id"] == "9a8b7c6d5e4f" and fields["container.name"] == "payments"
    assert fields["container.image.repository"] == "registry:5000/team/payments"
    assert fields["container.image.tag"] == "1.8" and fields["container.type"] == "docker"
    assert fields["container.image.digest"].startswith("sha256:0d5a")
    assert (fields["k8s.pod.name"], fields["k8s.ns.name"]) == (
        "payments-api-7d9c6b8f5-x2k4p",
        "prod",
    )
    assert fields["container.mount.rdwr[/var/run/docker.sock]"] == "true"
    assert fields["container.start_ts"] == 1714734128012300000

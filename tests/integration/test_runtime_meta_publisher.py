"""`falconet sensor runtime-meta` on the real broker, fed by container runtimes.

- Docker: no Docker engine runs on our machines, so the engine is the loopback fake of
  tests/sensors/test_runtime_meta_docker.py on a unix socket (list, inspect, image inspect,
  the ``/events`` stream), serving the engine's recorded bodies.
- CRI: a **real containerd** (the Debian package, 1.6.20) runs here as root with its CRI
  plugin, the native snapshotter and cgroups off, on a socket in a temporary directory.
  No registry is reachable, so the test builds its one image itself (a static program
  that sleeps, compiled with ``gcc -static``, packed as an OCI archive and imported with
  ``ctr``) and uses it as the pause image too; it then runs a host-network pod and a
  privileged container through containerd's CRI, as kubelet does. The publisher talks to
  it over gRPC (Version, ListContainers, ContainerStatus, PodSandboxStatus, and
  GetContainerEvents, which 1.6 answers UNIMPLEMENTED, so it polls). Without the
  containerd binary (``apt-get install containerd``) that test is skipped; without gcc or
  ctr it checks the empty node only. The event-stream path of a CRI runtime (containerd
  1.7+, CRI-O) runs against the loopback CRI server of
  tests/sensors/test_runtime_meta_cri.py, serving recorded containerd answers.

The publisher runs as its own process, as on a node, and the test reads the compacted
``meta.containers.v1`` topic it writes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet.broker import die_with_parent
from falconet.streams.topics import meta_topic
from tests.integration.harness import ROOT, Stack, make_stack
from tests.sensors.test_runtime_meta_docker import FakeDocker, fixture, web_container

NODE = "it-node"


@pytest.fixture()
def stack(kafka, topic_prefix: str, tmp_path: Path) -> Stack:
    return make_stack(kafka.bootstrap, topic_prefix, tmp_path)


class ContainersReader:
    """Reads meta.containers.v1 from the start: every (key, value or None)."""

    def __init__(self, stack: Stack) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self.consumer = Consumer(stack.settings.confluent(**{
            "group.id": f"{stack.prefix}containers-{time.time_ns()}", "enable.auto.commit": False,
        }))  # fmt: skip
        topic = stack.topic(meta_topic("containers"))
        meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        self.log: list[tuple[str, Any]] = []
        self.state: dict[str, Any] = {}

    def poll(
        self, until: Callable[[], bool], proc: subprocess.Popen, timeout: float = 60.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, f"timed out; read so far: {self.log}"
            assert proc.poll() is None, f"the publisher exited with {proc.returncode}"
            msg = self.consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            key = msg.key().decode()
            value = None if msg.value() is None else orjson.loads(msg.value())
            self.log.append((key, value))
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value

    def close(self) -> None:
        self.consumer.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(stack: Stack) -> None:
    """A record of this node left by an earlier run (its container is gone), and one of
    another node (never touched)."""
    stack.produce(meta_topic("containers"), [
        (b"abcdefabcdef", orjson.dumps({"id": "abcdefabcdef", "publisher": "runtime-meta", "node": NODE})),
        (b"0123456789ab", orjson.dumps({"id": "0123456789ab", "publisher": "runtime-meta", "node": "other"})),
    ])  # fmt: skip


def start(stack: Stack, *args: str) -> subprocess.Popen[bytes]:
    log = open(stack.tmp / "runtime-meta.log", "ab")  # noqa: SIM115 - the process owns it
    env = {**stack.env, "FALCONET_RUNTIME_META_POLL_SECONDS": "1",
           "FALCONET_RUNTIME_META_BACKOFF_INITIAL_MS": "50"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "falconet", "sensor", "runtime-meta", "--node", NODE, *args],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, preexec_fn=die_with_parent(),
    )  # fmt: skip


def stop(stack: Stack, proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, (stack.tmp / "runtime-meta.log").read_text()
    return (stack.tmp / "runtime-meta.log").read_text()


def test_docker_record_then_tombstone(stack: Stack, tmp_path: Path) -> None:
    docker = FakeDocker(tmp_path / "docker.sock").start()
    first = web_container("111")
    docker.add(first, fixture("docker_image_nginx.json"))
    seed(stack)
    port = free_port()
    proc = start(stack, "--runtime", "docker", "--socket", docker.path, "--metrics-port", str(port))
    reader = ContainersReader(stack)
    try:
        one = first["Id"][:12]
        reader.poll(lambda: one in reader.state and ("abcdefabcdef", None) in reader.log, proc)
        record = reader.state[one]
        assert record["full_id"] == first["Id"] and record["name"] == "web-111"
        assert record["image"]["repository"] == "nginx" and record["image"]["digest"]
        assert (record["publisher"], record["node"], record["type"]) == (
            "runtime-meta",
            NODE,
            "docker",
        )
        assert "0123456789ab" in reader.state  # another node's record stays

        second = web_container("222")
        two = second["Id"][:12]
        docker.add(second)  # create, start
        reader.poll(lambda: two in reader.state, proc)
        docker.remove(second["Id"])  # die, destroy
        reader.poll(lambda: (two, None) in reader.log, proc)
        assert [k for k, v in reader.log if k == two and v is not None] == [two]  # once

        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'falconet_runtime_meta_tombstones_total{runtime="docker"} 2.0' in body
        assert 'falconet_runtime_meta_events_total{action="destroy",runtime="docker"} 1.0' in body
        log = stop(stack, proc)
        assert "falconet sensor runtime-meta: 2 records, 2 tombstones" in log
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.close()
        docker.close()


def test_cri_record_then_tombstone(stack: Stack, tmp_path: Path) -> None:
    pytest.importorskip("grpc", reason="the CRI client needs grpcio")
    from tests.sensors.test_runtime_meta_cri import FakeCri, variant

    cri = FakeCri(tmp_path / "containerd.sock").start()
    proc = start(stack, "--runtime", "containerd", "--socket", cri.path)
    reader = ContainersReader(stack)
    try:
        status, sandbox = variant("cri_containerd_status.json", "cri_containerd_sandbox.json", "e5")
        key = status["status"]["id"][:12]
        deadline = time.monotonic() + 30
        while cri.streams_opened == 0:  # the publisher is watching
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        cri.add(status, sandbox)
        reader.poll(lambda: key in reader.state, proc)
        record = reader.state[key]
        assert (record["type"], record["pod_name"], record["namespace"]) == (
            "containerd", "web-5f6b7c8d9-abcde", "shop")  # fmt: skip
        assert record["image"]["name"] == "docker.io/library/nginx:1.25"
        cri.remove(status["status"]["id"])
        reader.poll(lambda: (key, None) in reader.log, proc)
        stop(stack, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.close()
        cri.close()


# -- a real containerd -------------------------------------------------------------------------
CONTAINERD_CONFIG = """version = 2
root = "{dir}/root"
state = "{dir}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{dir}/containerd.sock"
[ttrpc]
  address = "{dir}/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{image}"
  disable_cgroup = true
  disable_apparmor = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{dir}/cni/bin"
    conf_dir = "{dir}/cni/conf"
"""

#: The one image of the test: a static program that sleeps, built here (no registry needed).
IMAGE = "docker.io/falconet/sleeper:test"


def build_image(base: Path) -> Path | None:
    """An OCI image archive holding a static ``/pause`` that sleeps (None without gcc)."""
    import hashlib
    import io
    import tarfile

    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    (base / "sleeper.c").write_text("#include <unistd.h>\nint main(void) { for (;;) pause(); }\n")
    built = subprocess.run([gcc, "-static", "-Os", "-s", "-o", str(base / "sleeper"),
                            str(base / "sleeper.c")], capture_output=True, check=False)  # fmt: skip
    if built.returncode != 0:
        return None
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        program = (base / "sleeper").read_bytes()
        info = tarfile.TarInfo("pause")
        info.size, info.mode = len(program), 0o755
        tar.addfile(info, io.BytesIO(program))
    layer_desc = blob(layer.getvalue())
    config = {"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/pause"]},
              "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}}  # fmt: skip
    manifest = {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(orjson.dumps(config))},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_desc}],
    }  # fmt: skip
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(orjson.dumps(manifest)),
        "annotations": {"org.opencontainers.image.ref.name": IMAGE},
    }]}  # fmt: skip
    archive = base / "image.tar"
    with tarfile.open(archive, "w") as tar:
        files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": orjson.dumps(index)}
        files.update({f"blobs/sha256/{d.split(':')[1]}": data for d, data in blobs.items()})
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


class CriWriter:
    """The CRI calls kubelet makes to run a pod (test-only message tables)."""

    def __init__(self, path: str) -> None:
        import grpc

        from falconet.sensors.runtime_meta import cri_messages as M
        from falconet.sensors.runtime_meta.protowire import Field

        ns = {1: Field("network", "int"), 2: Field("pid", "int"), 3: Field("ipc", "int")}
        sb_sec = {
            1: Field("namespace_options", "message", message=ns),
            6: Field("privileged", "bool"),
        }
        sb_linux = {2: Field("security_context", "message", message=sb_sec)}
        self.sandbox_config = {
            1: Field("metadata", "message", message=M.POD_SANDBOX_METADATA),
            3: Field("log_directory", "string"), 6: Field("labels", "map"),
            8: Field("linux", "message", message=sb_linux),
        }  # fmt: skip
        c_sec = {
            2: Field("privileged", "bool"),
            3: Field("namespace_options", "message", message=ns),
        }
        c_config = {
            1: Field("metadata", "message", message=M.CONTAINER_METADATA),
            2: Field("image", "message", message=M.IMAGE_SPEC),
            7: Field("mounts", "message", repeated=True, message=M.MOUNT),
            9: Field("labels", "map"), 11: Field("log_path", "string"),
            15: Field("linux", "message", message={2: Field("security_context", "message", message=c_sec)}),
        }  # fmt: skip
        self.tables = {
            "RunPodSandbox": ({1: Field("config", "message", message=self.sandbox_config)},
                              {1: Field("pod_sandbox_id", "string")}),
            "CreateContainer": ({1: Field("pod_sandbox_id", "string"),
                                 2: Field("config", "message", message=c_config),
                                 3: Field("sandbox_config", "message", message=self.sandbox_config)},
                                {1: Field("container_id", "string")}),
            "StartContainer": ({1: Field("container_id", "string")}, {}),
            "StopContainer": ({1: Field("container_id", "string"), 2: Field("timeout", "int64")}, {}),
            "RemoveContainer": ({1: Field("container_id", "string")}, {}),
            "StopPodSandbox": ({1: Field("pod_sandbox_id", "string")}, {}),
            "RemovePodSandbox": ({1: Field("pod_sandbox_id", "string")}, {}),
            "ListPodSandbox": (M.LIST_POD_SANDBOX_REQUEST, M.LIST_POD_SANDBOX_RESPONSE),
        }  # fmt: skip
        self.channel = grpc.insecure_channel(f"unix://{path}")

    def __call__(self, method: str, request: dict[str, Any]) -> dict[str, Any]:
        from falconet.sensors.runtime_meta.protowire import decode, encode

        req, resp = self.tables[method]
        call = self.channel.unary_unary(
            f"/runtime.v1.RuntimeService/{method}",
            request_serializer=lambda v: encode(req, v),
            response_deserializer=lambda d: decode(resp, d),
        )
        return call(request, timeout=60)

    def clean(self) -> None:
        for sandbox in self("ListPodSandbox", {})["items"]:
            self("StopPodSandbox", {"pod_sandbox_id": sandbox["id"]})
            self("RemovePodSandbox", {"pod_sandbox_id": sandbox["id"]})


@pytest.fixture()
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, bool]]:
    """A real containerd with its CRI plugin on a socket of its own: (socket, whether the
    test image could be built and imported)."""
    pytest.importorskip("grpc", reason="the CRI client needs grpcio")
    binary = shutil.which("containerd")
    if binary is None:
        pytest.skip("containerd is not installed (apt-get install containerd)")
    if os.geteuid() != 0:
        pytest.skip("containerd needs root")
    base = tmp_path_factory.mktemp("ctd")  # a short path: unix socket paths are limited
    (base / "config.toml").write_text(CONTAINERD_CONFIG.format(dir=base, image=IMAGE))
    log = open(base / "containerd.log", "ab")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen([binary, "--config", str(base / "config.toml")], stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=die_with_parent())  # fmt: skip
    sock = base / "containerd.sock"
    writer: CriWriter | None = None
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None, (base / "containerd.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "containerd did not open its socket"
            time.sleep(0.1)
        archive = build_image(base)
        imported = archive is not None and shutil.which("ctr") is not None and subprocess.run(
            ["ctr", "-a", str(sock), "-n", "k8s.io", "images", "import", "--index-name", IMAGE,
             str(archive)], capture_output=True, check=False, timeout=60,
        ).returncode == 0  # fmt: skip
        writer = CriWriter(str(sock))
        yield str(sock), imported
    finally:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.clean()  # no container outlives the test
            writer.channel.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_real_containerd(stack: Stack, containerd: tuple[str, bool]) -> None:
    """The real CRI API answers the client; a pod run through containerd's CRI (as kubelet
    does) is published with its sandbox metadata, privileged flag and host mounts, and its
    removal (found by polling: containerd 1.6 has no event stream) tombstoned; the record of
    a container removed while the publisher was down is tombstoned at start."""
    import asyncio

    from falconet.sensors.runtime_meta.cri import CriSource

    sock, imported = containerd

    async def ask() -> tuple[str, dict[str, str], list[Any], Any]:
        async with CriSource("containerd", sock, 10.0) as source:
            return (await source.probe(), await source.list_ids(), await source.sandboxes(),
                    await source.changes())  # fmt: skip

    version, ids, sandboxes, stream = asyncio.run(ask())
    assert version.startswith("containerd 1.") and "(CRI v1" in version
    assert ids == {} and sandboxes == []
    if version.startswith("containerd 1.6"):
        assert stream is None  # no GetContainerEvents before 1.7: polled

    seed(stack)
    proc = start(stack, "--runtime", "containerd", "--socket", sock)
    reader = ContainersReader(stack)
    try:
        reader.poll(lambda: ("abcdefabcdef", None) in reader.log and "0123456789ab" in reader.state,
                    proc)  # fmt: skip
        if not imported:
            pytest.skip(
                "no test image (gcc -static or ctr missing): only the empty node was checked"
            )
        cri = CriWriter(sock)
        uid = "0f6c7a52-1111-4c3e-9d2f-5a6b7c8d9e0f"
        sandbox_config = {
            "metadata": {"name": "web-0", "uid": uid, "namespace": "shop", "attempt": 0},
            "log_directory": str(Path(sock).parent / "logs"), "labels": {"app": "web"},
            "linux": {"security_context": {"privileged": True,
                                           "namespace_options": {"network": 2, "pid": 1}}},
        }  # fmt: skip
        sandbox = cri("RunPodSandbox", {"config": sandbox_config})["pod_sandbox_id"]
        config = {
            "metadata": {"name": "app", "attempt": 0}, "image": {"image": IMAGE},
            "mounts": [{"container_path": "/host/etc", "host_path": "/etc", "readonly": True}],
            "labels": {"team": "web"}, "log_path": "app/0.log",
            "linux": {"security_context": {"privileged": True}},
        }  # fmt: skip
        cid = cri("CreateContainer", {"pod_sandbox_id": sandbox, "config": config,
                                      "sandbox_config": sandbox_config})["container_id"]  # fmt: skip
        cri("StartContainer", {"container_id": cid})
        reader.poll(
            lambda: cid[:12] in reader.state and reader.state[cid[:12]]["start_ts"] > 0, proc
        )
        record = reader.state[cid[:12]]
        assert (record["full_id"], record["name"], record["type"]) == (cid, "app", "containerd")
        assert (record["pod_uid"], record["pod_name"], record["namespace"]) == (
            uid,
            "web-0",
            "shop",
        )
        assert record["sandbox_id"] == sandbox and record["labels"]["team"] == "web"
        assert record["privileged"] is True and record["host_network"] is True
        assert {"source": "/etc", "dest": "/host/etc", "mode": "ro", "rdwr": False,
                "propagation": "private"} in record["mounts"]  # fmt: skip
        assert record["image"]["name"] == IMAGE and record["image"]["id"].startswith("sha256:")
        assert sandbox[:12] not in reader.state  # CRI sandboxes are not containers (see docs)

        cri("StopContainer", {"container_id": cid, "timeout": 1})
        cri("RemoveContainer", {"container_id": cid})
        reader.poll(lambda: (cid[:12], None) in reader.log, proc)
        cri.channel.close()
        log = stop(stack, proc)
        assert "runtime_meta.runtime containerd 1." in log and "mode=polling" in log
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.close()

"""List+watch against the loopback API server (tests/sensors/test_k8s_meta_apiserver.py),
over verified TLS with a bearer token, without Kafka: resourceVersion, paging, bookmarks,
reconnects, 410 Gone, RBAC and token rotation as the publisher must handle them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from falconet.sensors.k8s_meta import client as C
from falconet.sensors.k8s_meta.access import ClusterAccess, from_kubeconfig
from falconet.sensors.k8s_meta.client import ApiClient
from falconet.sensors.k8s_meta.metrics import K8sMetaStats
from falconet.sensors.k8s_meta.reflector import Reflector, ReflectorOptions
from falconet.sensors.k8s_meta.state import MetaState
from falconet.sensors.k8s_meta.translate import Filters
from tests.sensors.test_k8s_meta_apiserver import JOBS, PODS, FakeApiServer, pod
from tests.sensors.test_k8s_meta_translate import Tables

FAST = ReflectorOptions(page_size=2, watch_timeout_s=30, backoff_initial_s=0.01, backoff_max_s=0.05)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture()
def tls_server(ca: trustme.CA) -> Iterator[FakeApiServer]:
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    srv = FakeApiServer(token="sa-token-1", ssl_context=ctx).start()
    yield srv
    srv.stop()


def kubeconfig(
    tmp: Path, ca: trustme.CA, server: FakeApiServer, token_file: Path | None = None
) -> Path:
    ca.cert_pem.write_to_path(tmp / "ca.crt")
    user = f"tokenFile: {token_file.name}" if token_file else f"token: {server.token}"
    path = tmp / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {server.url}
    certificate-authority: ca.crt
contexts:
- name: test
  context: {{cluster: test, user: falconet}}
current-context: test
users:
- name: falconet
  user:
    {user}
""")
    return path


class Harness:
    def __init__(self, access: ClusterAccess, options: ReflectorOptions = FAST) -> None:
        self.access = access
        self.options = options
        self.tables = Tables()
        self.stats = K8sMetaStats()
        self.state = MetaState(self.tables, self.stats, Filters(cluster="t"))

    @contextlib.asynccontextmanager
    async def reflect(self, resource: C.Resource):
        async with ApiClient(self.access) as api:
            r = Reflector(api, resource, self.state, self.stats, self.options)
            stop = asyncio.Event()
            task = asyncio.create_task(r.run(stop))
            try:
                yield r
            finally:
                stop.set()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def uid_of(server: FakeApiServer, name: str) -> str:
    return server.objects[PODS][f"default/{name}"]["metadata"]["uid"]


def test_list_pages_then_watch_resumes_from_bookmarks_without_relisting(
    tls_server: FakeApiServer, ca: trustme.CA, tmp_path: Path
) -> None:
    srv = tls_server
    for i in range(5):
        srv.apply(PODS, pod(f"p{i}"))
    h = Harness(from_kubeconfig(str(kubeconfig(tmp_path, ca, srv))))

    async def scenario() -> None:
        async with h.reflect(C.PODS) as r:
            await until(r.synced.is_set, "the first list")
            assert len(srv.lists(PODS)) == 3  # five pods, pages of two
            assert len(h.tables.tables["pods"]) == 5
            await until(lambda: srv.open_watches(PODS) == 1, "the watch")
            watch = srv.watches(PODS)[0]
            assert watch["resourceVersion"] == r.resource_version == str(srv.rv)  # the list's
            assert watch["allowWatchBookmarks"] == "true" and int(watch["timeoutSeconds"]) >= 30

            srv.apply(PODS, pod("p5"))
            srv.delete(PODS, "default", "p0")
            await until(
                lambda: len(h.tables.tables["pods"]) == 5 and r.stats.events.get("Pod") == 2,
                "events",
            )

            srv.touch_other(7)  # the cluster moves on; no pod changes
            mark = srv.bookmark(PODS)
            await until(lambda: r.resource_version == str(mark), "the bookmark")
            # history before the bookmark is compacted: only a watch from the bookmark works
            srv.compact(PODS)
            srv.drop_watches(PODS)
            await until(
                lambda: len(srv.watches(PODS)) == 2 and srv.open_watches(PODS) == 1, "the rewatch"
            )
            assert srv.watches(PODS)[1]["resourceVersion"] == str(mark)
            srv.apply(PODS, pod("p6"))
            await until(lambda: len(h.tables.tables["pods"]) == 6, "p6")

        assert len(srv.lists(PODS)) == 3 and not h.stats.relists and not h.stats.gone
        assert h.stats.bookmarks["Pod"] == 1 and h.stats.watch_restarts["Pod"] >= 1

    asyncio.run(scenario())


@pytest.mark.parametrize("as_http", [False, True], ids=["error-event", "http-410"])
def test_410_relists_once_and_tombstones_what_was_deleted_while_away(
    tls_server: FakeApiServer, ca: trustme.CA, tmp_path: Path, as_http: bool
) -> None:
    srv = tls_server
    srv.gone_as_http = as_http
    for name in ("keep", "doomed", "other"):
        srv.apply(PODS, pod(name))
    doomed = uid_of(srv, "doomed")
    h = Harness(from_kubeconfig(str(kubeconfig(tmp_path, ca, srv))))

    async def scenario() -> None:
        async with h.reflect(C.PODS):
            await until(lambda: srv.open_watches(PODS) == 1, "the watch")
            lists_before = len(srv.lists(PODS))
            with srv.away(PODS):
                srv.delete(PODS, "default", "doomed")
                srv.apply(PODS, pod("born-while-away"))
            await until(lambda: h.tables.get("pods", doomed) is None, "the tombstone")
            await until(lambda: srv.open_watches(PODS) == 1, "the watch after the relist")
            for i in range(10):  # events after the relist are applied one by one, no relist
                srv.apply(PODS, pod(f"after-{i}"))
            await until(lambda: len(h.tables.tables["pods"]) == 13, "the later pods")
            assert len(srv.lists(PODS)) == lists_before + 2  # one relist of two pages
            assert h.stats.relists == {"Pod": 1} and h.stats.gone == {"Pod": 1}
            assert ("pods", doomed, None) in h.tables.log
            short = {
                k for t, k, v in h.tables.log if t == "containers" and v and doomed.encode() in v
            }
            assert len(short) == 1 and ("containers", short.pop(), None) in h.tables.log

    asyncio.run(scenario())


def test_forbidden_names_the_missing_rbac_permission_and_keeps_retrying(
    tls_server: FakeApiServer, ca: trustme.CA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    srv = tls_server
    srv.forbidden.add(JOBS)
    h = Harness(from_kubeconfig(str(kubeconfig(tmp_path, ca, srv))))

    async def scenario() -> None:
        async with h.reflect(C.JOBS) as r:
            await until(lambda: len(srv.lists(JOBS)) >= 2, "a retry")
            srv.forbidden.discard(JOBS)  # the ClusterRole was fixed
            await until(r.synced.is_set, "the list once allowed")

    with caplog.at_level(logging.ERROR, "falconet.sensors.k8s_meta"):
        asyncio.run(scenario())
    assert h.stats.errors[("Job", "access")] >= 1
    text = caplog.text
    assert (
        "403 Forbidden" in text
        and "'list' on 'jobs.batch'" in text
        and "apiGroups ['batch']" in text
    )


def test_rotated_token_file_is_read_again_after_a_401(
    tls_server: FakeApiServer, ca: trustme.CA, tmp_path: Path
) -> None:
    srv = tls_server
    srv.apply(PODS, pod("a"))
    token = tmp_path / "token"
    token.write_text("sa-token-1\n")
    h = Harness(from_kubeconfig(str(kubeconfig(tmp_path, ca, srv, token))))

    async def scenario() -> None:
        async with h.reflect(C.PODS) as r:
            await until(lambda: srv.open_watches(PODS) == 1, "the watch")
            srv.token = "sa-token-2"  # the kubelet rotated the token; the server drops the old
            token.write_text("sa-token-2\n")
            srv.drop_watches(PODS)
            srv.apply(PODS, pod("b"))
            await until(lambda: len(h.tables.tables["pods"]) == 2, "the event after rotation")
            assert r.stats.errors.get(("Pod", "access"), 0) >= 1

    asyncio.run(scenario())


def test_an_untrusted_server_certificate_is_refused(
    tls_server: FakeApiServer, tmp_path: Path
) -> None:
    other = trustme.CA()  # not the CA that issued the server's certificate
    h = Harness(from_kubeconfig(str(kubeconfig(tmp_path, other, tls_server))))

    async def scenario() -> None:
        async with h.reflect(C.PODS) as r:
            await until(lambda: h.stats.errors.get(("Pod", "network"), 0) >= 2, "failed attempts")
            assert not r.synced.is_set()

    asyncio.run(scenario())
    assert tls_server.requests == []  # nothing was sent over the unverified connection


def test_an_object_that_cannot_be_translated_is_skipped_not_fatal(
    tls_server: FakeApiServer, ca: trustme.CA, tmp_path: Path
) -> None:
    srv = tls_server
    h = Harness(from_kubeconfig(str(kubeconfig(tmp_path, ca, srv))))

    async def scenario() -> None:
        async with h.reflect(C.PODS) as r:
            await until(lambda: srv.open_watches(PODS) == 1, "the watch")
            bad = pod("bad")
            bad["spec"] = "not an object"
            srv.apply(PODS, bad)
            srv.apply(PODS, pod("good"))
            await until(
                lambda: h.tables.get("pods", uid_of(srv, "good")) is not None, "the good pod"
            )
            assert r.stats.errors == {("Pod", "object"): 1} and not r.stats.relists

    asyncio.run(scenario())


def test_recorded_watch_events_move_the_resource_version_and_end_on_410() -> None:
    from falconet.sensors.k8s_meta.client import GoneError, _event
    from tests.conftest import FIXTURES

    h = Harness(ClusterAccess(server="https://unused"))
    r = Reflector(None, C.PODS, h.state, h.stats)  # type: ignore[arg-type]  # no requests here
    r.resource_version = "48400000"
    events = [
        _event(line, C.PODS)
        for line in (FIXTURES / "k8s_meta" / "watch_pods.jsonl").read_bytes().splitlines()
    ]
    uid = "c9d0e1f2-a3b4-4c5d-8e6f-7a8b9c0d1e2f"
    seen = []
    with pytest.raises(GoneError, match="too old resource version"):
        for event in events:
            r._apply(event.type, event.object)
            seen.append((event.type, r.resource_version))
    assert seen == [
        ("ADDED", "48400007"),
        ("BOOKMARK", "48400100"),
        ("MODIFIED", "48400120"),
        ("DELETED", "48400200"),
    ]
    assert (
        "containers",
        "77aa88bb99cc",
        None,
    ) in h.tables.log  # started, then deleted with the pod
    assert ("pods", uid, None) in h.tables.log
    assert h.stats.bookmarks == {"Pod": 1} and not r.known

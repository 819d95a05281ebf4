"""A loopback Kubernetes API server for the k8s-meta publisher's tests, and tests that it
behaves as kube-apiserver does for the requests the publisher makes.

What it implements, after the API concepts documentation (resource versions, efficient
detection of changes, retrieving large results in chunks, watch bookmarks):

- ``GET <collection>`` lists at one resourceVersion; with ``limit`` it pages, each page
  carrying a ``continue`` token bound to the first page's resourceVersion (and
  ``remainingItemCount``); a token whose resourceVersion was compacted answers 410
  ``Expired``. Items of a list carry no ``kind``/``apiVersion``, as the real server's.
- ``GET <collection>?watch=1&resourceVersion=RV``: a chunked stream of JSON lines, one
  ``{"type", "object"}`` per change after RV, then the changes as they happen, until
  ``timeoutSeconds``; ``BOOKMARK`` events (only with ``allowWatchBookmarks=true``) carry
  just the kind and a resourceVersion; an RV older than the compaction point gets an
  ``ERROR`` event with a 410 ``Status`` (or an HTTP 410, as the server does when the watch
  cache is bypassed: ``gone_as_http``). resourceVersion unset or ``0`` starts with a
  synthetic ``ADDED`` of every current object.
- Bearer-token authentication (401 ``Status``), and per-resource 403 ``Status`` answers
  worded as the RBAC authorizer words them.

The server runs on its own thread and loop; tests change its objects from theirs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import itertools
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

#: collection path → (kind, list kind, apiVersion, namespaced)
COLLECTIONS: dict[str, tuple[str, str, str, bool]] = {
    "/api/v1/pods": ("Pod", "PodList", "v1", True),
    "/api/v1/namespaces": ("Namespace", "NamespaceList", "v1", False),
    "/api/v1/nodes": ("Node", "NodeList", "v1", False),
    "/apis/apps/v1/replicasets": ("ReplicaSet", "ReplicaSetList", "apps/v1", True),
    "/apis/batch/v1/jobs": ("Job", "JobList", "batch/v1", True),
}
PODS = "/api/v1/pods"
NAMESPACES = "/api/v1/namespaces"
NODES = "/api/v1/nodes"
REPLICASETS = "/apis/apps/v1/replicasets"
JOBS = "/apis/batch/v1/jobs"

_CLOSE = object()  # sentinel: end a watch stream (connection dropped)


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip


def key_of(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


@dataclass
class _Watcher:
    queue: asyncio.Queue
    bookmarks: bool


@dataclass
class FakeApiServer:
    """See the module docstring. ``requests`` records (path, params) of every request."""

    token: str
    ssl_context: ssl.SSLContext | None = None
    gone_as_http: bool = False
    rv: int = 1000
    history: dict[str, list[tuple[int, str, dict[str, Any]]]] = field(default_factory=dict)
    compacted: dict[str, int] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in COLLECTIONS}
        for p in COLLECTIONS:
            self.history.setdefault(p, [])
            self.compacted.setdefault(p, 0)
        self._watchers: dict[str, list[_Watcher]] = {p: [] for p in COLLECTIONS}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> FakeApiServer:
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_get("/{path:.*}", self._handle)
            self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-apiserver", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the fake API server did not start"
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        for path in COLLECTIONS:
            self.drop_watches(path)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # -- what tests do -----------------------------------------------------------------------
    def _record(self, path: str, kind: str, obj: dict[str, Any]) -> None:
        """Under the lock: a change at a new resourceVersion, sent to the open watches."""
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        if kind == "DELETED":
            self.objects[path].pop(key_of(obj), None)
        else:
            self.objects[path][key_of(obj)] = obj
        event = (self.rv, kind, obj)
        self.history[path].append(event)
        for w in self._watchers[path]:
            self._push(w, event)

    def _push(self, w: _Watcher, item: Any) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(w.queue.put_nowait, item)

    def apply(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or update an object (ADDED or MODIFIED); returns it as stored."""
        kind, _, api_version, _ = COLLECTIONS[path]
        obj = copy.deepcopy(obj)
        obj.setdefault("kind", kind)
        obj.setdefault("apiVersion", api_version)
        meta = obj.setdefault("metadata", {})
        with self.lock:
            existing = self.objects[path].get(key_of(obj))
            meta.setdefault("uid", existing["metadata"]["uid"] if existing else str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", "2026-11-21T10:00:00Z")
            self._record(path, "MODIFIED" if existing else "ADDED", obj)
            return copy.deepcopy(self.objects[path][key_of(obj)])

    def delete(self, path: str, namespace: str, name: str) -> None:
        with self.lock:
            obj = self.objects[path][f"{namespace}/{name}"]
            self._record(path, "DELETED", obj)

    def bookmark(self, path: str) -> int:
        """Send a BOOKMARK at the current resourceVersion to the watches that take them."""
        kind, _, api_version, _ = COLLECTIONS[path]
        with self.lock:
            body = {"kind": kind, "apiVersion": api_version,
                    "metadata": {"resourceVersion": str(self.rv), "creationTimestamp": None}}  # fmt: skip
            if kind == "Pod":
                body.update(spec={"containers": None}, status={})
            for w in self._watchers[path]:
                if w.bookmarks:
                    self._push(w, (self.rv, "BOOKMARK", body))
            return self.rv

    def touch_other(self, n: int = 5) -> None:
        """Changes elsewhere in the cluster: the global resourceVersion moves on."""
        with self.lock:
            for i in range(n):
                self._record(NAMESPACES, "ADDED",
                             {"kind": "Namespace", "apiVersion": "v1",
                              "metadata": {"name": f"scratch-{self.rv}-{i}", "uid": str(uuid.uuid4())}})  # fmt: skip

    def drop_watches(self, path: str) -> None:
        """End every open watch of ``path`` (a dropped connection, a restarted server)."""
        with self.lock:
            for w in self._watchers[path]:
                self._push(w, _CLOSE)
            self._watchers[path] = []

    def compact(self, path: str) -> None:
        """Forget the history of ``path`` up to now: older resourceVersions get 410."""
        with self.lock:
            self.compacted[path] = self.rv

    @contextlib.contextmanager
    def away(self, path: str) -> Iterator[None]:
        """Drop the watches of ``path``, let the caller change objects while nobody watches,
        then compact past those changes: the reconnecting watch gets 410 Gone."""
        with self.lock:
            self.drop_watches(path)
            yield
            self.compact(path)

    def lists(self, path: str) -> list[dict[str, str]]:
        return [p for q, p in self.requests if q == path and p.get("watch") not in ("1", "true")]

    def watches(self, path: str) -> list[dict[str, str]]:
        return [p for q, p in self.requests if q == path and p.get("watch") in ("1", "true")]

    def open_watches(self, path: str) -> int:
        with self.lock:
            return len(self._watchers[path])

    # -- serving -----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        params = dict(request.query)
        with self.lock:
            self.requests.append((path, params))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(status(401, "Unauthorized", "Unauthorized"), status=401)
        if path not in COLLECTIONS:
            return web.json_response(
                status(404, "NotFound", "the server could not find the requested resource"),
                status=404,
            )
        watching = params.get("watch") in ("1", "true")
        if path in self.forbidden:
            resource = path.rsplit("/", 1)[1]
            group = path.split("/")[2] if path.startswith("/apis/") else ""
            verb = "watch" if watching else "list"
            msg = (f'{resource} is forbidden: User "system:serviceaccount:falconet:k8s-meta" cannot '
                   f'{verb} resource "{resource}" in API group "{group}" at the cluster scope')  # fmt: skip
            return web.json_response(status(403, "Forbidden", msg), status=403)
        if watching:
            return await self._watch(request, path, params)
        return self._list(path, params)

    def _state_at(self, path: str, rv: int) -> dict[str, dict[str, Any]]:
        state: dict[str, dict[str, Any]] = {}
        for at, kind, obj in self.history[path]:
            if at > rv:
                break
            if kind == "DELETED":
                state.pop(key_of(obj), None)
            else:
                state[key_of(obj)] = obj
        return state

    def _list(self, path: str, params: dict[str, str]) -> web.Response:
        kind, list_kind, api_version, _ = COLLECTIONS[path]
        limit = int(params.get("limit") or 0)
        with self.lock:
            start = ""
            if params.get("continue"):
                token = orjson.loads(base64.b64decode(params["continue"]))
                at, start = int(token["rv"]), token["start"]
                if at < self.compacted[path]:
                    msg = ("The provided continue parameter is too old to display a consistent "
                           "list result. You can start a new list without the continue parameter.")  # fmt: skip
                    return web.json_response(status(410, "Expired", msg), status=410)
            else:
                at = self.rv
            state = self._state_at(path, at)
        keys = sorted(k for k in state if k > start) if start else sorted(state)
        page = keys[:limit] if limit else keys
        items = []
        for k in page:
            item = copy.deepcopy(state[k])
            item.pop("kind", None)  # list items carry no kind/apiVersion
            item.pop("apiVersion", None)
            items.append(item)
        meta: dict[str, Any] = {"resourceVersion": str(at)}
        if limit and len(keys) > limit:
            meta["continue"] = base64.b64encode(
                orjson.dumps({"rv": at, "start": page[-1]})
            ).decode()
            meta["remainingItemCount"] = len(keys) - limit
        body = {"kind": list_kind, "apiVersion": api_version, "metadata": meta, "items": items}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _watch(
        self, request: web.Request, path: str, params: dict[str, str]
    ) -> web.StreamResponse:
        version = params.get("resourceVersion", "")
        timeout = float(params.get("timeoutSeconds") or 1800)
        watcher = _Watcher(asyncio.Queue(), params.get("allowWatchBookmarks") == "true")
        with self.lock:
            if version in ("", "0"):
                backlog = [(self.rv, "ADDED", o) for _, o in sorted(self.objects[path].items())]
            else:
                since = int(version)
                if since < self.compacted[path]:
                    backlog = None
                else:
                    backlog = [e for e in self.history[path] if e[0] > since]
            if backlog is not None:
                self._watchers[path].append(watcher)
            current = self.rv
        if backlog is None:
            gone = status(410, "Expired", f"too old resource version: {version} ({current})")
            if self.gone_as_http:
                return web.json_response(gone, status=410)
            backlog = [(current, "ERROR", gone)]
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            for _, kind, obj in backlog:
                await resp.write(orjson.dumps({"type": kind, "object": obj}) + b"\n")
                if kind == "ERROR":
                    return resp
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), left)
                except TimeoutError:
                    break
                if item is _CLOSE:
                    break
                _, kind, obj = item
                await resp.write(orjson.dumps({"type": kind, "object": obj}) + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            with self.lock:
                if watcher in self._watchers[path]:
                    self._watchers[path].remove(watcher)
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp


# -- a client that talks to it as the real server is talked to -------------------------------

_ids = itertools.count(1)


def container_id(name: str, n: int = 0) -> str:
    return hashlib.sha256(f"{name}/{n}".encode()).hexdigest()


def pod(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    n = next(_ids)
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"nodeName": "node-1", "serviceAccountName": "default",
                 "containers": [{"name": "main", "image": "nginx:1.27"}]},
        "status": {"phase": "Running", "podIP": f"10.0.0.{n % 250}",
                   "containerStatuses": [{"name": "main", "image": "docker.io/library/nginx:1.27",
                                          "imageID": "docker.io/library/nginx@sha256:" + "ab" * 32,
                                          "containerID": "containerd://" + container_id(name, n),
                                          "ready": True, "restartCount": 0,
                                          "state": {"running": {"startedAt": "2026-11-21T10:00:01Z"}}}]},
    }  # fmt: skip


@pytest.fixture()
def server() -> Iterator[FakeApiServer]:
    srv = FakeApiServer(token="t0ken").start()
    yield srv
    srv.stop()


def _get(srv: FakeApiServer, path: str, token: str = "t0ken", **params: str) -> tuple[int, Any]:
    import urllib.error
    import urllib.parse
    import urllib.request

    url = srv.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
            if params.get("watch"):
                return resp.status, [orjson.loads(line) for line in body.splitlines() if line]
            return resp.status, orjson.loads(body)
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def test_list_pages_share_one_resource_version_and_continue(server: FakeApiServer) -> None:
    for i in range(5):
        server.apply(PODS, pod(f"p{i}"))
    code, first = _get(server, PODS, limit="2")
    assert code == 200 and first["kind"] == "PodList" and len(first["items"]) == 2
    assert "kind" not in first["items"][0]
    assert first["metadata"]["remainingItemCount"] == 3
    server.apply(PODS, pod("p9"))  # after the first page: not in this list
    names = [i["metadata"]["name"] for i in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        code, page = _get(server, PODS, limit="2", **{"continue": token})
        assert page["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
    assert names == ["p0", "p1", "p2", "p3", "p4"]


def test_expired_continue_token_and_too_old_watch_answer_410(server: FakeApiServer) -> None:
    for i in range(3):
        server.apply(PODS, pod(f"p{i}"))
    _, first = _get(server, PODS, limit="1")
    server.apply(PODS, pod("later"))
    server.compact(PODS)
    code, body = _get(server, PODS, limit="1", **{"continue": first["metadata"]["continue"]})
    assert code == 410 and body["reason"] == "Expired"
    code, events = _get(server, PODS, watch="1", resourceVersion=first["metadata"]["resourceVersion"],
                        timeoutSeconds="1")  # fmt: skip
    assert code == 200 and events[-1]["type"] == "ERROR" and events[-1]["object"]["code"] == 410


def test_watch_replays_changes_after_the_resource_version_then_ends_at_timeout(
    server: FakeApiServer,
) -> None:
    server.apply(PODS, pod("a"))
    _, listed = _get(server, PODS)
    server.apply(PODS, pod("b"))
    server.delete(PODS, "default", "a")
    code, events = _get(server, PODS, watch="1", resourceVersion=listed["metadata"]["resourceVersion"],
                        timeoutSeconds="1", allowWatchBookmarks="true")  # fmt: skip
    assert code == 200
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("DELETED", "a"),
    ]


def test_auth_and_rbac_answers_are_status_objects(server: FakeApiServer) -> None:
    code, body = _get(server, PODS, token="wrong")
    assert code == 401 and body["kind"] == "Status" and body["reason"] == "Unauthorized"
    server.forbidden.add(JOBS)
    code, body = _get(server, JOBS)
    assert code == 403 and 'cannot list resource "jobs" in API group "batch"' in body["message"]

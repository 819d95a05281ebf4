"""The container id of a process, from its cgroup, as Falco's container plugin derives it.

Runtimes name the cgroup of a container after its 64-hex id; the sensor knows the last two
components of the process's cgroup path (v2 and v1 "memory" hierarchy) from the kernel,
or reads ``/proc/<pid>/cgroup`` for processes that were running before it started:

==============================  ==================================================
docker (cgroupfs driver)        ``/docker/<id>``
docker (systemd driver)         ``/system.slice/docker-<id>.scope``
containerd / Kubernetes         ``/kubepods/.../pod<uid>/<id>``, ``cri-containerd-<id>.scope``
CRI-O                           ``crio-<id>.scope`` (``crio-conmon-<id>.scope`` is conmon)
podman                          ``libpod-<id>.scope`` (and ``.../libpod-<id>.scope/container``)
==============================  ==================================================

The id is cut to 12 characters; processes outside any container get ``host``.
"""

from __future__ import annotations

import re

HOST = "host"

_ID = re.compile(r"^(?:(?:docker|cri-containerd|crio|libpod)-)?([0-9a-f]{64})(?:\.scope)?$")


def id_from_names(names: list[str]) -> str:
    """The container id from cgroup path components (any order of specificity: the first
    component naming a container wins); ``host`` when none does."""
    for name in names:
        if not name or "conmon" in name:
            continue
        m = _ID.match(name)
        if m:
            return m.group(1)[:12]
    return HOST


def id_from_chunk(blob: bytes) -> str:
    """The id from the kernel's cgroup chunk: v2 leaf, v2 parent, v1 leaf, v1 parent."""
    return id_from_names([p.decode("ascii", "replace") for p in blob.split(b"\0")[:4]])


def id_from_proc_cgroup(text: str) -> str:
    """The id from the content of ``/proc/<pid>/cgroup`` (v1 and v2 lines)."""
    names: list[str] = []
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        parts = [p for p in path.split("/") if p]
        names.extend(reversed(parts[-2:]))
    return id_from_names(names)

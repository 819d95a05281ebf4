"""Checks of a runtime's unix socket, with the error an operator can act on.

A missing socket, or one this process may not open, stops the publisher at start (exit 2)
with the path and what is needed: the host's socket mounted into the pod, root for the CRI
sockets (they are ``root:root 0660``), or membership of the group that owns Docker's.
"""

from __future__ import annotations

import grp
import os
import stat

from falconet.errors import FalconetError, SensorError


class RuntimeUnavailable(SensorError):
    """The runtime's socket is missing, not a socket, or not ours to open."""


class RuntimeApiError(FalconetError):
    """A runtime API call failed (retried with backoff while running)."""


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def check_socket(runtime: str, path: str) -> None:
    """Raise :class:`RuntimeUnavailable` unless ``path`` is a unix socket we may connect to."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = os.path.dirname(path) or "/"
        raise RuntimeUnavailable(
            f"the {runtime} socket {path} does not exist: is {runtime} running on this node, "
            f"and is the host's {parent} mounted into the publisher's pod?"
        ) from None
    except PermissionError:
        raise RuntimeUnavailable(denied(runtime, path)) from None
    if not stat.S_ISSOCK(st.st_mode):
        raise RuntimeUnavailable(f"{path} is not a unix socket (set runtime_meta.socket)")
    if not os.access(path, os.R_OK | os.W_OK):
        raise RuntimeUnavailable(denied(runtime, path, st.st_gid))


def denied(runtime: str, path: str, gid: int | None = None) -> str:
    """What to do about a permission error on ``path``."""
    if gid is None:
        try:
            gid = os.stat(path).st_gid
        except OSError:
            gid = None
    who = f"group {_group(gid)} (gid {gid})" if gid is not None else "the group that owns it"
    if runtime == "docker":
        need = f"run as root or as a member of {who}"
    else:
        need = f"run as root (uid 0, or with CAP_DAC_OVERRIDE), or as a member of {who}"
    return f"permission denied on the {runtime} socket {path}: {need}"

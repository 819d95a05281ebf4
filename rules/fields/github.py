"""Fields of the ``github`` source, as the Falco ``github`` plugin extracts them.

``ev.payload`` is one GitHub webhook message as the plugin forwards it: the webhook body
plus ``webhook_type`` (the ``X-GitHub-Event`` header) and, when the plugin scanned the
push diff or the workflow file, ``files`` (``[{name, matches: [{line, type, desc,
platform}]}]``) and ``workflow_miner_detections`` (``{name, matches: [{line, type}]}``).
The plugin re-encodes that map with Go, so ``json.*`` fields see sorted keys and
HTML-safe escapes.

Most fields are always present (``""`` when the value is absent or not a string), like
upstream. Exceptions: the ``committed_secrets`` desc/files/lines fields, which are
missing without a ``files`` array, and the ``workflow`` miner fields, missing without a
``workflow_miner_detections.matches`` array. Lists built from several files (or commits)
are concatenated the way upstream does it: items of one file are comma separated, but
no comma separates two files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from falconet.fields import FieldDef, FieldType, field, simple

from .jsonfields import (
    JsonFlavor,
    cstr,
    dumps_go_map,
    get_path,
    go_float_ints,
    pretty_go_map,
    register_flavor,
)

PLUGIN = "github"
PLUGIN_VERSIONS: dict[str, str] = {"github": "0.10.1"}

_U64 = 1 << 64


def _view(ev: Any) -> Any:
    view = ev.cache.get("github.view")
    if view is None:
        view = ev.cache["github.view"] = go_float_ints(ev.payload)
    return view


register_flavor("github", JsonFlavor(_view, dumps_go_map, pretty_go_map))


def _str(v: Any, *keys: str) -> str:
    """fastjson ``GetStringBytes`` turned into a Go string: ``""`` unless a string."""
    v = get_path(v, keys)
    return v if type(v) is str else ""


def _uint(v: Any, *keys: str) -> int:
    """fastjson ``GetUint64``: 0 unless a non-negative integer that fits 64 bits."""
    v = get_path(v, keys)
    if type(v) is float and v.is_integer():
        v = int(v)
    return v if type(v) is int and 0 <= v < _U64 else 0


def _array(v: Any, *keys: str) -> list[Any] | None:
    v = get_path(v, keys)
    return v if type(v) is list else None


def plugin_info(ev: Any) -> str:
    """``evt.plugininfo``: ``github <type>[ user:<login>][ repo:<url>][ action:<action>]``."""
    p = ev.payload
    line = "github " + _str(p, "webhook_type")
    for label, keys in (
        ("user", ("sender", "login")),
        ("repo", ("repository", "html_url")),
        ("action", ("action",)),
    ):
        v = get_path(p, keys)
        if type(v) is str:
            line += f" {label}:{v}"
    return cstr(line)


def _text(*keys: str) -> Callable[[Any], str]:
    def extract(ev: Any) -> str:
        return cstr(_str(ev.payload, *keys))

    return extract


def _repo_name(ev: Any) -> str:
    url = _str(ev.payload, "repository", "html_url")
    return cstr(url.removeprefix("https://github.com/"))


def _repo_public(ev: Any) -> str:
    return "false" if get_path(ev.payload, ("repository", "private")) is True else "true"


def _webhook_id(ev: Any) -> str:
    return str(_uint(ev.payload, "hook", "id"))


def _commit_files(key: str) -> Callable[[Any], str]:
    def extract(ev: Any) -> str:
        res = ""
        for commit in _array(ev.payload, "commits") or ():
            for name in _array(commit, key) or ():
                res += (name if type(name) is str else "") + ","
            res = res.removesuffix(",")
        return cstr(res)

    return extract


def _matches(file: Any) -> list[Any]:
    return _array(file, "matches") or []


def _has_secrets(ev: Any) -> str:
    files = _array(ev.payload, "files")
    if files is None:
        return ""
    return "true" if any(_matches(f) for f in files) else "false"


def _match_field(kind: str) -> Callable[[Any], str | None]:
    """The plugin's ``getMatchField`` for desc ("string"), line ("uint64"), file name."""

    def extract(ev: Any) -> str | None:
        files = _array(ev.payload, "files")
        if files is None:
            return None
        res = ""
        for f in files:
            for m in _matches(f):
                if kind == "desc":
                    res += _str(m, "desc")
                elif kind == "line":
                    res += str(_uint(m, "line"))
                else:
                    res += _str(f, "name")
                res += ","
            res = res.removesuffix(",")
        return cstr(res)

    return extract


def _secret_links(ev: Any) -> str:
    p = ev.payload
    files = _array(p, "files")
    if files is None:
        return ""
    repo = _str(p, "repository", "html_url")
    commit = _str(p, "head_commit", "id")
    res = ""
    for f in files:
        name = _str(f, "name")
        for m in _matches(f):
            res += f"{repo}/blob/{commit}/{name}/#L{_uint(m, 'line')},"
        res = res.removesuffix(",")
    return cstr(res)


def _has_miners(ev: Any) -> str | None:
    matches = _array(ev.payload, "workflow_miner_detections", "matches")
    if matches is None:
        return None
    return "true" if matches else "false"


def _miner_types(ev: Any) -> str | None:
    matches = _array(ev.payload, "workflow_miner_detections", "matches")
    if matches is None:
        return None
    # upstream dedups through a Go map (random order); first-seen order here
    seen = dict.fromkeys(_str(m, "type") for m in matches)
    return cstr(",".join(seen))


def _s(name: str, desc: str, fn: Callable[[Any], Any]) -> FieldDef:
    return field(name, FieldType.CHARBUF, desc, simple(fn))


FIELDS: tuple[FieldDef, ...] = (
    _s(
        "github.type",
        "webhook message type (X-GitHub-Event), e.g. push, star",
        _text("webhook_type"),
    ),
    _s("github.action", "action of the message, qualifying github.type", _text("action")),
    _s("github.user", "login of the user that triggered the event", _text("sender", "login")),
    _s("github.repo", "deprecated: repository URL", _text("repository", "html_url")),
    _s("github.repo.url", "repository URL", _text("repository", "html_url")),
    _s("github.repo.name", "repository owner/name (URL without https://github.com/)", _repo_name),
    _s("github.repo.description", "repository description", _text("repository", "description")),
    _s("github.org", "organization login", _text("organization", "login")),
    _s("github.owner", "repository owner login", _text("repository", "owner", "login")),
    _s("github.repo.public", "'true' unless the repository is private", _repo_public),
    _s("github.collaborator.name", "member login for membership changes", _text("member", "login")),
    _s(
        "github.collaborator.role",
        "new permission for collaborator changes",
        _text("changes", "permission", "to"),
    ),
    _s("github.webhook.id", "hook id (0 when absent)", _webhook_id),
    _s("github.webhook.type", "hook type, e.g. Repository", _text("hook", "type")),
    _s("github.commit.added", "files added by the pushed commits", _commit_files("added")),
    _s("github.commit.modified", "files modified by the pushed commits", _commit_files("modified")),
    _s("github.commit.removed", "files removed by the pushed commits", _commit_files("removed")),
    _s("github.diff.has_secrets", "'true' if the push diff contains a secret", _has_secrets),
    _s(
        "github.diff.committed_secrets.desc",
        "descriptions of the committed secrets",
        _match_field("desc"),
    ),
    _s(
        "github.diff.committed_secrets.files",
        "files holding the committed secrets",
        _match_field("file"),
    ),
    _s(
        "github.diff.committed_secrets.lines",
        "lines of the committed secrets",
        _match_field("line"),
    ),
    _s(
        "github.diff.committed_secrets.links",
        "source links of the committed secrets",
        _secret_links,
    ),
    _s(
        "github.workflow.has_miners",
        "'true' if a miner was found in the workflow file",
        _has_miners,
    ),
    _s(
        "github.workflow.miners.type",
        "types of the miners found in the workflow file",
        _miner_types,
    ),
    _s(
        "github.workflow.filename",
        "path of the workflow definition file",
        _text("workflow", "path"),
    ),
)

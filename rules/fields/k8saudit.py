"""Fields of the ``k8s_audit`` source, as the Falco ``k8saudit`` plugin extracts them.

``ev.payload`` is one ``audit.k8s.io`` Event (an ``EventList`` is split into its items
before it gets here). Conventions of the plugin, kept here:

* every ``ka.*`` field is missing when the event has no ``auditID`` key;
* values are strings: a JSON string as is, anything else as compact JSON text the way
  the kube-apiserver wrote it (Go escaping, so ``&`` is ``\\u0026``): ``true``, ``201``,
  ``{"k":"v"}``; a JSON ``null`` is the text ``null``;
* an empty list is missing.

Per-container fields (``ka.req.pod.{containers,initContainers,ephemeralContainers}.*``)
walk ``requestObject.spec.<list>[*].<path>`` like the plugin's ``getValuesRecursive``:
an optional ``[N]`` index picks the N-th element of every array met on the way, and a
container that lacks the path leaves a hole. How holes count depends on the field:

* ``privileged``, ``allow_privilege_escalation``, ``read_only_fs``, ``run_as_user``,
  ``run_as_group``, ``proc_mount``, ``add_capabilities``: holes are skipped;
* ``name``, ``image``, ``image.repository``: one hole makes the whole field missing;
* ``eff_run_as_user``/``eff_run_as_group``: a hole takes the pod-level value (or ``"0"``).

Upstream oddities reproduced on purpose (they decide what the rules see):

* ``image.repository`` cuts the image at the first ``:`` then at ``@``, so a registry
  with a port (``host:5000/app:1``) gives ``host``;
* ``add_capabilities`` yields each container's ``add`` array as one JSON text
  (``["NET_ADMIN","SYS_TIME"]``), and ``ka.req.service.ports`` the whole ports array as
  one JSON text;
* ``eff_run_as_user``/``eff_run_as_group`` read ``spec.runAsUser`` and
  ``<container>.runAsUser`` (not under ``securityContext``), so they are nearly always
  ``"0"`` per container;
* ``ka.sourceips`` reads ``requestObject.rules[*].sourceIPs`` rather than the event's
  ``sourceIPs``, so it is missing for ordinary events;
* ``ka.req.binding.subject.has_name[...]`` is always ``"true"``;
* ``ka.uri.param[k]`` parses ``requestURI`` like Go's ``net/url``: an unparsable URI or
  any malformed query pair (bad ``%`` escape, ``;``) makes it missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from falconet.fields import ArgMode, FieldDef, FieldType, field, simple

from .jsonfields import MISSING, cstr, dumps_go, get_path, go_atoi, parse_index

PLUGIN = "k8saudit"

#: The k8saudit plugin and the cloud variants built on its extractor (same fields).
PLUGIN_VERSIONS: dict[str, str] = {
    "k8saudit": "0.18.0",
    "k8saudit-aks": "0.6.0",
    "k8saudit-eks": "0.12.0",
    "k8saudit-gke": "0.9.0",
    "k8saudit-ovh": "0.6.0",
}

_NO_INDEX = -1
#: A hole: an array element that lacked the path (``None`` is a JSON null).
_HOLE: Any = object()

Extract = Callable[[Any], Any]


def plugin_info(ev: Any) -> str:
    """``evt.plugininfo``: the plugin prints the whole event as compact JSON."""
    return cstr(dumps_go(ev.payload))


# ---------------------------------------------------------------------------- value helpers


def _text(v: Any) -> str:
    """The plugin's ``jsonValueAsString`` for a found value."""
    t = type(v)
    if t is str:
        return v if "\x00" not in v else cstr(v)
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if v is None:
        return "null"
    return dumps_go(v)


def _step(v: Any, key: str) -> Any:
    """One fastjson ``Get(key)``; an empty key is ``Get()``, the value itself."""
    if not key:
        return v
    t = type(v)
    if t is dict:
        return v.get(key, MISSING)
    if t is list:
        i = go_atoi(key)
        return v[i] if i is not None and 0 <= i < len(v) else MISSING
    return MISSING


def _values(v: Any, index: int, keys: tuple[str, ...], start: int = 0) -> list[Any] | None:
    """The plugin's ``getValuesRecursive``: None when not available, else the values.

    Arrays met before a key are expanded (every element, holes where the path is
    absent) or, with an index, narrowed to that element.
    """
    for i in range(start, len(keys)):
        t = type(v)
        if t is list:
            if index == _NO_INDEX:
                out: list[Any] = []
                for item in v:
                    sub = _values(item, index, keys, i)
                    if sub is None:
                        out.append(_HOLE)
                    else:
                        out.extend(sub)
                return out
            if index < 0 or index >= len(v):
                return None
            v = v[index]
            t = type(v)
        k = keys[i]
        v = v.get(k, MISSING) if t is dict and k else _step(v, k)
        if v is MISSING:
            return None
    return [v]


def _skip_holes(values: list[Any]) -> tuple[str, ...] | None:
    return tuple(_text(v) for v in values if v is not _HOLE) or None


def _audit(ev: Any) -> dict[str, Any] | None:
    p = ev.payload
    return p if "auditID" in p else None


# ---------------------------------------------------------------------------- plain fields


def _key(*keys: str) -> Extract:
    if len(keys) == 1:
        (k,) = keys

        def top(ev: Any) -> str | None:
            p = ev.payload
            if "auditID" not in p:
                return None
            v = p.get(k, MISSING)
            if type(v) is str and "\x00" not in v:
                return v
            return None if v is MISSING else _text(v)

        return top

    if len(keys) == 2:
        k1, k2 = keys

        def two(ev: Any) -> str | None:
            p = ev.payload
            if "auditID" not in p:
                return None
            o = p.get(k1)
            if type(o) is not dict:
                return None
            v = o.get(k2, MISSING)
            if type(v) is str and "\x00" not in v:
                return v
            return None if v is MISSING else _text(v)

        return two

    def deep(ev: Any) -> str | None:
        p = ev.payload
        if "auditID" not in p:
            return None
        v = get_path(p, keys)
        return None if v is MISSING else _text(v)

    return deep


def _key_list(*keys: str) -> Extract:
    """A JSON array as a list of strings (not an array: missing)."""

    def extract(ev: Any) -> tuple[str, ...] | None:
        p = _audit(ev)
        if p is None:
            return None
        v = get_path(p, keys)
        if type(v) is not list:
            return None
        return tuple(_text(x) for x in v) or None

    return extract


def _uri_param(arg: str | None) -> Extract:
    name = arg or ""

    def extract(ev: Any) -> str | None:
        p = _audit(ev)
        if p is None:
            return None
        v = p.get("requestURI", MISSING)
        if v is MISSING:
            return None
        query = _go_query(_text(v))
        if query is None:
            return None
        found = query.get(name)
        return cstr(found[0]) if found else None

    return extract


def _target_pod_name(ev: Any) -> str | None:
    p = _audit(ev)
    if p is None:
        return None
    ref = p.get("objectRef")
    if type(ref) is not dict or ref.get("resource") != "pods":
        return None
    sub = ref.get("subresource")
    if type(sub) is str and sub:
        return None
    v = get_path(p, ("responseObject", "metadata", "name"))
    return None if v is MISSING else _text(v)


def _has_name(arg: str | None) -> Extract:
    def extract(ev: Any) -> str | None:
        return "true" if "auditID" in ev.payload else None

    return extract


# ---------------------------------------------------------------------------- pods


def _container_values(p: dict[str, Any], lst: str, index: int, *sub: str) -> list[Any] | None:
    return _values(p, index, ("requestObject", "spec", lst, *sub))


def _strict(values: list[Any]) -> list[str] | None:
    """``arrayAsStrings``: a hole anywhere fails the whole field."""
    out = []
    for v in values:
        if v is _HOLE:
            return None
        out.append(_text(v))
    return out


def _images(p: dict[str, Any], lst: str, index: int) -> list[str] | None:
    values = _container_values(p, lst, index, "image")
    return None if values is None else _strict(values)


def _repository(image: str) -> str:
    return image.split(":", 1)[0].split("@", 1)[0]


def _joined(values: list[Any] | None) -> tuple[str, ...] | None:
    """command/args: each container's string array joined with spaces."""
    if values is None:
        return None
    out = []
    for v in values:
        if v is _HOLE:
            continue
        if type(v) is not list:
            return None
        parts = []
        for a in v:
            if type(a) is not str:
                return None
            parts.append(a)
        out.append(cstr(" ".join(parts)))
    return tuple(out) or None


def _host_ports(values: list[Any] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    out = []
    for ports in values:
        if ports is _HOLE:
            continue
        if type(ports) is not list:
            return None
        for port in ports:
            if type(port) is not dict:
                continue
            v = port.get("hostPort", MISSING)
            if v is MISSING:
                v = port.get("containerPort", MISSING)
            if v is not MISSING:
                out.append(_text(v))
    return tuple(out) or None


def _container_field(lst: str, sub: str) -> Callable[[str | None], Extract]:
    """Maker for ``ka.req.pod.<lst>.<sub>`` with its optional index argument."""

    def make(arg: str | None) -> Extract:
        index = _go_int(parse_index(arg))

        def walker(*path: str) -> Callable[[Any], list[Any] | None]:
            """``getContainerValues`` for one path, memoized per event (rules share them)."""
            keys = ("requestObject", "spec", lst, *path)
            memo = f"k8saudit:{'/'.join(keys)}#{index}"

            def walk(ev: Any) -> list[Any] | None:
                cache = ev.cache
                vals = cache.get(memo, _HOLE)
                if vals is _HOLE:
                    vals = cache[memo] = _values(ev.payload, index, keys)
                return vals

            return walk

        if sub in ("name", "image", "image.repository"):
            walk = walker("name" if sub == "name" else "image")
            repository = sub == "image.repository"

            def strict(ev: Any) -> tuple[str, ...] | None:
                if "auditID" not in ev.payload:
                    return None
                vals = walk(ev)
                out = None if vals is None else _strict(vals)
                if not out:
                    return None
                return tuple(_repository(i) for i in out) if repository else tuple(out)

            return strict

        if sub in ("command", "args", "host_port"):
            walk = walker("ports" if sub == "host_port" else sub)
            collect = _host_ports if sub == "host_port" else _joined

            def lists(ev: Any) -> tuple[str, ...] | None:
                if "auditID" not in ev.payload:
                    return None
                return collect(walk(ev))

            return lists

        if sub in ("eff_run_as_user", "eff_run_as_group"):
            key = "runAsUser" if sub == "eff_run_as_user" else "runAsGroup"
            walk = walker(key)
            pod_keys = ("requestObject", "spec", key)

            def effective(ev: Any) -> tuple[str, ...] | None:
                p = ev.payload
                if "auditID" not in p:
                    return None
                pod_value = get_path(p, pod_keys)
                default = "0" if pod_value is MISSING else _text(pod_value)
                vals = walk(ev)
                if vals is None:
                    return None
                return tuple(default if v is _HOLE else _text(v) for v in vals) or None

            return effective

        walk = walker(*_SECURITY_PATHS[sub])

        def skip_holes(ev: Any) -> tuple[str, ...] | None:
            if "auditID" not in ev.payload:
                return None
            vals = walk(ev)
            return None if vals is None else _skip_holes(vals)

        return skip_holes

    return make


_SECURITY_PATHS: dict[str, tuple[str, ...]] = {
    "privileged": ("securityContext", "privileged"),
    "allow_privilege_escalation": ("securityContext", "allowPrivilegeEscalation"),
    "read_only_fs": ("securityContext", "readOnlyRootFilesystem"),
    "run_as_user": ("securityContext", "runAsUser"),
    "run_as_group": ("securityContext", "runAsGroup"),
    "proc_mount": ("securityContext", "procMount"),
    "add_capabilities": ("securityContext", "capabilities", "add"),
}


def _go_int(index: int | None) -> int:
    """The plugin reads the index as ``int(uint64)``: absent (or 2^64-1) means all."""
    if index is None:
        return _NO_INDEX
    if index >= 1 << 63:
        index -= 1 << 64
    return index


def _first_image(ev: Any) -> str | None:
    p = _audit(ev)
    if p is None:
        return None
    images = _images(p, "containers", 0)
    return images[0] if images else None


def _first_repository(ev: Any) -> str | None:
    image = _first_image(ev)
    return None if image is None else _repository(image)


def _any_privileged(ev: Any) -> str | None:
    p = _audit(ev)
    if p is None:
        return None
    vals = _container_values(p, "containers", _NO_INDEX, "securityContext", "privileged")
    if vals is None:
        return None
    return "true" if any(v is True for v in vals) else "false"


def _indexed(
    keys: tuple[str, ...], collect: Callable[[list[Any]], Any]
) -> Callable[[str | None], Extract]:
    """Maker for a list field over ``_values(keys)`` with an optional index."""

    def make(arg: str | None) -> Extract:
        index = _go_int(parse_index(arg))

        def extract(ev: Any) -> Any:
            p = _audit(ev)
            if p is None:
                return None
            vals = _values(p, index, keys)
            return None if vals is None else collect(vals)

        return extract

    return make


def _flatten_arrays(values: list[Any]) -> tuple[str, ...] | None:
    """``extractRulesField``: the elements of every array value, as strings."""
    out: list[str] = []
    for v in values:
        if type(v) is list:
            out.extend(_text(x) for x in v)
    return tuple(out) or None


def _rules_field(key: str) -> Callable[[str | None], Extract]:
    return _indexed(("requestObject", "rules", key), _flatten_arrays)


def _volume_types(values: list[Any]) -> tuple[str, ...] | None:
    out = []
    for v in values:
        if type(v) is dict:
            out.extend(cstr(k) for k in v if k != "name")
    return tuple(out) or None


def _volume_hostpath(arg: str | None) -> Extract:
    """Deprecated: "true" if a hostPath volume equals the argument (prefix with ``*``)."""
    wanted = arg or ""
    prefix = wanted[:-1] if wanted.endswith("*") else None

    def extract(ev: Any) -> str | None:
        p = _audit(ev)
        if p is None:
            return None
        vals = _values(p, _NO_INDEX, ("requestObject", "spec", "volumes", "hostPath", "path"))
        if vals is None:
            return None
        for v in vals:
            if v is _HOLE:
                continue
            path = _text(v)
            if (prefix is not None and path.startswith(prefix)) or path == wanted:
                return "true"
        return "false"

    return extract


def _subject_names(kind: str) -> Extract:
    namespaced = kind == "NamespacedServiceAccount"
    if namespaced:
        kind = "ServiceAccount"

    def extract(ev: Any) -> tuple[str, ...] | None:
        p = _audit(ev)
        if p is None:
            return None
        subjects = get_path(p, ("requestObject", "subjects"))
        if type(subjects) is not list:
            return None
        out = []
        for s in subjects:
            if type(s) is not dict or "kind" not in s or "name" not in s:
                continue
            if _text(s["kind"]) != kind:
                continue
            name = _text(s["name"])
            if namespaced:
                ns = s.get("namespace", MISSING)
                if ns is MISSING:
                    continue
                name = _text(ns) + ":" + name
            out.append(name)
        return tuple(out) or None

    return extract


# ---------------------------------------------------------------------------- Go net/url


_CTL = re.compile(r"[\x00-\x1f\x7f]")
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
_HOST_OK = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$&'()*+,;=:[]<>\"-_.~"
)
_USERINFO_OK = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:~!$&'()*+,;=%@"
)


def _unescape(s: str, query: bool = False, host: bool = False) -> str | None:
    """Go ``url.unescape``: None on a malformed ``%`` escape (or a bad host byte)."""
    if "%" not in s and not (query and "+" in s) and not host:
        return s
    b = s.encode("utf-8", "surrogatepass")
    out = bytearray()
    i, n = 0, len(b)
    while i < n:
        c = b[i]
        if c == 0x25:  # %
            if i + 2 >= n or b[i + 1] not in _HEXDIGITS or b[i + 2] not in _HEXDIGITS:
                return None
            if host and int(b[i + 1 : i + 2], 16) < 8 and b[i : i + 3] != b"%25":
                return None
            out.append(int(b[i + 1 : i + 3], 16))
            i += 3
            continue
        if c == 0x2B and query:  # +
            out.append(0x20)
        elif host and c < 0x80 and c not in _HOST_OK:
            return None
        else:
            out.append(c)
        i += 1
    return out.decode("utf-8", "replace")


def _valid_port(colon_port: str) -> bool:
    return colon_port == "" or (
        colon_port[0] == ":"
        and colon_port[1:].isascii()
        and (colon_port[1:] == "" or colon_port[1:].isdigit())
    )


def _authority_ok(authority: str) -> bool:
    at = authority.rfind("@")
    host = authority[at + 1 :]
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0 or not _valid_port(host[end + 1 :]):
            return False
    else:
        colon = host.rfind(":")
        if colon >= 0 and not _valid_port(host[colon:]):
            return False
    if _unescape(host, host=True) is None:
        return False
    if at >= 0:
        userinfo = authority[:at]
        if any(ch not in _USERINFO_OK for ch in userinfo):
            return False
        for part in userinfo.split(":", 1):
            if _unescape(part) is None:
                return False
    return True


def _go_raw_query(uri: str) -> str | None:
    """``url.Parse(uri).RawQuery``, or None where Go's parser returns an error."""
    u, sep, frag = uri.partition("#")
    if _CTL.search(u):
        return None
    if u == "*":
        raw_query = ""
    else:
        scheme, rest = "", u
        for i, ch in enumerate(u):
            if ch == ":":
                if i == 0:
                    return None  # missing protocol scheme
                scheme, rest = u[:i], u[i + 1 :]
                break
            if ch not in _SCHEME_CHARS or (i == 0 and not ch.isalpha()):
                break
        if rest.endswith("?") and rest.count("?") == 1:
            rest, raw_query = rest[:-1], ""
        else:
            rest, _, raw_query = rest.partition("?")
        if not rest.startswith("/"):
            if scheme:
                return _fragment_ok(sep, frag, raw_query)  # opaque URL
            if ":" in rest.partition("/")[0]:
                return None  # first path segment in URL cannot contain colon
        if rest.startswith("//") and (scheme or not rest.startswith("///")):
            authority, slash, path = rest[2:].partition("/")
            if not _authority_ok(authority):
                return None
            rest = slash + path
        if _unescape(rest) is None:
            return None
    return _fragment_ok(sep, frag, raw_query)


def _fragment_ok(sep: str, frag: str, raw_query: str) -> str | None:
    if sep and frag and _unescape(frag) is None:
        return None
    return raw_query


def _go_query(uri: str) -> dict[str, list[str]] | None:
    """Go ``url.ParseQuery(url.Parse(uri).RawQuery)``; None if either reports an error."""
    raw = _go_raw_query(uri)
    if raw is None:
        return None
    out: dict[str, list[str]] = {}
    failed = False
    for pair in raw.split("&"):
        if ";" in pair:
            failed = True
            continue
        if not pair:
            continue
        k, _, v = pair.partition("=")
        key = _unescape(k, query=True)
        value = _unescape(v, query=True)
        if key is None or value is None:
            failed = True
            continue
        out.setdefault(key, []).append(value)
    return None if failed else out


# ---------------------------------------------------------------------------- registry


def _s(name: str, desc: str, fn: Extract) -> FieldDef:
    return field(name, FieldType.CHARBUF, desc, simple(fn))


def _l(name: str, desc: str, fn: Extract) -> FieldDef:
    return field(name, FieldType.CHARBUF, desc, simple(fn), is_list=True)


def _li(name: str, desc: str, make: Callable[[str | None], Extract]) -> FieldDef:
    return field(
        name, FieldType.CHARBUF, desc, make, arg=ArgMode.OPTIONAL, index_arg=True, is_list=True
    )


_CONTAINER_SUBFIELDS: tuple[tuple[str, str], ...] = (
    ("name", "names"),
    ("image", "images"),
    ("image.repository", "images without tag or digest (cut at the first ':' then '@')"),
    ("command", "commands, each joined with spaces"),
    ("args", "args, each joined with spaces"),
    ("privileged", "securityContext.privileged values (unset ones skipped)"),
    ("allow_privilege_escalation", "securityContext.allowPrivilegeEscalation values"),
    ("read_only_fs", "securityContext.readOnlyRootFilesystem values"),
    ("run_as_user", "securityContext.runAsUser values"),
    ("eff_run_as_user", "effective uid per container (pod value or 0 when unset)"),
    ("run_as_group", "securityContext.runAsGroup values"),
    ("eff_run_as_group", "effective gid per container (pod value or 0 when unset)"),
    ("proc_mount", "securityContext.procMount values"),
    ("add_capabilities", "securityContext.capabilities.add, one JSON array per container"),
    ("host_port", "hostPort (else containerPort) of every port"),
)


def _container_fields(lst: str, label: str, host_port: bool) -> tuple[FieldDef, ...]:
    return tuple(
        _li(f"ka.req.pod.{lst}.{sub}", f"pod request: {label} {desc}", _container_field(lst, sub))
        for sub, desc in _CONTAINER_SUBFIELDS
        if host_port or sub != "host_port"
    )


FIELDS: tuple[FieldDef, ...] = (
    _s("ka.auditid", "auditID of the event", _key("auditID")),
    _s(
        "ka.stage",
        "stage (RequestReceived, ResponseStarted, ResponseComplete, Panic)",
        _key("stage"),
    ),
    _s(
        "ka.auth.decision",
        "authorization decision annotation (allow, forbid)",
        _key("annotations", "authorization.k8s.io/decision"),
    ),
    _s(
        "ka.auth.reason",
        "authorization reason annotation",
        _key("annotations", "authorization.k8s.io/reason"),
    ),
    _s(
        "ka.auth.openshift.decision",
        "OpenShift authentication decision annotation",
        _key("annotations", "authentication.openshift.io/decision"),
    ),
    _s(
        "ka.validations.admission.policy.failure",
        "validating admission policy failure annotation",
        _key("annotations", "validation.policy.admission.k8s.io/validation_failure"),
    ),
    _s(
        "ka.security.pod.violations",
        "pod security audit violations annotation",
        _key("annotations", "pod-security.kubernetes.io/audit-violations"),
    ),
    _s(
        "ka.auth.openshift.username",
        "OpenShift authentication username annotation",
        _key("annotations", "authentication.openshift.io/username"),
    ),
    _s("ka.user.name", "user.username of the requester", _key("user", "username")),
    _l("ka.user.groups", "user.groups of the requester", _key_list("user", "groups")),
    _s("ka.impuser.name", "impersonatedUser.username", _key("impersonatedUser", "username")),
    _s("ka.verb", "verb of the request (get, create, patch...)", _key("verb")),
    _s("ka.uri", "requestURI", _key("requestURI")),
    field(
        "ka.uri.param",
        FieldType.CHARBUF,
        "first value of a query parameter of requestURI",
        _uri_param,
        arg=ArgMode.REQUIRED,
    ),
    _s("ka.target.name", "objectRef.name", _key("objectRef", "name")),
    _s("ka.target.namespace", "objectRef.namespace", _key("objectRef", "namespace")),
    _s("ka.target.resource", "objectRef.resource", _key("objectRef", "resource")),
    _s("ka.target.subresource", "objectRef.subresource", _key("objectRef", "subresource")),
    _s(
        "ka.target.pod.name",
        "pod name from the response, for pods without subresource",
        _target_pod_name,
    ),
    _l(
        "ka.req.binding.subjects",
        "requestObject.subjects of a (cluster) role binding",
        _key_list("requestObject", "subjects"),
    ),
    _l(
        "ka.req.binding.subjects.user_names",
        "binding subjects of kind User",
        _subject_names("User"),
    ),
    _l(
        "ka.req.binding.subjects.serviceaccount_names",
        "binding subjects of kind ServiceAccount",
        _subject_names("ServiceAccount"),
    ),
    _l(
        "ka.req.binding.subjects.serviceaccount_ns_names",
        "binding service account subjects as namespace:name",
        _subject_names("NamespacedServiceAccount"),
    ),
    _l(
        "ka.req.binding.subjects.group_names",
        "binding subjects of kind Group",
        _subject_names("Group"),
    ),
    _s(
        "ka.req.binding.role",
        "requestObject.roleRef.name of a binding",
        _key("requestObject", "roleRef", "name"),
    ),
    field(
        "ka.req.binding.subject.has_name",
        FieldType.CHARBUF,
        "deprecated; always 'true'",
        _has_name,
        arg=ArgMode.REQUIRED,
    ),
    _s(
        "ka.req.configmap.name",
        "objectRef.name (for configmap requests)",
        _key("objectRef", "name"),
    ),
    _s("ka.req.configmap.obj", "requestObject.data as JSON text", _key("requestObject", "data")),
    *_container_fields("containers", "containers'", True),
    _s("ka.req.container.image", "deprecated: image of the first container", _first_image),
    _s(
        "ka.req.container.image.repository",
        "deprecated: image repository of the first container",
        _first_repository,
    ),
    _s(
        "ka.req.pod.host_ipc",
        "requestObject.spec.hostIPC",
        _key("requestObject", "spec", "hostIPC"),
    ),
    _s(
        "ka.req.pod.host_network",
        "requestObject.spec.hostNetwork",
        _key("requestObject", "spec", "hostNetwork"),
    ),
    _s(
        "ka.req.container.host_network",
        "deprecated alias of ka.req.pod.host_network",
        _key("requestObject", "spec", "hostNetwork"),
    ),
    _s(
        "ka.req.pod.host_pid",
        "requestObject.spec.hostPID",
        _key("requestObject", "spec", "hostPID"),
    ),
    _s(
        "ka.req.container.privileged",
        "deprecated: 'true' if any container is privileged",
        _any_privileged,
    ),
    _s(
        "ka.req.pod.run_as_user",
        "pod securityContext.runAsUser",
        _key("requestObject", "spec", "securityContext", "runAsUser"),
    ),
    _s(
        "ka.req.pod.run_as_group",
        "pod securityContext.runAsGroup",
        _key("requestObject", "spec", "securityContext", "runAsGroup"),
    ),
    _l(
        "ka.req.role.rules",
        "requestObject.rules of a (cluster) role, one JSON text per rule",
        _key_list("requestObject", "rules"),
    ),
    _li("ka.req.role.rules.apiGroups", "apiGroups of the role's rules", _rules_field("apiGroups")),
    _li(
        "ka.req.role.rules.nonResourceURLs",
        "nonResourceURLs of the role's rules",
        _rules_field("nonResourceURLs"),
    ),
    _li("ka.req.role.rules.verbs", "verbs of the role's rules", _rules_field("verbs")),
    _li("ka.req.role.rules.resources", "resources of the role's rules", _rules_field("resources")),
    _s(
        "ka.req.pod.fs_group",
        "pod securityContext.fsGroup",
        _key("requestObject", "spec", "securityContext", "fsGroup"),
    ),
    _l(
        "ka.req.pod.supplemental_groups",
        "pod securityContext.supplementalGroups",
        _key_list("requestObject", "spec", "securityContext", "supplementalGroups"),
    ),
    _s(
        "ka.req.service.type",
        "requestObject.spec.type of a service",
        _key("requestObject", "spec", "type"),
    ),
    _li(
        "ka.req.service.ports",
        "requestObject.spec.ports of a service, as one JSON text",
        _indexed(("requestObject", "spec", "ports"), _skip_holes),
    ),
    _li(
        "ka.req.pod.volumes.hostpath",
        "hostPath paths of the pod's volumes",
        _indexed(("requestObject", "spec", "volumes", "hostPath", "path"), _skip_holes),
    ),
    field(
        "ka.req.volume.hostpath",
        FieldType.CHARBUF,
        "deprecated: 'true' if a hostPath volume is the argument (trailing * = prefix)",
        _volume_hostpath,
        arg=ArgMode.REQUIRED,
    ),
    _li(
        "ka.req.pod.volumes.flexvolume_driver",
        "flexVolume drivers of the pod's volumes",
        _indexed(("requestObject", "spec", "volumes", "flexVolume", "driver"), _skip_holes),
    ),
    _li(
        "ka.req.pod.volumes.volume_type",
        "volume types (keys other than name) of the volumes",
        _indexed(("requestObject", "spec", "volumes", ""), _volume_types),
    ),
    _s("ka.resp.name", "responseObject.metadata.name", _key("responseObject", "metadata", "name")),
    _s("ka.response.code", "responseStatus.code, as text", _key("responseStatus", "code")),
    _s("ka.response.reason", "responseStatus.reason", _key("responseStatus", "reason")),
    _s("ka.useragent", "userAgent of the client", _key("userAgent")),
    _li(
        "ka.sourceips",
        "source IPs (upstream reads requestObject.rules[*].sourceIPs)",
        _rules_field("sourceIPs"),
    ),
    _s("ka.cluster.name", "cluster_name annotation", _key("annotations", "cluster_name")),
    *_container_fields("initContainers", "init containers'", True),
    *_container_fields("ephemeralContainers", "ephemeral containers'", False),
)

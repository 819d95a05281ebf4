"""Fields of the ``okta`` source, as the Falco ``okta`` plugin extracts them.

``ev.payload`` is one Okta System Log event. The plugin decodes each event into a fixed
Go struct and re-encodes that struct as the event bytes, so:

* string fields are always present (``""`` when the event lacks the value), except the
  ones documented below;
* only the keys of the struct survive, and ``json.*`` fields, like ``evt.plugininfo``,
  see the re-encoded struct (Go key order, ``omitempty``, HTML-safe escapes) rather than
  the raw record — :func:`struct_view` rebuilds it;
* the longitude is read from a key spelled ``lonDe`` (an upstream typo), so
  ``okta.client.geo.lon`` is ``"0"`` for real Okta records.

Fields that do not extract here:

* ``okta.mfa.failure.countlast[N]`` / ``okta.mfa.deny.countlast[N]`` count events per
  actor over the last N seconds in a cache the plugin keeps across events; this module is
  stateless, so they are always missing;
* ``okta.org`` is the organization from the plugin configuration, not from the event:
  missing;
* ``okta.authentication.step`` and ``okta.security.asnumber`` hand an ``int`` to the SDK,
  which panics in Falco; they are missing here.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

from falconet.fields import ArgMode, FieldDef, FieldType, field, simple

from .jsonfields import (
    JsonFlavor,
    cstr,
    dumps_go,
    go_float_ints,
    parse_index,
    pretty_go,
    register_flavor,
)

PLUGIN = "okta"
PLUGIN_VERSIONS: dict[str, str] = {"okta": "0.12.0"}

# ---------------------------------------------------------------------------- the Go struct

# A schema is a tuple of (json name, kind, omitempty); kind is "s" (string), "f"
# (float64), "i" (int), a nested schema (struct) or a _Slice of one.
Schema = tuple[tuple[str, Any, bool], ...]


class _Slice(NamedTuple):
    item: Schema


_PRINCIPAL: Schema = (
    ("id", "s", False),
    ("type", "s", False),
    ("alternateId", "s", True),
    ("displayName", "s", True),
)
_OPTIONAL_PRINCIPAL: Schema = tuple((n, k, True) for n, k, _ in _PRINCIPAL)

_LOG_EVENT: Schema = (
    ("uuid", "s", False),
    ("published", "s", False),
    ("eventType", "s", False),
    ("version", "s", False),
    ("severity", "s", False),
    ("legacyEventType", "s", True),
    ("displayMessage", "s", False),
    ("actor", _PRINCIPAL, False),
    (
        "client",
        (
            (
                "userAgent",
                (("os", "s", True), ("browser", "s", True), ("rawUserAgent", "s", True)),
                True,
            ),
            (
                "geographicalContext",
                (
                    ("geolocation", (("lat", "f", True), ("lonDe", "f", True)), True),
                    ("city", "s", True),
                    ("state", "s", True),
                    ("country", "s", True),
                    ("postalCode", "s", True),
                ),
                True,
            ),
            ("zone", "s", True),
            ("ipAddress", "s", True),
            ("device", "s", True),
            ("id", "s", True),
        ),
        True,
    ),
    ("outcome", (("result", "s", False), ("reason", "s", True)), True),
    ("target", _Slice(_PRINCIPAL), True),
    ("transaction", (("type", "s", True), ("id", "s", True)), False),
    (
        "debugContext",
        (
            (
                "debugData",
                (
                    ("requestUri", "s", False),
                    ("originalPrincipal", _OPTIONAL_PRINCIPAL, True),
                    ("behaviors", "s", True),
                    ("logOnlySecurityData", "s", True),
                ),
                True,
            ),
        ),
        True,
    ),
    (
        "authenticationContext",
        (
            ("authenticationStep", "i", True),
            ("externalSessionId", "s", True),
            ("authenticationProvider", "s", True),
            ("credentialProvider", "s", True),
        ),
        True,
    ),
    (
        "securityContext",
        (
            ("asNumber", "i", True),
            ("asOrg", "s", True),
            ("isp", "s", True),
            ("domain", "s", True),
            ("isProxy", "s", True),
        ),
        True,
    ),
)


def _zero(kind: Any) -> Any:
    if kind == "s":
        return ""
    if kind == "f":
        return 0.0
    if kind == "i":
        return 0
    if type(kind) is _Slice:
        return None  # nil slice
    return _decode({}, kind)


def _decode_value(v: Any, kind: Any, old: Any) -> Any:
    """One JSON value into a Go field: null and type mismatches leave the field as is."""
    if v is None:
        return old
    t = type(v)
    if kind == "s":
        return v if t is str else old
    if kind == "f":
        return float(v) if t is int or t is float else old
    if kind == "i":
        if t is int and -(1 << 63) <= v < (1 << 63):
            return v
        return old
    if type(kind) is _Slice:
        if t is not list:
            return old
        return [_decode(item if type(item) is dict else {}, kind.item) for item in v]
    if t is not dict:
        return old
    return _decode(v, kind)


def _decode(obj: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """``json.Unmarshal`` into the struct: exact key match first, else case-insensitive."""
    out = {name: _zero(kind) for name, kind, _ in schema}
    if not obj:
        return out
    folded = {name.lower(): (name, kind) for name, kind, _ in schema}
    kinds = {name: kind for name, kind, _ in schema}
    for key, value in obj.items():
        if key in kinds:
            name, kind = key, kinds[key]
        else:
            hit = folded.get(key.lower())
            if hit is None:
                continue
            name, kind = hit
        out[name] = _decode_value(value, kind, out[name])
    return out


def _encode(model: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """``json.Marshal`` of the struct: field order, ``omitempty`` on scalars and slices."""
    out: dict[str, Any] = {}
    for name, kind, omitempty in schema:
        v = model[name]
        if type(kind) is str:
            if omitempty and not v:
                continue
            out[name] = v
        elif type(kind) is _Slice:
            if omitempty and not v:
                continue
            out[name] = None if v is None else [_encode(item, kind.item) for item in v]
        else:
            out[name] = _encode(v, kind)
    return out


def event_struct(ev: Any) -> dict[str, Any]:
    """The payload decoded into the plugin's struct (memoized per event)."""
    model = ev.cache.get("okta.struct")
    if model is None:
        payload = ev.payload
        model = ev.cache["okta.struct"] = _decode(
            payload if type(payload) is dict else {}, _LOG_EVENT
        )
    return model


def struct_view(ev: Any) -> dict[str, Any]:
    """The event as the plugin re-encodes it (what the json plugin and plugininfo see)."""
    view = ev.cache.get("okta.view")
    if view is None:
        view = ev.cache["okta.view"] = go_float_ints(_encode(event_struct(ev), _LOG_EVENT))
    return view


register_flavor("okta", JsonFlavor(struct_view, dumps_go, pretty_go))


def plugin_info(ev: Any) -> str:
    """``evt.plugininfo``: the re-encoded event as compact JSON."""
    return cstr(dumps_go(struct_view(ev)))


# ---------------------------------------------------------------------------- helpers


def go_float_v(f: float) -> str:
    """Go's ``fmt.Sprintf("%v", float64)``: shortest digits, exponent form past 1e6."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    sign, digits, exponent = Decimal(repr(f)).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent  # value = 0.<text> * 10**point
    text = text.rstrip("0") or "0"
    lead = "-" if sign else ""
    x = point - 1
    if x < -4 or x >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{lead}{mantissa}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    if point <= 0:
        return f"{lead}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{lead}{text}{'0' * (point - len(text))}"
    return f"{lead}{text[:point]}.{text[point:]}"


def _at(*path: str) -> Callable[[Any], str]:
    def extract(ev: Any) -> str:
        v: Any = event_struct(ev)
        for k in path:
            v = v[k]
        return cstr(v)

    return extract


def _geo(key: str) -> Callable[[Any], str]:
    def extract(ev: Any) -> str:
        geo = event_struct(ev)["client"]["geographicalContext"]["geolocation"]
        return go_float_v(geo[key])

    return extract


def _app(ev: Any) -> str | None:
    uri = event_struct(ev)["debugContext"]["debugData"]["requestUri"]
    if uri.startswith("/app/"):
        return cstr(uri.split("/")[2])
    return None


def _target(kind: str, key: str) -> Callable[[Any], str | None]:
    """The last target of the given type (the plugin overwrites on each match)."""

    def extract(ev: Any) -> str | None:
        found = None
        for t in event_struct(ev)["target"] or ():
            if t["type"] == kind:
                found = t[key]
        return None if found is None else cstr(found)

    return extract


def _targets_display_names(arg: str | None) -> Callable[[Any], str | None]:
    index = parse_index(arg)

    def extract(ev: Any) -> str | None:
        targets = event_struct(ev)["target"]
        if not targets:
            return None
        if index is None:
            return cstr("(" + ",".join(t["displayName"] for t in targets) + ")")
        if index < len(targets):
            return cstr(targets[index]["displayName"])
        return None

    return extract


def _missing(ev: Any) -> None:
    return None


def _missing_maker(arg: str | None) -> Callable[[Any], None]:
    parse_index(arg)
    return _missing


# ---------------------------------------------------------------------------- registry


def _s(name: str, desc: str, fn: Callable[[Any], Any]) -> FieldDef:
    return field(name, FieldType.CHARBUF, desc, simple(fn))


_DEBUG = ("debugContext", "debugData")
_PRINC = (*_DEBUG, "originalPrincipal")
_CLIENT = ("client",)
_GEO = ("client", "geographicalContext")
_UA = ("client", "userAgent")
_AUTH = ("authenticationContext",)
_SEC = ("securityContext",)

FIELDS: tuple[FieldDef, ...] = (
    _s("okta.app", "application name from an /app/<name>/... request URI", _app),
    _s("okta.behaviors", "debugData.behaviors", _at(*_DEBUG, "behaviors")),
    # from the plugin configuration, which falconet does not have
    _s("okta.org", "Okta organization (plugin configuration; always missing here)", _missing),
    _s("okta.evt.type", "eventType", _at("eventType")),
    _s("okta.evt.legacytype", "legacyEventType", _at("legacyEventType")),
    _s("okta.severity", "severity", _at("severity")),
    _s("okta.message", "displayMessage", _at("displayMessage")),
    _s("okta.published", "published timestamp", _at("published")),
    _s(
        "okta.logonlysecuritydata",
        "debugData.logOnlySecurityData",
        _at(*_DEBUG, "logOnlySecurityData"),
    ),
    _s("okta.actor.id", "actor.id", _at("actor", "id")),
    _s("okta.actor.Type", "actor.type", _at("actor", "type")),
    _s("okta.actor.alternateid", "actor.alternateId", _at("actor", "alternateId")),
    _s("okta.actor.name", "actor.displayName", _at("actor", "displayName")),
    _s("okta.client.zone", "client.zone", _at(*_CLIENT, "zone")),
    _s("okta.client.ip", "client.ipAddress", _at(*_CLIENT, "ipAddress")),
    _s("okta.client.device", "client.device", _at(*_CLIENT, "device")),
    _s("okta.client.id", "client.id", _at(*_CLIENT, "id")),
    _s("okta.client.geo.city", "client geographical city", _at(*_GEO, "city")),
    _s("okta.client.geo.state", "client geographical state", _at(*_GEO, "state")),
    _s("okta.client.geo.country", "client geographical country", _at(*_GEO, "country")),
    _s("okta.client.geo.postalcode", "client postal code", _at(*_GEO, "postalCode")),
    _s("okta.client.geo.lat", "client latitude", _geo("lat")),
    _s("okta.client.geo.lon", "client longitude (read from 'lonDe' upstream)", _geo("lonDe")),
    _s("okta.useragent.os", "client user agent OS", _at(*_UA, "os")),
    _s("okta.useragent.browser", "client user agent browser", _at(*_UA, "browser")),
    _s("okta.useragent.raw", "raw client user agent", _at(*_UA, "rawUserAgent")),
    _s("okta.result", "outcome.result", _at("outcome", "result")),
    _s("okta.reason", "outcome.reason", _at("outcome", "reason")),
    _s("okta.transaction.id", "transaction.id", _at("transaction", "id")),
    _s("okta.transaction.type", "transaction.type", _at("transaction", "type")),
    _s("okta.requesturi", "debugData.requestUri", _at(*_DEBUG, "requestUri")),
    _s("okta.principal.id", "original principal id", _at(*_PRINC, "id")),
    _s("okta.principal.alternateid", "original principal alternateId", _at(*_PRINC, "alternateId")),
    _s("okta.principal.type", "original principal type", _at(*_PRINC, "type")),
    _s("okta.principal.name", "original principal displayName", _at(*_PRINC, "displayName")),
    # upstream passes an int to a string field: the SDK panics, so no value here
    _s("okta.authentication.step", "authentication step (fails upstream; missing)", _missing),
    _s("okta.authentication.sessionid", "external session id", _at(*_AUTH, "externalSessionId")),
    _s(
        "okta.authentication.provider",
        "authentication provider",
        _at(*_AUTH, "authenticationProvider"),
    ),
    _s(
        "okta.authentication.credentialprovider",
        "credential provider",
        _at(*_AUTH, "credentialProvider"),
    ),
    # upstream passes an int to a uint64 field: the SDK panics, so no value here
    field(
        "okta.security.asnumber",
        FieldType.UINT64,
        "autonomous system number (fails upstream; missing)",
        simple(_missing),
    ),
    _s("okta.security.asorg", "autonomous system organization", _at(*_SEC, "asOrg")),
    _s("okta.security.isp", "ISP", _at(*_SEC, "isp")),
    _s("okta.security.domain", "security context domain", _at(*_SEC, "domain")),
    _s("okta.security.isproxy", "isProxy (a string value only)", _at(*_SEC, "isProxy")),
    _s("okta.target.user.id", "id of the (last) User target", _target("User", "id")),
    _s(
        "okta.target.user.alternateid",
        "alternateId of the User target",
        _target("User", "alternateId"),
    ),
    _s("okta.target.user.name", "displayName of the User target", _target("User", "displayName")),
    _s("okta.target.group.id", "id of the UserGroup target", _target("UserGroup", "id")),
    _s(
        "okta.target.group.alternateid",
        "alternateId of the UserGroup target",
        _target("UserGroup", "alternateId"),
    ),
    _s(
        "okta.target.group.name",
        "displayName of the UserGroup target",
        _target("UserGroup", "displayName"),
    ),
    _s(
        "okta.target.app.alternateid",
        "alternateId of the AppInstance target",
        _target("AppInstance", "alternateId"),
    ),
    field(
        "okta.targets.displayName",
        FieldType.CHARBUF,
        "display names of all targets as (a,b,...); [N] selects one",
        _targets_display_names,
        arg=ArgMode.OPTIONAL,
        index_arg=True,
    ),
    # stateful in the plugin (per-actor cache of recent MFA failures/denies): missing here
    field(
        "okta.mfa.failure.countlast",
        FieldType.UINT64,
        "MFA failures of the actor in the last N seconds (stateful; missing here)",
        _missing_maker,
        arg=ArgMode.REQUIRED,
        index_arg=True,
    ),
    field(
        "okta.mfa.deny.countlast",
        FieldType.UINT64,
        "MFA push denies of the actor in the last N seconds (stateful; missing here)",
        _missing_maker,
        arg=ArgMode.REQUIRED,
        index_arg=True,
    ),
)

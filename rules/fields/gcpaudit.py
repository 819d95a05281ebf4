"""Fields of the ``gcp_auditlog`` source, as the Falco ``gcpaudit`` plugin extracts them.

``ev.payload`` is one Cloud Logging ``LogEntry`` of an audit log (``protoPayload`` is an
``AuditLog``). Like upstream (fastjson ``GetStringBytes``), a field is missing when its
key is absent and ``""`` when the key holds anything but a string. That includes
``gcp.authorizationInfo``, ``gcp.request`` and ``gcp.policyDelta``: their values are
JSON objects or arrays in real logs, so upstream returns ``""`` for them (the public rules
print them and test ``gcp.policyDelta contains "ADD"``, which therefore never matches).
``gcp.resourceLabels`` is the one field rendered as JSON text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from falconet.fields import FieldDef, FieldType, field, simple

from .jsonfields import MISSING, cstr, dumps_plain, get_path, string_or_empty

PLUGIN = "gcpaudit"
PLUGIN_VERSIONS: dict[str, str] = {"gcpaudit": "0.8.1"}


def plugin_info(ev: Any) -> str:
    """``evt.plugininfo``: the plugin prints the raw log entry."""
    return cstr(dumps_plain(ev.payload))


def _path(*keys: str) -> Callable[[Any], str | None]:
    def extract(ev: Any) -> str | None:
        return string_or_empty(get_path(ev.payload, keys))

    return extract


def _resource_type(p: Any) -> str:
    v = get_path(p, ("resource", "type"))
    return v if type(v) is str else ""


def _policy_delta(ev: Any) -> str | None:
    p = ev.payload
    if _resource_type(p) == "gcs_bucket":
        keys = ("protoPayload", "serviceData", "policyDelta", "bindingDeltas")
    else:
        keys = ("protoPayload", "metadata", "datasetChange", "bindingDeltas")
    return string_or_empty(get_path(p, keys))


def _location(ev: Any) -> str | None:
    labels = get_path(ev.payload, ("resource", "labels"))
    if type(labels) is not dict:
        return None
    for key in ("location", "region"):
        v = labels.get(key, MISSING)
        if v is not MISSING:
            return string_or_empty(v)
    zone = labels.get("zone")
    if type(zone) is not str or not zone:
        return None
    raw = zone.encode("utf-8", "surrogatepass")
    if len(raw) > 2:  # us-central1-a -> us-central1
        return cstr(raw[:-2].decode("utf-8", "replace"))
    return cstr(zone)


def _logging_sink(ev: Any) -> str | None:
    p = ev.payload
    if _resource_type(p) != "logging_sink":
        return None
    return string_or_empty(get_path(p, ("resource", "labels", "name")))


def _resource_labels(ev: Any) -> str | None:
    v = get_path(ev.payload, ("resource", "labels"))
    return None if v is MISSING else dumps_plain(v)


def _s(name: str, desc: str, fn: Callable[[Any], Any]) -> FieldDef:
    return field(name, FieldType.CHARBUF, desc, simple(fn))


_PP = "protoPayload"
_LABELS = ("resource", "labels")

FIELDS: tuple[FieldDef, ...] = (
    _s(
        "gcp.user",
        "principal email of the caller",
        _path(_PP, "authenticationInfo", "principalEmail"),
    ),
    _s("gcp.callerIP", "caller IP", _path(_PP, "requestMetadata", "callerIp")),
    _s(
        "gcp.userAgent",
        "caller user agent",
        _path(_PP, "requestMetadata", "callerSuppliedUserAgent"),
    ),
    _s(
        "gcp.authorizationInfo",
        "protoPayload.authorizationInfo (string values only)",
        _path(_PP, "authorizationInfo"),
    ),
    _s("gcp.serviceName", "API service name", _path(_PP, "serviceName")),
    _s("gcp.policyDelta", "binding deltas of a policy change (string values only)", _policy_delta),
    _s("gcp.request", "protoPayload.request (string values only)", _path(_PP, "request")),
    _s("gcp.methodName", "API method name", _path(_PP, "methodName")),
    _s(
        "gcp.cloudfunctions.function",
        "Cloud Functions function name",
        _path(*_LABELS, "function_name"),
    ),
    _s("gcp.cloudsql.databaseId", "Cloud SQL database id", _path(*_LABELS, "database_id")),
    _s("gcp.compute.instanceId", "Compute Engine instance id", _path(*_LABELS, "instance_id")),
    _s("gcp.compute.networkId", "network id", _path(*_LABELS, "network_id")),
    _s("gcp.compute.subnetwork", "subnetwork name", _path(*_LABELS, "subnetwork_name")),
    _s("gcp.compute.subnetworkId", "subnetwork id", _path(*_LABELS, "subnetwork_id")),
    _s("gcp.dns.zone", "Cloud DNS zone name", _path(*_LABELS, "zone_name")),
    _s("gcp.iam.serviceAccount", "service account email", _path(*_LABELS, "email_id")),
    _s("gcp.iam.serviceAccountId", "service account unique id", _path(*_LABELS, "unique_id")),
    _s("gcp.location", "location label, else region, else the zone without its suffix", _location),
    _s("gcp.logging.sink", "sink name, for logging_sink resources", _logging_sink),
    _s("gcp.projectId", "project id", _path(*_LABELS, "project_id")),
    _s("gcp.resourceName", "protoPayload.resourceName", _path(_PP, "resourceName")),
    _s("gcp.resourceType", "resource.type", _path("resource", "type")),
    _s("gcp.resourceLabels", "resource.labels as JSON text", _resource_labels),
    _s("gcp.storage.bucket", "Cloud Storage bucket name", _path(*_LABELS, "bucket_name")),
    _s("gcp.time", "timestamp of the log entry (RFC 3339)", _path("timestamp")),
)

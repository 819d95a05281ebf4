"""Fields of the ``aws_cloudtrail`` source, as the Falco ``cloudtrail`` plugin extracts them.

``ev.payload`` is one CloudTrail record (one object of a log file's ``Records`` array).
The plugin reads the record with fastjson; its conventions are kept here:

* a plain string field is **missing** when its key is absent, and ``""`` (present) when
  the key holds anything other than a string (``null``, a number, an object...);
* ``ct.request``, ``ct.response``, ``ct.additionaleventdata`` and ``ct.resources`` are
  compact JSON text of the sub-document;
* ``ct.readonly``, ``ct.managementevent`` and ``ct.sessioncredentialfromconsole`` are
  ``"true"`` only for a JSON ``true`` (a string ``"true"`` gives ``"false"``);
* ``ct.user`` depends on ``userIdentity.type`` (see :func:`_user`).

Known upstream oddities reproduced on purpose: ``ct.request.documentname`` never has a
value (the plugin's switch spells it ``documentName``), and the extra text ``ct.info``
adds for ``PutBucketPublicAccessBlock`` reads the four flags from the record's top level,
so it prints ``false`` for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from falconet.fields import ArgMode, FieldDef, FieldType, field, simple

from .jsonfields import MISSING, cstr, dumps_plain, get_path, parse_index, string_or_empty

PLUGIN = "cloudtrail"
PLUGIN_VERSIONS: dict[str, str] = {"cloudtrail": "0.17.1"}

_SUFFIX = ".amazonaws.com"
_U64 = (1 << 64) - 1

Record = dict[str, Any]


# ---------------------------------------------------------------------------- lookups


def _top(key: str) -> Callable[[Any], str | None]:
    def extract(ev: Any) -> str | None:
        v = ev.payload.get(key, MISSING)
        if v is MISSING:
            return None
        if type(v) is str:
            return cstr(v)
        return ""

    return extract


def _sub(outer: str, key: str) -> Callable[[Any], str | None]:
    def extract(ev: Any) -> str | None:
        o = ev.payload.get(outer)
        if type(o) is not dict:
            return None
        v = o.get(key, MISSING)
        if v is MISSING:
            return None
        if type(v) is str:
            return cstr(v)
        return ""

    return extract


def _json_of(key: str) -> Callable[[Any], str | None]:
    def extract(ev: Any) -> str | None:
        v = ev.payload.get(key, MISSING)
        if v is MISSING:
            return None
        return dumps_plain(v)

    return extract


def _flag(key: str) -> Callable[[Any], str | None]:
    """Present when the key is; ``"true"`` only for a JSON ``true``."""

    def extract(ev: Any) -> str | None:
        v = ev.payload.get(key, MISSING)
        if v is MISSING:
            return None
        return "true" if v is True else "false"

    return extract


def _string_of(rec: Record, key: str) -> str | None:
    """fastjson ``GetStringBytes(key)``: None unless the value is a string."""
    v = rec.get(key)
    return v if type(v) is str else None


# ---------------------------------------------------------------------------- derived fields


def _user_of(rec: Record) -> tuple[bool, str]:
    """The plugin's ``getUser``: (present, value); the value matters for evt.plugininfo."""
    ui = rec.get("userIdentity")
    if type(ui) is not dict:
        return False, ""
    utype = ui.get("type")
    if type(utype) is not str:
        return False, ""
    if utype == "Root" or utype == "IAMUser":
        v = ui.get("userName", MISSING)
    elif utype == "AWSService":
        v = ui.get("invokedBy", MISSING)
    elif utype == "AssumedRole":
        v = get_path(ui, ("sessionContext", "sessionIssuer", "userName"))
        if v is MISSING:
            return True, "AssumedRole"
        return True, cstr(v) if type(v) is str else ""
    elif utype == "AWSAccount" or utype == "FederatedUser":
        return True, utype
    else:
        return False, "<unknown user type>"
    if v is MISSING:
        return False, "<NA>"
    return True, cstr(v) if type(v) is str else ""


def _user(ev: Any) -> str | None:
    present, value = _user_of(ev.payload)
    return value if present else None


def _original_user(ev: Any) -> str | None:
    rec = ev.payload
    ui = rec.get("userIdentity")
    if type(ui) is not dict:
        return None
    if ui.get("type") == "AssumedRole":
        arn = ui.get("arn", MISSING)
        if arn is not MISSING:
            parts = (arn if type(arn) is str else "").split("/")
            if len(parts) == 3:
                return cstr(parts[2])
        principal = ui.get("principalId", MISSING)
        if principal is not MISSING:
            parts = (principal if type(principal) is str else "").split(":")
            if len(parts) == 2:
                return cstr(parts[1])
        return None
    return string_or_empty(ui.get("userName", MISSING))


def _account_id(ev: Any) -> str | None:
    rec = ev.payload
    v = get_path(rec, ("userIdentity", "accountId"))
    if v is MISSING:
        v = rec.get("recipientAccountId", MISSING)
    return string_or_empty(v)


def _shortsrc(ev: Any) -> str | None:
    v = ev.payload.get("eventSource", MISSING)
    if v is MISSING:
        return None
    if type(v) is not str:
        return ""
    if len(v) > len(_SUFFIX) and v.endswith(_SUFFIX):
        v = v[: -len(_SUFFIX)]
    return cstr(v)


def _resources(ev: Any) -> str | None:
    v = ev.payload.get("resources")
    if type(v) is not list or not v:
        return None
    return ",".join(dumps_plain(r) for r in v)


def _s3_uri(ev: Any) -> str | None:
    rp = ev.payload.get("requestParameters")
    if type(rp) is not dict:
        return None
    bucket = rp.get("bucketName")
    key = rp.get("key")
    if type(bucket) is not str or type(key) is not str:
        return None
    return cstr(f"s3://{bucket}/{key}")


def _ec2_name(ev: Any) -> str | None:
    items = get_path(ev.payload, ("requestParameters", "tagSpecificationSet", "items"))
    if type(items) is not list:
        return None
    name = ""
    for item in items:
        if type(item) is not dict or item.get("resourceType") != "instance":
            continue
        tags = item.get("tags")
        if type(tags) is not list:
            continue
        for tag in tags:
            if type(tag) is dict and tag.get("key") == "Name":
                value = tag.get("value")
                name = value if type(value) is str else ""
                break
    return cstr(name) if name else None


def _image_ids(rec: Record, index: int | None) -> tuple[str, ...] | None:
    """The plugin's ``getImageIds``: instancesSet items first, else scalar request ids."""
    rp = rec.get("requestParameters")
    resp = rec.get("responseElements")
    items = get_path(resp, ("instancesSet", "items")) if type(resp) is dict else MISSING
    if items is not MISSING:
        lst = items if type(items) is list else []
        if index is None:
            ids = []
            for item in lst:
                image = item.get("imageId") if type(item) is dict else None
                if type(image) is str and image:
                    ids.append(cstr(image))
            return tuple(ids) or None
        if index >= len(lst):
            return None
        item = lst[index]
        image = item.get("imageId", MISSING) if type(item) is dict else MISSING
        if image is MISSING:
            return None
        return (string_or_empty(image) or "",)
    if index is not None and index != 0:
        return None
    if type(rp) is not dict:
        return None
    for keys in (
        ("imageId",),
        ("DescribeFastLaunchImagesRequest", "ImageId", "content"),
        ("launchSpecification", "imageId"),
    ):
        v = get_path(rp, keys)
        if v is not MISSING:
            return (string_or_empty(v) or "",)
    return None


def _ec2_imageid(ev: Any) -> str | None:
    ids = _image_ids(ev.payload, 0)
    return ids[0] if ids else None


def _make_imageids(arg: str | None) -> Callable[[Any], tuple[str, ...] | None]:
    index = parse_index(arg)

    def extract(ev: Any) -> tuple[str, ...] | None:
        return _image_ids(ev.payload, index)

    return extract


# ---------------------------------------------------------------------------- s3 byte counts


def _u64(v: Any) -> int:
    """The plugin's ``getvalueU64``: integers as is, floats truncated, other types 0."""
    t = type(v)
    if t is int:
        if 0 <= v <= _U64:
            return v
        return int(float(v)) & _U64
    if t is float:
        if v != v or v in (float("inf"), float("-inf")):
            return 0
        return int(v) & _U64
    return 0


def _bytes_of(rec: Record, which: tuple[str, ...]) -> int | None:
    aed = rec.get("additionalEventData")
    if type(aed) is not dict:
        return None
    found = False
    total = 0
    for key in which:
        v = aed.get(key, MISSING)
        if v is not MISSING:
            found = True
            total += _u64(v)
    return total & _U64 if found else None


def _s3_bytes(ev: Any) -> int | None:
    return _bytes_of(ev.payload, ("bytesTransferredIn", "bytesTransferredOut"))


def _s3_bytes_in(ev: Any) -> int | None:
    return _bytes_of(ev.payload, ("bytesTransferredIn",))


def _s3_bytes_out(ev: Any) -> int | None:
    return _bytes_of(ev.payload, ("bytesTransferredOut",))


def _event_name(rec: Record) -> str:
    v = rec.get("eventName")
    return v if type(v) is str else ""


def _cnt_get(ev: Any) -> int | None:
    return 1 if _event_name(ev.payload) == "GetObject" else None


def _cnt_put(ev: Any) -> int | None:
    return 1 if _event_name(ev.payload) == "PutObject" else None


def _cnt_other(ev: Any) -> int | None:
    return None if _event_name(ev.payload) in ("GetObject", "PutObject") else 1


# ---------------------------------------------------------------------------- info


_srcip = _top("sourceIPAddress")
_error = _top("errorCode")
_readonly = _flag("readOnly")
_name = _top("eventName")
_bucket = _sub("requestParameters", "bucketName")
_s3_key = _sub("requestParameters", "key")
_req_host = _sub("requestParameters", "Host")


def _info(ev: Any) -> str:
    """``ct.info``: who, from where, what, plus a detail for S3 and host-based calls."""
    rec = ev.payload
    present, user = _user_of(rec)
    if not present:
        return "<invalid cloudtrail event: userIdentity field missing>"
    srcip = _srcip(ev)
    if srcip is None:
        return "<invalid cloudtrail event: eventSource field missing>"
    err = "!" if _error(ev) is not None else ""
    rw = "→" if _readonly(ev) == "false" else "←"
    name = _name(ev)
    if name is None:
        return "<invalid cloudtrail event: eventName field missing>"
    if user == srcip:
        info = f"{user} {err}{rw} {name}"
    else:
        info = f"{user} via {srcip} {err}{rw} {name}"

    if name == "PutBucketPublicAccessBlock":
        if type(get_path(rec, ("requestParameters", "PublicAccessBlockConfiguration"))) is dict:
            # upstream reads the flags from the record root, not from the configuration
            flags = " ".join(
                f"{k}={'true' if rec.get(k) is True else 'false'}"
                for k in (
                    "BlockPublicAcls",
                    "BlockPublicPolicy",
                    "IgnorePublicAcls",
                    "RestrictPublicBuckets",
                )
            )
            info += f" {flags} "
        return info

    size = _s3_bytes(ev)
    if size is not None:
        info += f" Size={size}"
    for label, extract in (
        ("URI", _s3_uri),
        ("Bucket", _bucket),
        ("Key", _s3_key),
        ("Host", _req_host),
    ):
        value = extract(ev)
        if value is not None:
            return f"{info} {label}={value}"
    return info


def plugin_info(ev: Any) -> str:
    """``evt.plugininfo``: ``<region> <user> <service> <event name> <ct.info>``."""
    rec = ev.payload
    src = _string_of(rec, "eventSource")
    if src is None:
        return "<invalid JSON: event did not contain a source>"
    region = _string_of(rec, "awsRegion")
    if region is None:
        return "<invalid JSON: event did not contain an awsRegion>"
    name = _string_of(rec, "eventName")
    if name is None:
        return "<invalid JSON: event did not contain an eventName>"
    if len(src) > len(_SUFFIX) and src.endswith(_SUFFIX):
        src = src[: -len(_SUFFIX)]
    present, user = _user_of(rec)
    if present and user:
        user = " " + user
    return cstr(f"{region}{user} {src} {name} {_info(ev)}")


def _never(ev: Any) -> None:
    return None


# ---------------------------------------------------------------------------- registry


def _s(name: str, desc: str, fn: Callable[[Any], Any]) -> FieldDef:
    return field(name, FieldType.CHARBUF, desc, simple(fn))


def _u(name: str, desc: str, fn: Callable[[Any], Any]) -> FieldDef:
    return field(name, FieldType.UINT64, desc, simple(fn))


FIELDS: tuple[FieldDef, ...] = (
    _s("ct.id", "eventID of the record", _top("eventID")),
    _s("ct.error", "errorCode; missing when the call succeeded", _error),
    _s("ct.errormessage", "errorMessage; missing when the call succeeded", _top("errorMessage")),
    _s("ct.time", "eventTime as written in the record", _top("eventTime")),
    _s("ct.src", "eventSource, e.g. s3.amazonaws.com", _top("eventSource")),
    _s("ct.shortsrc", "eventSource without the .amazonaws.com suffix", _shortsrc),
    _s("ct.name", "eventName, the API call", _name),
    _s("ct.user", "caller name, derived from the userIdentity type", _user),
    _s(
        "ct.originaluser",
        "caller name as recorded (session name for assumed roles)",
        _original_user,
    ),
    _s("ct.user.accountid", "userIdentity.accountId, else recipientAccountId", _account_id),
    _s(
        "ct.user.identitytype",
        "userIdentity.type (Root, IAMUser, AssumedRole...)",
        _sub("userIdentity", "type"),
    ),
    _s("ct.user.principalid", "userIdentity.principalId", _sub("userIdentity", "principalId")),
    _s("ct.user.arn", "userIdentity.arn", _sub("userIdentity", "arn")),
    _s("ct.region", "awsRegion", _top("awsRegion")),
    _s("ct.response.subnetid", "responseElements.subnetId", _sub("responseElements", "subnetId")),
    _s(
        "ct.response.reservationid",
        "responseElements.reservationId",
        _sub("responseElements", "reservationId"),
    ),
    _s("ct.response", "responseElements as compact JSON", _json_of("responseElements")),
    _s(
        "ct.request.availabilityzone",
        "requestParameters.availabilityZone",
        _sub("requestParameters", "availabilityZone"),
    ),
    _s("ct.request.cluster", "requestParameters.cluster", _sub("requestParameters", "cluster")),
    _s(
        "ct.request.functionname",
        "requestParameters.functionName",
        _sub("requestParameters", "functionName"),
    ),
    _s(
        "ct.request.groupname",
        "requestParameters.groupName",
        _sub("requestParameters", "groupName"),
    ),
    _s("ct.request.host", "requestParameters.Host", _req_host),
    _s("ct.request.name", "requestParameters.name", _sub("requestParameters", "name")),
    _s("ct.request.policy", "requestParameters.policy", _sub("requestParameters", "policy")),
    _s("ct.request.reason", "requestParameters.reason", _sub("requestParameters", "reason")),
    _s("ct.request.target", "requestParameters.target", _sub("requestParameters", "target")),
    # upstream's extractor never matches this name, so it has no value (kept for parity)
    _s("ct.request.documentname", "requestParameters.documentName (never set upstream)", _never),
    _s(
        "ct.request.serialnumber",
        "requestParameters.serialNumber",
        _sub("requestParameters", "serialNumber"),
    ),
    _s(
        "ct.request.servicename",
        "requestParameters.serviceName",
        _sub("requestParameters", "serviceName"),
    ),
    _s("ct.request.subnetid", "requestParameters.subnetId", _sub("requestParameters", "subnetId")),
    _s(
        "ct.request.taskdefinition",
        "requestParameters.taskDefinition",
        _sub("requestParameters", "taskDefinition"),
    ),
    _s("ct.request.username", "requestParameters.userName", _sub("requestParameters", "userName")),
    _s("ct.request", "requestParameters as compact JSON", _json_of("requestParameters")),
    _s("ct.srcip", "sourceIPAddress (an IP or a service name)", _srcip),
    _s("ct.useragent", "userAgent", _top("userAgent")),
    _s("ct.info", "one-line summary: user, source, read/write, call and details", _info),
    _s(
        "ct.managementevent",
        "'true' for a management event, else 'false'",
        _flag("managementEvent"),
    ),
    _s("ct.readonly", "'true' for a read-only call, else 'false'", _readonly),
    _s("ct.requestid", "requestID", _top("requestID")),
    _s("ct.eventtype", "eventType (AwsApiCall, AwsConsoleSignIn...)", _top("eventType")),
    _s("ct.apiversion", "apiVersion", _top("apiVersion")),
    _s("ct.resources", "resources, each as compact JSON, comma separated", _resources),
    _s("ct.recipientaccountid", "recipientAccountId", _top("recipientAccountId")),
    _s(
        "ct.serviceeventdetails",
        "serviceEventDetails (a string value only)",
        _top("serviceEventDetails"),
    ),
    _s("ct.sharedeventid", "sharedEventID", _top("sharedEventID")),
    _s("ct.vpcendpointid", "vpcEndpointId", _top("vpcEndpointId")),
    _s("ct.eventcategory", "eventCategory", _top("eventCategory")),
    _s("ct.addendum.reason", "addendum.reason", _sub("addendum", "reason")),
    _s("ct.addendum.updatedfields", "addendum.updatedFields", _sub("addendum", "updatedFields")),
    _s(
        "ct.addendum.originalrequestid",
        "addendum.originalRequestID",
        _sub("addendum", "originalRequestID"),
    ),
    _s(
        "ct.addendum.originaleventid",
        "addendum.originalEventID",
        _sub("addendum", "originalEventID"),
    ),
    _s(
        "ct.sessioncredentialfromconsole",
        "'true' if the call came from a console session",
        _flag("sessionCredentialFromConsole"),
    ),
    _s(
        "ct.edgedevicedetails", "edgeDeviceDetails (a string value only)", _top("edgeDeviceDetails")
    ),
    _s("ct.tlsdetails.tlsversion", "tlsDetails.tlsVersion", _sub("tlsDetails", "tlsVersion")),
    _s("ct.tlsdetails.ciphersuite", "tlsDetails.cipherSuite", _sub("tlsDetails", "cipherSuite")),
    _s(
        "ct.tlsdetails.clientprovidedhostheader",
        "tlsDetails.clientProvidedHostHeader",
        _sub("tlsDetails", "clientProvidedHostHeader"),
    ),
    _s(
        "ct.additionaleventdata",
        "additionalEventData as compact JSON",
        _json_of("additionalEventData"),
    ),
    _s("s3.uri", "s3://<bucket>/<key> of the request", _s3_uri),
    _s("s3.bucket", "requestParameters.bucketName", _bucket),
    _s("s3.key", "requestParameters.key", _s3_key),
    _u("s3.bytes", "bytes transferred in plus out", _s3_bytes),
    _u("s3.bytes.in", "bytes uploaded", _s3_bytes_in),
    _u("s3.bytes.out", "bytes downloaded", _s3_bytes_out),
    _u("s3.cnt.get", "1 for GetObject, else missing", _cnt_get),
    _u("s3.cnt.put", "1 for PutObject, else missing", _cnt_put),
    _u("s3.cnt.other", "1 for calls other than GetObject/PutObject, else missing", _cnt_other),
    _s("ec2.name", "Name tag of the instance in the request's tag specifications", _ec2_name),
    _s("ec2.imageid", "first image ID involved (deprecated: ec2.imageids[0])", _ec2_imageid),
    field(
        "ec2.imageids",
        FieldType.CHARBUF,
        "image IDs of the instances involved; [N] selects one",
        _make_imageids,
        arg=ArgMode.OPTIONAL,
        index_arg=True,
        is_list=True,
    ),
    _s(
        "ecr.repository",
        "requestParameters.repositoryName",
        _sub("requestParameters", "repositoryName"),
    ),
    _s("ecr.imagetag", "requestParameters.imageTag", _sub("requestParameters", "imageTag")),
    _s("iam.role", "requestParameters.roleName", _sub("requestParameters", "roleName")),
    _s("iam.policy", "requestParameters.policyName", _sub("requestParameters", "policyName")),
)

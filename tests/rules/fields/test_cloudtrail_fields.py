"""aws_cloudtrail fields against a CloudTrail log file, as the cloudtrail plugin extracts them."""

from __future__ import annotations

import copy
import json
import re
from calendar import timegm
from pathlib import Path
from typing import Any

import pytest

from falconet.event import Event
from falconet.fields import ArgMode, FieldArgError, FieldType
from falconet.rules.fields import cloudtrail, registry_for

SOURCE = "aws_cloudtrail"
LOG = (
    Path(__file__).resolve().parents[2]
    / "fixtures"
    / "cloudtrail"
    / "123456789012_CloudTrail_us-east-1_20240301T1020Z_sample.json"
)
RECORDS: list[dict[str, Any]] = json.loads(LOG.read_text())["Records"]
REG = registry_for(SOURCE)

_TS = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z")


def rfc3339_ns(text: str) -> int:
    m = _TS.fullmatch(text)
    assert m, text
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac = (m.group(7) or "").ljust(9, "0")[:9]
    return timegm((y, mo, d, h, mi, s)) * 1_000_000_000 + int(frac)


def ev(record: dict[str, Any], num: int = 1) -> Event:
    return Event(
        source=SOURCE,
        type=record.get("eventName", ""),
        ts=rfc3339_ns(record["eventTime"]),
        host="",
        id=record.get("eventID", ""),
        payload=record,
        num=num,
    )


def rec(name: str, nth: int = 0) -> dict[str, Any]:
    return [r for r in RECORDS if r["eventName"] == name][nth]


def x(name: str, record: dict[str, Any], arg: str | None = None) -> Any:
    return REG.bind(name, arg).extract(ev(record))


def edited(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(record)
    for key, value in changes.items():
        if value is DELETE:
            out.pop(key, None)
        else:
            out[key] = value
    return out


DELETE = object()
ALICE_LOGIN = rec("ConsoleLogin", 0)
ROOT_LOGIN = rec("ConsoleLogin", 1)
STOP = rec("StopLogging")
KEY = rec("CreateAccessKey")
DEL_PAB = rec("DeleteBucketPublicAccessBlock")
PUT_PAB = rec("PutBucketPublicAccessBlock")
RUN = rec("RunInstances")
SERVICE = rec("AssumeRole")
DENIED = rec("CreateUser")
ROOT_MFA = rec("DeactivateMFADevice")
GET = rec("GetObject")


def test_plugin_metadata() -> None:
    assert cloudtrail.PLUGIN == "cloudtrail"
    assert cloudtrail.PLUGIN_VERSIONS == {"cloudtrail": "0.17.1"}
    assert x("evt.pluginname", STOP) == "cloudtrail"


def test_every_upstream_field_is_defined_with_its_type() -> None:
    names = [f.name for f in cloudtrail.FIELDS]
    assert len(names) == 73 and len(set(names)) == 73
    u64 = {f.name for f in cloudtrail.FIELDS if f.type is FieldType.UINT64}
    assert u64 == {"s3.bytes", "s3.bytes.in", "s3.bytes.out", "s3.cnt.get", "s3.cnt.put",
                   "s3.cnt.other"}  # fmt: skip
    lists = [f for f in cloudtrail.FIELDS if f.is_list]
    assert [f.name for f in lists] == ["ec2.imageids"]
    assert lists[0].arg is ArgMode.OPTIONAL and lists[0].index_arg
    assert all(f.arg is ArgMode.NONE for f in cloudtrail.FIELDS if f.name != "ec2.imageids")


# ---------------------------------------------------------------------------- plain strings


def test_basic_record_fields() -> None:
    assert x("ct.name", ALICE_LOGIN) == "ConsoleLogin"
    assert x("ct.src", ALICE_LOGIN) == "signin.amazonaws.com"
    assert x("ct.shortsrc", ALICE_LOGIN) == "signin"
    assert x("ct.region", ALICE_LOGIN) == "us-east-1"
    assert x("ct.id", ALICE_LOGIN) == "3f8a2c1e-0b7d-4a52-9c61-1d2e3f4a5b6c"
    assert x("ct.srcip", ALICE_LOGIN) == "203.0.113.10"
    assert x("ct.useragent", SERVICE) == "ec2.amazonaws.com"
    assert x("ct.time", ALICE_LOGIN) == "2024-03-01T10:15:30Z"
    assert x("ct.eventtype", ALICE_LOGIN) == "AwsConsoleSignIn"
    assert x("ct.requestid", STOP) == "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
    assert x("ct.recipientaccountid", STOP) == "123456789012"
    assert x("ct.eventcategory", GET) == "Data"
    assert x("ct.sharedeventid", SERVICE) == "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
    assert x("ct.apiversion", STOP) is None
    assert x("ct.vpcendpointid", STOP) is None
    assert x("ct.tlsdetails.tlsversion", ALICE_LOGIN) == "TLSv1.3"
    assert x("ct.tlsdetails.ciphersuite", ALICE_LOGIN) == "TLS_AES_128_GCM_SHA256"
    assert x("ct.tlsdetails.clientprovidedhostheader", ALICE_LOGIN) == "signin.aws.amazon.com"
    assert x("ct.tlsdetails.tlsversion", KEY) is None


def test_error_fields() -> None:
    # `not ct.error exists` is in 21 rules: no errorCode key -> missing
    assert x("ct.error", ALICE_LOGIN) is None
    assert x("ct.errormessage", ALICE_LOGIN) is None
    assert x("ct.error", DENIED) == "AccessDenied"
    assert x("ct.errormessage", DENIED).startswith("User: arn:aws:iam::123456789012:user/mallory")


@pytest.mark.parametrize("value", [None, 0, {}, [], True])
def test_non_string_value_is_present_and_empty(value: Any) -> None:
    record = edited(STOP, errorCode=value, awsRegion=value)
    assert x("ct.error", record) == ""
    assert x("ct.region", record) == ""


def test_shortsrc() -> None:
    assert x("ct.shortsrc", STOP) == "cloudtrail"
    assert x("ct.shortsrc", edited(STOP, eventSource="custom.example")) == "custom.example"
    assert x("ct.shortsrc", edited(STOP, eventSource=".amazonaws.com")) == ".amazonaws.com"
    assert x("ct.shortsrc", edited(STOP, eventSource=7)) == ""
    assert x("ct.shortsrc", edited(STOP, eventSource=DELETE)) is None


def test_request_and_response_fields() -> None:
    assert x("ct.request.username", KEY) == "bob"
    assert x("ct.request.username", ROOT_MFA) == "AWS ROOT USER"
    assert x("ct.request.serialnumber", ROOT_MFA) == (
        "arn:aws:iam::123456789012:mfa/root-account-mfa-device"
    )
    assert x("ct.request.name", STOP) == (
        "arn:aws:cloudtrail:us-east-1:123456789012:trail/management-events"
    )
    assert x("ct.request.availabilityzone", RUN) == "eu-west-3a"
    assert x("ct.request.subnetid", RUN) == "subnet-0123456789abcdef0"
    assert x("ct.response.subnetid", RUN) == "subnet-0123456789abcdef0"
    assert x("ct.response.reservationid", RUN) == "r-0fedcba9876543210"
    assert x("ct.request.host", GET) == "corp-data.s3.us-east-1.amazonaws.com"
    # requestParameters is null on a console login: every ct.request.* is missing
    for name in ("ct.request.username", "ct.request.name", "ct.request.host"):
        assert x(name, ALICE_LOGIN) is None
    # ... but the whole-object fields render the JSON null
    assert x("ct.request", ALICE_LOGIN) == "null"
    assert x("ct.response", STOP) == "null"
    assert x("ct.request", KEY) == '{"userName":"bob"}'
    assert x("ct.response", ALICE_LOGIN) == '{"ConsoleLogin":"Success"}'
    assert x("ct.additionaleventdata", SERVICE) is None
    assert x("ct.additionaleventdata", ALICE_LOGIN).endswith('"MobileVersion":"No","MFAUsed":"No"}')


def test_request_fields_not_in_the_fixtures() -> None:
    record = edited(
        STOP,
        requestParameters={
            "cluster": "prod",
            "functionName": "exfil",
            "groupName": "admins",
            "policy": '{"Version":"2012-10-17"}',
            "reason": "r",
            "target": "t",
            "documentName": "AWS-RunShellScript",
            "serviceName": "web",
            "taskDefinition": "web:3",
            "repositoryName": "app",
            "imageTag": "v1",
            "roleName": "Admin",
            "policyName": "AllowAll",
        },
    )
    assert x("ct.request.cluster", record) == "prod"
    assert x("ct.request.functionname", record) == "exfil"
    assert x("ct.request.groupname", record) == "admins"
    assert x("ct.request.policy", record) == '{"Version":"2012-10-17"}'
    assert x("ct.request.reason", record) == "r"
    assert x("ct.request.target", record) == "t"
    assert x("ct.request.servicename", record) == "web"
    assert x("ct.request.taskdefinition", record) == "web:3"
    assert x("ecr.repository", record) == "app"
    assert x("ecr.imagetag", record) == "v1"
    assert x("iam.role", record) == "Admin"
    assert x("iam.policy", record) == "AllowAll"
    # upstream's switch spells this one documentName: it never has a value
    assert x("ct.request.documentname", record) is None


def test_addendum_and_edge_fields() -> None:
    record = edited(
        STOP,
        addendum={
            "reason": "DELIVERY_DELAY",
            "updatedFields": "",
            "originalRequestID": "orq",
            "originalEventID": "oev",
        },
        edgeDeviceDetails={"type": "SnowballEdge"},
        serviceEventDetails="details",
    )
    assert x("ct.addendum.reason", record) == "DELIVERY_DELAY"
    assert x("ct.addendum.updatedfields", record) == ""
    assert x("ct.addendum.originalrequestid", record) == "orq"
    assert x("ct.addendum.originaleventid", record) == "oev"
    assert x("ct.edgedevicedetails", record) == ""  # an object: present, ""
    assert x("ct.serviceeventdetails", record) == "details"
    assert x("ct.addendum.reason", STOP) is None


# ---------------------------------------------------------------------------- identities


def test_user_by_identity_type() -> None:
    assert x("ct.user", ALICE_LOGIN) == "alice"  # IAMUser -> userName
    assert x("ct.user", ROOT_MFA) == "corp-root"  # Root -> userName
    assert x("ct.user", ROOT_LOGIN) is None  # Root without userName -> missing
    assert x("ct.user", STOP) == "OpsAdmin"  # AssumedRole -> sessionIssuer.userName
    assert x("ct.user", SERVICE) == "ec2.amazonaws.com"  # AWSService -> invokedBy


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        ({"type": "AWSAccount", "accountId": "111122223333"}, "AWSAccount"),
        ({"type": "FederatedUser", "userName": "x"}, "FederatedUser"),
        ({"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/R/s"}, "AssumedRole"),
        ({"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"userName": 5}}}, ""),
        ({"type": "IAMUser", "userName": None}, ""),
        ({"type": "IAMUser"}, None),
        ({"type": "AWSService"}, None),
        ({"type": "IdentityCenterUser", "userName": "x"}, None),
        ({"type": "SAMLUser", "userName": "x"}, None),
        ({"userName": "no-type"}, None),
        ({"type": 3, "userName": "x"}, None),
    ],
)
def test_user_derivation(identity: dict[str, Any], expected: str | None) -> None:
    assert x("ct.user", edited(STOP, userIdentity=identity)) == expected


def test_user_without_identity() -> None:
    assert x("ct.user", edited(STOP, userIdentity=DELETE)) is None
    assert x("ct.user.identitytype", edited(STOP, userIdentity=DELETE)) is None


def test_identity_fields() -> None:
    assert x("ct.user.identitytype", STOP) == "AssumedRole"
    assert x("ct.user.identitytype", ROOT_LOGIN) == "Root"
    assert x("ct.user.arn", STOP) == "arn:aws:sts::123456789012:assumed-role/OpsAdmin/bob-session"
    assert x("ct.user.principalid", STOP) == "AROA2EXAMPLEOPSADMIN:bob-session"
    assert x("ct.user.accountid", STOP) == "123456789012"
    assert x("ct.user.principalid", SERVICE) is None
    # no userIdentity.accountId: falls back to recipientAccountId
    assert x("ct.user.accountid", SERVICE) == "123456789012"
    assert x("ct.user.accountid", edited(SERVICE, recipientAccountId=DELETE)) is None


def test_original_user() -> None:
    assert x("ct.originaluser", STOP) == "bob-session"  # from the arn
    assert x("ct.originaluser", ALICE_LOGIN) == "alice"
    assert x("ct.originaluser", ROOT_LOGIN) is None
    odd = {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/R", "principalId": "AROA:s2"}
    assert x("ct.originaluser", edited(STOP, userIdentity=odd)) == "s2"  # principalId fallback
    odd = {"type": "AssumedRole", "arn": "a/b", "principalId": "AROA:s:x"}
    assert x("ct.originaluser", edited(STOP, userIdentity=odd)) is None


# ---------------------------------------------------------------------------- booleans


def test_boolean_fields() -> None:
    assert x("ct.readonly", ALICE_LOGIN) == "false"
    assert x("ct.readonly", SERVICE) == "true"
    assert x("ct.readonly", edited(STOP, readOnly=DELETE)) is None
    assert x("ct.readonly", edited(STOP, readOnly="true")) == "false"  # only JSON true counts
    assert x("ct.managementevent", STOP) == "true"
    assert x("ct.managementevent", GET) == "false"
    assert x("ct.managementevent", edited(STOP, managementEvent=DELETE)) is None
    assert x("ct.sessioncredentialfromconsole", STOP) is None
    # CloudTrail writes this flag as the string "true": upstream reads it as false
    assert x("ct.sessioncredentialfromconsole", ROOT_MFA) == "false"
    assert x(
        "ct.sessioncredentialfromconsole", edited(STOP, sessionCredentialFromConsole=True)
    ) == ("true")


def test_resources() -> None:
    assert x("ct.resources", SERVICE) == (
        '{"accountId":"123456789012","type":"AWS::IAM::Role",'
        '"ARN":"arn:aws:iam::123456789012:role/WebInstanceRole"}'
    )
    assert x("ct.resources", GET).count('},{"accountId"') == 1
    assert x("ct.resources", STOP) is None
    assert x("ct.resources", edited(STOP, resources=[])) is None
    assert x("ct.resources", edited(STOP, resources={"a": 1})) is None
    assert x("ct.resources", edited(STOP, resources=["a", 1])) == '"a",1'


# ---------------------------------------------------------------------------- s3 / ec2


def test_s3_fields() -> None:
    assert x("s3.bucket", GET) == "corp-data"
    assert x("s3.key", GET) == "reports/2024/q1 summary.csv"
    assert x("s3.uri", GET) == "s3://corp-data/reports/2024/q1 summary.csv"
    assert x("s3.bucket", DEL_PAB) == "corp-data"
    assert x("s3.key", DEL_PAB) is None
    assert x("s3.uri", DEL_PAB) is None  # needs both bucket and key
    assert x("s3.bucket", STOP) is None
    # floats are truncated, missing keys do not count
    assert x("s3.bytes", GET) == 1048576
    assert x("s3.bytes.in", GET) == 0
    assert x("s3.bytes.out", GET) == 1048576
    assert x("s3.bytes", PUT_PAB) == 221
    assert x("s3.bytes", STOP) is None
    only_in = edited(GET, additionalEventData={"bytesTransferredIn": 12.9})
    assert x("s3.bytes", only_in) == 12
    assert x("s3.bytes.out", only_in) is None
    assert x("s3.bytes", edited(GET, additionalEventData={"bytesTransferredIn": "12"})) == 0


def test_s3_counters() -> None:
    assert x("s3.cnt.get", GET) == 1
    assert x("s3.cnt.put", GET) is None
    assert x("s3.cnt.other", GET) is None
    put = edited(GET, eventName="PutObject")
    assert (x("s3.cnt.get", put), x("s3.cnt.put", put), x("s3.cnt.other", put)) == (None, 1, None)
    assert (x("s3.cnt.get", STOP), x("s3.cnt.put", STOP), x("s3.cnt.other", STOP)) == (
        None,
        None,
        1,
    )


def test_ec2_fields() -> None:
    assert x("ec2.name", RUN) == "web-1"  # the instance tag, not the volume's
    assert x("ec2.imageid", RUN) == "ami-0a1b2c3d4e5f60718"
    assert x("ec2.imageids", RUN) == ("ami-0a1b2c3d4e5f60718", "ami-0a1b2c3d4e5f60718")
    assert x("ec2.imageids", RUN, "1") == ("ami-0a1b2c3d4e5f60718",)
    assert x("ec2.imageids", RUN, "2") is None
    assert x("ec2.name", STOP) is None
    assert x("ec2.imageids", STOP) is None
    assert x("ec2.imageid", STOP) is None


def test_ec2_imageids_scalar_sources() -> None:
    described = edited(STOP, requestParameters={"imageId": "ami-1"}, responseElements=None)
    assert x("ec2.imageids", described) == ("ami-1",)
    assert x("ec2.imageids", described, "0") == ("ami-1",)
    assert x("ec2.imageids", described, "1") is None
    assert x("ec2.imageid", described) == "ami-1"
    fast = edited(
        STOP,
        requestParameters={"DescribeFastLaunchImagesRequest": {"ImageId": {"content": "ami-2"}}},
    )
    assert x("ec2.imageids", fast) == ("ami-2",)
    spot = edited(STOP, requestParameters={"launchSpecification": {"imageId": "ami-3"}})
    assert x("ec2.imageids", spot) == ("ami-3",)


def test_ec2_imageids_instances_set_wins() -> None:
    # once responseElements.instancesSet.items exists, the request is not consulted
    record = edited(
        RUN,
        requestParameters={"imageId": "ami-req"},
        responseElements={"instancesSet": {"items": [{"instanceId": "i-1"}, {"imageId": ""}]}},
    )
    assert x("ec2.imageids", record) is None  # empty ids are skipped
    assert x("ec2.imageids", record, "0") is None  # no imageId key
    assert x("ec2.imageids", record, "1") == ("",)


def test_ec2_name_last_instance_spec_wins() -> None:
    spec = {
        "items": [
            {"resourceType": "instance", "tags": [{"key": "Name", "value": "first"}]},
            {"resourceType": "instance", "tags": [{"key": "env", "value": "prod"}]},
            {"resourceType": "instance", "tags": [{"key": "Name", "value": "last"}]},
        ]
    }
    assert x("ec2.name", edited(RUN, requestParameters={"tagSpecificationSet": spec})) == "last"


@pytest.mark.parametrize("arg", ["01", "-1", "x", "1.0", "", "١"])
def test_index_argument_is_validated(arg: str) -> None:
    with pytest.raises(FieldArgError):
        REG.bind("ec2.imageids", arg)


# ---------------------------------------------------------------------------- info


def test_info() -> None:
    assert x("ct.info", ALICE_LOGIN) == "alice via 203.0.113.10 → ConsoleLogin"
    assert x("ct.info", SERVICE) == "ec2.amazonaws.com ← AssumeRole"  # user == source
    assert x("ct.info", DENIED) == "mallory via 198.51.100.99 !→ CreateUser"
    assert x("ct.info", STOP) == "OpsAdmin via 192.0.2.44 → StopLogging"
    assert x("ct.info", GET) == (
        "Analyst via 192.0.2.15 ← GetObject Size=1048576 URI=s3://corp-data/reports/2024/q1 summary.csv"
    )
    assert x("ct.info", DEL_PAB) == (
        "alice via 203.0.113.10 → DeleteBucketPublicAccessBlock Size=0 Bucket=corp-data"
    )
    # upstream reads the four flags from the record root: always false
    assert x("ct.info", PUT_PAB) == (
        "alice via 203.0.113.10 → PutBucketPublicAccessBlock BlockPublicAcls=false "
        "BlockPublicPolicy=false IgnorePublicAcls=false RestrictPublicBuckets=false "
    )
    host_only = edited(STOP, requestParameters={"Host": "example.s3.amazonaws.com"})
    assert (
        x("ct.info", host_only)
        == "OpsAdmin via 192.0.2.44 → StopLogging Host=example.s3.amazonaws.com"
    )
    assert x("ct.info", ROOT_LOGIN) == "<invalid cloudtrail event: userIdentity field missing>"
    assert x("ct.info", edited(STOP, sourceIPAddress=DELETE)) == (
        "<invalid cloudtrail event: eventSource field missing>"
    )
    assert x("ct.info", edited(STOP, eventName=DELETE)) == (
        "<invalid cloudtrail event: eventName field missing>"
    )
    assert x("ct.info", edited(STOP, readOnly=DELETE)) == "OpsAdmin via 192.0.2.44 ← StopLogging"


def test_plugininfo() -> None:
    assert x("evt.plugininfo", ALICE_LOGIN) == (
        "us-east-1 alice signin ConsoleLogin alice via 203.0.113.10 → ConsoleLogin"
    )
    assert x("evt.plugininfo", SERVICE) == (
        "eu-west-3 ec2.amazonaws.com sts AssumeRole ec2.amazonaws.com ← AssumeRole"
    )
    # getUser's "<NA>" leaks into the summary when a Root record has no userName
    assert x("evt.plugininfo", ROOT_LOGIN) == (
        "us-east-1<NA> signin ConsoleLogin <invalid cloudtrail event: userIdentity field missing>"
    )
    odd = edited(STOP, userIdentity={"type": "SAMLUser"})
    assert x("evt.plugininfo", odd).startswith(
        "us-east-1<unknown user type> cloudtrail StopLogging"
    )
    assert x("evt.plugininfo", edited(STOP, eventSource=DELETE)) == (
        "<invalid JSON: event did not contain a source>"
    )
    assert x("evt.plugininfo", edited(STOP, awsRegion=1)) == (
        "<invalid JSON: event did not contain an awsRegion>"
    )
    assert x("evt.plugininfo", edited(STOP, eventName=None)) == (
        "<invalid JSON: event did not contain an eventName>"
    )


# ---------------------------------------------------------------------------- rules' view


def test_json_value_pointers_used_by_the_rules() -> None:
    assert x("json.value", ALICE_LOGIN, "/responseElements/ConsoleLogin") == "Success"
    assert x("json.value", ALICE_LOGIN, "/additionalEventData/MFAUsed") == "No"
    assert x("json.value", ALICE_LOGIN, "/requestParameters/publicAccessBlock") is None
    assert x("json.value", PUT_PAB, "/requestParameters/publicAccessBlock") == ""
    assert x("json.value", DEL_PAB, "/requestParameters/publicAccessBlock") == ""
    for flag in (
        "RestrictPublicBuckets",
        "BlockPublicPolicy",
        "BlockPublicAcls",
        "IgnorePublicAcls",
    ):
        pointer = f"/requestParameters/PublicAccessBlockConfiguration/{flag}"
        assert x("json.value", PUT_PAB, pointer) == "false"
        assert x("json.value", DEL_PAB, pointer) is None
    assert x("json.value", RUN, "/responseElements/instancesSet/items/0/instanceId") == (
        "i-0aaaaaaaaaaaaaaa1"
    )
    assert x("json.value", RUN, "/responseElements/instancesSet/items/1/imageId") == (
        "ami-0a1b2c3d4e5f60718"
    )
    assert x("json.value", RUN, "/requestParameters/instancesSet/items/0/minCount") == "2"


def test_console_login_rules_see_expected_values() -> None:
    """The values behind `Console Login Without MFA` / `Console Root Login Without MFA`."""

    def without_mfa(record: dict[str, Any]) -> bool:
        return (
            x("ct.name", record) == "ConsoleLogin"
            and x("ct.error", record) is None
            and x("ct.user.identitytype", record) not in (None, "AssumedRole")
            and x("json.value", record, "/responseElements/ConsoleLogin") == "Success"
            and x("json.value", record, "/additionalEventData/MFAUsed") == "No"
        )

    assert without_mfa(ALICE_LOGIN)
    assert without_mfa(ROOT_LOGIN) and x("ct.user.identitytype", ROOT_LOGIN) == "Root"
    with_mfa = edited(ALICE_LOGIN, additionalEventData={"MFAUsed": "Yes"})
    assert not without_mfa(with_mfa)
    failed = edited(
        ALICE_LOGIN, errorCode="Failed authentication", responseElements={"ConsoleLogin": "Failure"}
    )
    assert not without_mfa(failed)


def test_evt_fields() -> None:
    e = ev(STOP, num=3)
    assert REG.bind("evt.num").extract(e) == 3
    assert REG.bind("evt.time.iso8601").extract(e) == "2024-03-01T10:17:45.000000000+0000"
    assert REG.bind("evt.source").extract(e) == "aws_cloudtrail"


def test_every_record_extracts_every_field() -> None:
    """No field raises on any fixture record (values are checked above)."""
    for i, record in enumerate(RECORDS, 1):
        e = ev(record, i)
        for f in cloudtrail.FIELDS:
            value = f.bind("0" if f.arg is ArgMode.REQUIRED else None).extract(e)
            assert value is None or isinstance(value, str | int | tuple)

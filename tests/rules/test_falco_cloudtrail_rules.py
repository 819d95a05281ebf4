"""End-to-end fidelity of the public CloudTrail rules (falcosecurity/plugins
``plugins/cloudtrail/rules/aws_cloudtrail_rules.yaml``, 22 rules, 2 disabled).

Every enabled rule gets a realistic CloudTrail record (the shapes AWS writes: userIdentity
types, requestParameters/responseElements, additionalEventData.MFAUsed, errorCode on
failures) and a near-miss. All rules share one bucket (plugin events), so with Falco's
default ``rule_matching: first`` only the earliest matching rule in file order fires
(falco-language.md §3.14). Field mapping: §4.5 and the cloudtrail plugin's extract.go.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from falconet.event import Event
from falconet.inputs import RecordDecoder
from falconet.rules.engine import Engine, EngineConfig
from falconet.run import run_files

CLOUDTRAIL = "falco/falcosecurity-plugins/plugins/cloudtrail/rules/aws_cloudtrail_rules.yaml"


def _engine(corpus: Path, matching: str, *extra: str) -> Engine:
    e = Engine(EngineConfig(rule_matching=matching))
    files = [("aws_cloudtrail_rules.yaml", (corpus / CLOUDTRAIL).read_text())]
    files += [(f"custom{i}.yaml", text) for i, text in enumerate(extra)]
    res = e.load_texts(files)
    assert res.ok, "\n".join(m.format() for m in res.messages)
    return e


@pytest.fixture(scope="module")
def all_engine(corpus: Path) -> Engine:
    return _engine(corpus, "all")


@pytest.fixture(scope="module")
def first_engine(corpus: Path) -> Engine:
    return _engine(corpus, "first")


# -- records ------------------------------------------------------------------------------------

ACCOUNT = "123456789012"
_nums = itertools.count(1)
_decoder = RecordDecoder(host="ct-collector")

ALICE = {"type": "IAMUser", "principalId": "AIDA2EXAMPLEALICE001",
         "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accountId": ACCOUNT,
         "accessKeyId": "AKIA2EXAMPLEALICE001", "userName": "alice"}  # fmt: skip
ROOT = {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT, "accessKeyId": ""}  # fmt: skip
DEPLOYER = {
    "type": "AssumedRole", "principalId": "AROA2EXAMPLEDEPLOYER:ci-run-4711",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/ci-run-4711", "accountId": ACCOUNT,
    "accessKeyId": "ASIA2EXAMPLEKEY00002",
    "sessionContext": {
        "sessionIssuer": {"type": "Role", "principalId": "AROA2EXAMPLEDEPLOYER",
                          "arn": f"arn:aws:iam::{ACCOUNT}:role/Deployer", "accountId": ACCOUNT,
                          "userName": "Deployer"},
        "webIdFederationData": {},
        "attributes": {"creationDate": "2024-03-01T09:58:11Z", "mfaAuthenticated": "false"},
    },
}  # fmt: skip
SSO_ADMIN = {  # IAM Identity Center (SSO) session: the console login is an AssumedRole
    "type": "AssumedRole",
    "principalId": "AROA2EXAMPLESSOADMIN:carol@example.com",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_AdministratorAccess_0a1b2c3d/carol@example.com",
    "accountId": ACCOUNT,
    "sessionContext": {
        "sessionIssuer": {"type": "Role", "principalId": "AROA2EXAMPLESSOADMIN",
                          "arn": f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_AdministratorAccess_0a1b2c3d",
                          "accountId": ACCOUNT,
                          "userName": "AWSReservedSSO_AdministratorAccess_0a1b2c3d"},
        "attributes": {"creationDate": "2024-03-01T10:00:00Z", "mfaAuthenticated": "false"},
    },
}  # fmt: skip
ECS_SERVICE = {"type": "AWSService", "invokedBy": "ecs.amazonaws.com"}


def record(event_name: str, source: str, identity: dict[str, Any], *,
           request: dict[str, Any] | None = None, response: dict[str, Any] | None = None,
           region: str = "us-east-1", ip: str = "203.0.113.10", error: str | None = None,
           event_type: str = "AwsApiCall", **extra: Any) -> dict[str, Any]:  # fmt: skip
    n = next(_nums)
    rec: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": copy.deepcopy(identity),
        "eventTime": f"2024-03-01T10:{n % 60:02d}:{(n * 7) % 60:02d}Z",
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.15.20 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22 prompt/off",
    }
    if error is not None:
        rec["errorCode"] = error
        rec["errorMessage"] = f"{error}: the request was not performed"
    rec["requestParameters"] = request
    rec["responseElements"] = response
    rec.update(extra)
    rec.update({
        "requestID": f"6f1e2d3c-4b5a-4968-8776-{n:012d}",
        "eventID": f"9a8b7c6d-5e4f-4a3b-2c1d-{n:012d}",
        "readOnly": False,
        "eventType": event_type,
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    })  # fmt: skip
    return rec


def to_event(rec: dict[str, Any]) -> Event:
    ev = _decoder.cloudtrail(rec, {"bucket": "corp-cloudtrail", "key": "AWSLogs/sample.json.gz"})
    ev.num = next(_nums)  # evt.num, >= 1 like Falco's
    return ev


def console_login(identity: dict[str, Any], *, mfa: str = "No", result: str = "Success",
                  **kw: Any) -> dict[str, Any]:  # fmt: skip
    extra: dict[str, Any] = {}
    if result == "Failure":
        # a failed console sign-in has no errorCode, only errorMessage and the response
        extra["errorMessage"] = "Failed authentication"
    return record(
        "ConsoleLogin", "signin.amazonaws.com", identity, event_type="AwsConsoleSignIn",
        response={"ConsoleLogin": result},
        additionalEventData={"LoginTo": "https://console.aws.amazon.com/console/home",
                             "MobileVersion": "No", "MFAUsed": mfa},
        ip="198.51.100.7", **extra, **kw,
    )  # fmt: skip


def deactivate_mfa(identity: dict[str, Any], user: str) -> dict[str, Any]:
    serial = (f"arn:aws:iam::{ACCOUNT}:mfa/root-account-mfa-device" if user == "AWS ROOT USER"
              else f"arn:aws:iam::{ACCOUNT}:mfa/{user}")  # fmt: skip
    return record("DeactivateMFADevice", "iam.amazonaws.com", identity, ip="198.51.100.7",
                  request={"userName": user, "serialNumber": serial}, userAgent="AWS Internal")


def create_user(**kw: Any) -> dict[str, Any]:
    return record("CreateUser", "iam.amazonaws.com", ALICE, request={"userName": "svc-backup"},
                  response=None if kw.get("error") else {
                      "user": {"path": "/", "userName": "svc-backup", "userId": "AIDA2EXAMPLEBACKUP01",
                               "arn": f"arn:aws:iam::{ACCOUNT}:user/svc-backup",
                               "createDate": "Mar 1, 2024 10:25:13 AM"}},
                  **kw)  # fmt: skip


def group(event_name: str, **kw: Any) -> dict[str, Any]:
    return record(event_name, "iam.amazonaws.com", ALICE, request={"groupName": "break-glass"}, **kw)


def ecs(event_name: str, source: str = "ecs.amazonaws.com", **kw: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"cluster": "prod", "taskDefinition": "web:42"}
    if event_name == "CreateService":
        request.update({"serviceName": "web", "desiredCount": 3, "launchType": "FARGATE"})
    elif event_name in ("RunTask", "StartTask"):
        request.update({"count": 1, "launchType": "FARGATE", "startedBy": "ecs-cli"})
    return record(event_name, source, DEPLOYER, request=request, region="eu-west-3",
                  ip="192.0.2.80", **kw)  # fmt: skip


def lambda_call(event_name: str, **kw: Any) -> dict[str, Any]:
    request = {"functionName": "billing-export", "runtime": "python3.12",
               "role": f"arn:aws:iam::{ACCOUNT}:role/lambda-billing", "handler": "app.handler"}
    return record(event_name, "lambda.amazonaws.com", DEPLOYER, request=request, **kw)


def run_instances(region: str = "eu-west-3", **kw: Any) -> dict[str, Any]:
    return record(
        "RunInstances", "ec2.amazonaws.com", DEPLOYER, region=region, ip="192.0.2.80",
        request={"instancesSet": {"items": [{"imageId": "ami-0a1b2c3d4e5f60718", "minCount": 1,
                                             "maxCount": 1}]},
                 "instanceType": "c5.4xlarge", "availabilityZone": f"{region}a",
                 "subnetId": "subnet-0123456789abcdef0"},
        response=None if kw.get("error") else {
            "requestId": "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a", "reservationId": "r-0fedcba9876543210",
            "ownerId": ACCOUNT, "instancesSet": {"items": [{"instanceId": "i-0aaaaaaaaaaaaaaa1",
                                                            "imageId": "ami-0a1b2c3d4e5f60718"}]},
            "subnetId": "subnet-0123456789abcdef0"},
        **kw,
    )  # fmt: skip


def s3(event_name: str, request: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    req = {"bucketName": "corp-data", "Host": "corp-data.s3.us-east-1.amazonaws.com"}
    req.update(request or {})
    return record(event_name, "s3.amazonaws.com", ALICE, request=req,
                  additionalEventData={"SignatureVersion": "SigV4", "bytesTransferredIn": 0,
                                       "AuthenticationMethod": "AuthHeader"},
                  **kw)  # fmt: skip


def public_access_block(value: bool) -> dict[str, Any]:
    # `aws s3api put-public-access-block`: CloudTrail records publicAccessBlock as ""
    cfg = {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/", "RestrictPublicBuckets": value,
           "BlockPublicPolicy": value, "BlockPublicAcls": value, "IgnorePublicAcls": value}
    return s3("PutBucketPublicAccessBlock",
              {"publicAccessBlock": "", "PublicAccessBlockConfiguration": cfg})


def partially_open_access_block() -> dict[str, Any]:
    cfg = {"RestrictPublicBuckets": True, "BlockPublicPolicy": False, "BlockPublicAcls": True,
           "IgnorePublicAcls": True}
    return s3("PutBucketPublicAccessBlock",
              {"publicAccessBlock": "", "PublicAccessBlockConfiguration": cfg})


def put_bucket_policy(**kw: Any) -> dict[str, Any]:
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::corp-data/*"}]}  # fmt: skip
    # as AWS logs it: the policy document under bucketPolicy, and "policy": [""]
    return s3("PutBucketPolicy", {"bucketPolicy": policy, "policy": [""]}, **kw)


def trail(event_name: str, **kw: Any) -> dict[str, Any]:
    arn = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/management-events"
    request: dict[str, Any] = {"name": arn if event_name != "CreateTrail" else "shadow-trail"}
    if event_name == "CreateTrail":
        request.update({"s3BucketName": "attacker-logs", "isMultiRegionTrail": False})
    return record(event_name, "cloudtrail.amazonaws.com", DEPLOYER, request=request,
                  ip="192.0.2.44", **kw)  # fmt: skip


# -- cases ----------------------------------------------------------------------------------------

ASSUME = "Console Login Through Assume Role"
NOMFA = "Console Login Without MFA"
ROOTNOMFA = "Console Root Login Without MFA"
DEACT = "Deactivate MFA for Root User"
CUSER = "Create AWS user"
CGROUP = "Create Group"
DGROUP = "Delete Group"
ECSSVC = "ECS Service Created"
ECSTASK = "ECS Task Run or Started"
CLAMBDA = "Create Lambda Function"
ULCODE = "Update Lambda Function Code"
ULCONF = "Update Lambda Function Configuration"
RUN = "Run Instances"
RUNREGION = "Run Instances in Non-approved Region"
DENC = "Delete Bucket Encryption"
DPAB = "Delete Bucket Public Access Block"
LIST = "List Buckets"
ACL = "Put Bucket ACL"
POLICY = "Put Bucket Policy"
CTRAIL = "CloudTrail Trail Created"
STOPLOG = "CloudTrail Logging Disabled"
ALL_EVENTS = "All Cloudtrail Events"

Case = tuple[str, str, Callable[[], dict[str, Any]], list[str]]

POSITIVES: list[Case] = [
    ("sso-console-login", ASSUME, lambda: console_login(SSO_ADMIN), [ASSUME]),
    ("iam-user-no-mfa", NOMFA, lambda: console_login(ALICE), [NOMFA]),
    # a root login without MFA is also a login without MFA; the generic rule comes first
    ("root-no-mfa", ROOTNOMFA, lambda: console_login(ROOT), [NOMFA, ROOTNOMFA]),
    ("root-deactivates-own-mfa", DEACT,
     lambda: deactivate_mfa(dict(ROOT, userName="corp-root"), "AWS ROOT USER"), [DEACT]),
    ("create-user", CUSER, create_user, [CUSER]),
    ("create-group", CGROUP, lambda: group("CreateGroup", response={"group": {
        "groupName": "break-glass", "groupId": "AGPA2EXAMPLEGROUP001"}}), [CGROUP]),
    ("delete-group", DGROUP, lambda: group("DeleteGroup"), [DGROUP]),
    ("ecs-create-service", ECSSVC, lambda: ecs("CreateService"), [ECSSVC]),
    ("ecs-run-task", ECSTASK, lambda: ecs("RunTask"), [ECSTASK]),
    ("ecs-start-task", ECSTASK, lambda: ecs("StartTask"), [ECSTASK]),
    ("create-function", CLAMBDA, lambda: lambda_call("CreateFunction20150331"), [CLAMBDA]),
    ("update-function-code", ULCODE, lambda: lambda_call("UpdateFunctionCode20150331v2"), [ULCODE]),
    ("update-function-config", ULCONF,
     lambda: lambda_call("UpdateFunctionConfiguration20150331v2"), [ULCONF]),
    # approved_regions holds only the placeholder "us-east-0": every launch is non-approved
    ("run-instances", RUN, run_instances, [RUN, RUNREGION]),
    ("run-instances-us-east-1", RUNREGION, lambda: run_instances("us-east-1"), [RUN, RUNREGION]),
    ("delete-bucket-encryption", DENC, lambda: s3("DeleteBucketEncryption", {"encryption": ""}),
     [DENC]),
    ("open-public-access-block", DPAB, lambda: public_access_block(False), [DPAB]),
    ("partially-open-public-access-block", DPAB, partially_open_access_block, [DPAB]),
    ("put-bucket-acl", ACL, lambda: s3("PutBucketAcl", {"acl": ""}), [ACL]),
    ("put-bucket-policy", POLICY, put_bucket_policy, [POLICY]),
    ("create-trail", CTRAIL, lambda: trail("CreateTrail"), [CTRAIL]),
    ("stop-logging", STOPLOG, lambda: trail("StopLogging"), [STOPLOG]),
]

NEAR_MISSES: list[Case] = [
    ("iam-user-login", ASSUME, lambda: console_login(ALICE, mfa="Yes"), []),
    ("sso-login-failed", ASSUME, lambda: console_login(SSO_ADMIN, result="Failure"), []),
    ("iam-user-with-mfa", NOMFA, lambda: console_login(ALICE, mfa="Yes"), []),
    ("iam-user-no-mfa-failed", NOMFA, lambda: console_login(ALICE, result="Failure"), []),
    ("root-with-mfa", ROOTNOMFA, lambda: console_login(ROOT, mfa="Yes"), []),
    ("admin-deactivates-user-mfa", DEACT, lambda: deactivate_mfa(ALICE, "bob"), []),
    ("root-deactivate-denied", DEACT,
     lambda: dict(deactivate_mfa(ROOT, "AWS ROOT USER"), errorCode="AccessDenied"), []),
    ("create-user-denied", CUSER, lambda: create_user(error="AccessDenied"), []),
    ("create-group-exists", CGROUP, lambda: group("CreateGroup", error="EntityAlreadyExistsException"),
     []),
    ("delete-group-missing", DGROUP, lambda: group("DeleteGroup", error="NoSuchEntityException"), []),
    # Cloud Map's CreateService is not ECS's
    ("servicediscovery-create-service", ECSSVC,
     lambda: ecs("CreateService", source="servicediscovery.amazonaws.com"), []),
    ("ecs-stop-task", ECSTASK, lambda: ecs("StopTask"), []),
    ("ecs-run-task-denied", ECSTASK, lambda: ecs("RunTask", error="AccessDeniedException"), []),
    ("create-function-conflict", CLAMBDA,
     lambda: lambda_call("CreateFunction20150331", error="ResourceConflictException"), []),
    ("update-code-denied", ULCODE,
     lambda: lambda_call("UpdateFunctionCode20150331v2", error="AccessDenied"), []),
    ("get-function-config", ULCONF, lambda: lambda_call("GetFunctionConfiguration20150331v2"), []),
    ("run-instances-unauthorized", RUN,
     lambda: run_instances(error="Client.UnauthorizedOperation"), []),
    ("run-instances-dry-run", RUNREGION, lambda: run_instances(error="Client.DryRunOperation"), []),
    ("put-bucket-encryption", DENC, lambda: s3("PutBucketEncryption", {"encryption": ""}), []),
    ("close-public-access-block", DPAB, lambda: public_access_block(True), []),
    # the rule named "Delete ..." looks at PutBucketPublicAccessBlock only
    ("delete-public-access-block", DPAB,
     lambda: s3("DeleteBucketPublicAccessBlock", {"publicAccessBlock": ""}), []),
    ("get-bucket-acl", ACL, lambda: s3("GetBucketAcl", {"acl": ""}), []),
    ("put-bucket-policy-malformed", POLICY, lambda: put_bucket_policy(error="MalformedPolicy"), []),
    ("update-trail", CTRAIL, lambda: trail("UpdateTrail"), []),
    ("start-logging", STOPLOG, lambda: trail("StartLogging"), []),
    ("stop-logging-denied", STOPLOG, lambda: trail("StopLogging", error="AccessDenied"), []),
    # disabled rules
    ("list-buckets", LIST, lambda: s3("ListBuckets", {"Host": "s3.amazonaws.com"}), []),
    ("get-object", ALL_EVENTS, lambda: s3("GetObject", {"key": "reports/q1.csv"}), []),
]


def _ids(cases: list[Case]) -> list[str]:
    return [f"{rule}::{cid}" for cid, rule, _, _ in cases]


@pytest.mark.parametrize(("cid", "rule", "make", "expected"), POSITIVES, ids=_ids(POSITIVES))
def test_positive(all_engine: Engine, first_engine: Engine, cid: str, rule: str,
                  make: Callable[[], dict[str, Any]], expected: list[str]) -> None:  # fmt: skip
    ev = to_event(make())
    assert rule in expected
    assert [d.rule for d in all_engine.process(ev)] == expected
    assert [d.rule for d in first_engine.process(ev)] == expected[:1]


@pytest.mark.parametrize(("cid", "rule", "make", "expected"), NEAR_MISSES, ids=_ids(NEAR_MISSES))
def test_near_miss(all_engine: Engine, first_engine: Engine, cid: str, rule: str,
                   make: Callable[[], dict[str, Any]], expected: list[str]) -> None:  # fmt: skip
    ev = to_event(make())
    assert rule not in expected
    assert [d.rule for d in all_engine.process(ev)] == expected
    assert [d.rule for d in first_engine.process(ev)] == expected[:1]


def test_every_enabled_rule_is_covered(all_engine: Engine) -> None:
    enabled = {r.name for r in all_engine.rules if r.enabled}
    disabled = {r.name for r in all_engine.rules if not r.enabled}
    assert len(enabled) == 20 and disabled == {ALL_EVENTS, LIST}
    assert {rule for _, rule, _, _ in POSITIVES} == enabled
    assert {rule for _, rule, _, _ in NEAR_MISSES} == enabled | disabled


def test_first_match_picks_the_generic_mfa_rule(first_engine: Engine) -> None:
    [d] = first_engine.process(to_event(console_login(ROOT)))
    assert d.rule == NOMFA
    [d] = first_engine.process(to_event(run_instances()))
    assert d.rule == RUN


def test_disabled_rules_never_fire(all_engine: Engine) -> None:
    records = [c[2]() for c in POSITIVES + NEAR_MISSES]
    for rec in records:
        fired = {d.rule for d in all_engine.process(to_event(rec))}
        assert not fired & {ALL_EVENTS, LIST}


def test_errorcode_null_counts_as_present(all_engine: Engine) -> None:
    # ct.error is "" (present) when errorCode is not a string: `not ct.error exists` is false
    rec = create_user()
    rec["errorCode"] = None
    assert all_engine.process(to_event(rec)) == []


def test_approved_regions_can_be_extended(corpus: Path) -> None:
    # a user rules file appending us-east-1 to approved_regions silences the region rule there
    custom = "- list: approved_regions\n  items: [us-east-1]\n  override:\n    items: append\n"
    e = _engine(corpus, "all", custom)
    assert [d.rule for d in e.process(to_event(run_instances("us-east-1")))] == [RUN]
    assert [d.rule for d in e.process(to_event(run_instances("ap-southeast-1")))] == [RUN, RUNREGION]


# -- records the cloudtrail plugin never turns into events ---------------------------------------

ENABLE_ALL_EVENTS = "- rule: All Cloudtrail Events\n  enabled: true\n  override:\n    enabled: replace\n"


def insight_record() -> dict[str, Any]:
    # a CloudTrail Insights event, delivered to the same bucket (CloudTrail-Insight/ prefix)
    return {
        "eventVersion": "1.07", "eventTime": "2024-03-01T10:00:00Z", "awsRegion": "us-east-1",
        "eventID": "e2b2d3c4-0000-4000-8000-000000000001", "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": ACCOUNT, "sharedEventID": "12ab34cd-0000-4000-8000-000000000002",
        "insightDetails": {
            "state": "Start", "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
            "insightType": "ApiCallRateInsight",
            "insightContext": {"statistics": {"baseline": {"average": 0.0417},
                                              "insight": {"average": 4}, "insightDuration": 1}},
        },
        "eventCategory": "Insight",
    }  # fmt: skip


def _run(corpus: Path, tmp_path: Path, records: list[dict[str, Any]]) -> tuple[int, list[str]]:
    import json

    path = tmp_path / "123456789012_CloudTrail_us-east-1_20240301T1000Z_x.json"
    path.write_text(json.dumps({"Records": records}))
    e = _engine(corpus, "all", ENABLE_ALL_EVENTS)
    found: list[str] = []
    stats = run_files(e, [str(path)], lambda d: found.append(d.rule), lambda _: None,
                      RecordDecoder(host="ct-collector"))  # fmt: skip
    return stats.events, found


def test_regular_record_reaches_the_rules(corpus: Path, tmp_path: Path) -> None:
    assert _run(corpus, tmp_path, [create_user()]) == (1, [ALL_EVENTS, CUSER])


def test_insight_records_are_not_events(corpus: Path, tmp_path: Path) -> None:
    assert _run(corpus, tmp_path, [create_user(), insight_record()]) == (1, [ALL_EVENTS, CUSER])


def test_records_without_event_type_are_not_events(corpus: Path, tmp_path: Path) -> None:
    rec = create_user()
    del rec["eventType"]
    assert _run(corpus, tmp_path, [rec]) == (0, [])


# -- output text ----------------------------------------------------------------------------------


def _message(d: Any, priority: str) -> str:
    stamp, _, rest = d.output.partition(": ")
    assert len(stamp) == len("10:00:00.000000000")
    assert rest.startswith(priority + " ")
    return rest[len(priority) + 1:]


def test_output_root_login_user_is_missing(all_engine: Engine) -> None:
    # Root records of console sign-ins carry no userName: ct.user is missing, prints <NA>
    dets = all_engine.process(to_event(console_login(ROOT)))
    assert [_message(d, "Critical") for d in dets] == [
        "Detected a console login without MFA (requesting user=<NA>, requesting IP=198.51.100.7,"
        " AWS region=us-east-1)",
        "Detected a root console login without MFA. (requesting user=<NA>, requesting"
        " IP=198.51.100.7, AWS region=us-east-1)",
    ]
    assert dets[0].output_fields["ct.user"] is None
    assert dets[0].source == "aws_cloudtrail" and "aws_console" in dets[0].tags


def test_output_assumed_role_user(all_engine: Engine) -> None:
    [d] = all_engine.process(to_event(trail("StopLogging")))
    assert _message(d, "Warning") == (
        "The CloudTrail logging has been disabled. (requesting user=Deployer, requesting"
        " IP=192.0.2.44, AWS region=us-east-1, resource name=arn:aws:cloudtrail:us-east-1:"
        f"{ACCOUNT}:trail/management-events)"
    )


def test_output_sso_console_login(all_engine: Engine) -> None:
    [d] = all_engine.process(to_event(console_login(SSO_ADMIN)))
    assert _message(d, "Warning") == (
        "Detected a console login through Assume Role (principal=AROA2EXAMPLESSOADMIN:carol@example.com,"
        f" assumedRole=arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_AdministratorAccess_0a1b2c3d/"
        "carol@example.com, requesting IP=198.51.100.7, AWS region=us-east-1)"
    )


def test_output_run_instances_json_pointer(all_engine: Engine) -> None:
    _, d = all_engine.process(to_event(run_instances()))
    assert _message(d, "Warning") == (
        "A number of instances have been launched in a non-approved region. (requesting"
        " user=Deployer, requesting IP=192.0.2.80, AWS region=eu-west-3, availability"
        " zone=eu-west-3a, subnet id=subnet-0123456789abcdef0, reservation id=r-0fedcba9876543210,"
        " image id=i-0aaaaaaaaaaaaaaa1)"
    )
    assert d.output_fields["json.value[/responseElements/instancesSet/items/0/instanceId]"] == (
        "i-0aaaaaaaaaaaaaaa1"
    )


def test_output_non_string_request_value(all_engine: Engine) -> None:
    # ct.request.policy reads requestParameters.policy, which AWS logs as [""]: a non-string
    # value extracts as "" (present), not as JSON text
    [d] = all_engine.process(to_event(put_bucket_policy()))
    assert _message(d, "Warning").endswith("bucket name=corp-data, policy=)")
    assert d.output_fields["ct.request.policy"] == ""


def test_output_aws_service_user(all_engine: Engine) -> None:
    # an EventBridge-scheduled task: ct.user of an AWSService identity is its invokedBy
    rec = ecs("RunTask")
    rec["userIdentity"] = dict(ECS_SERVICE, invokedBy="events.amazonaws.com")
    rec["sourceIPAddress"] = "events.amazonaws.com"
    [d] = all_engine.process(to_event(rec))
    assert _message(d, "Warning") == (
        "A new task has been started in ECS (requesting user=events.amazonaws.com, requesting"
        " IP=events.amazonaws.com, AWS region=eu-west-3, cluster=prod, task definition=web:42)"
    )


def test_output_ecs_service(all_engine: Engine) -> None:
    [d] = all_engine.process(to_event(ecs("CreateService")))
    assert _message(d, "Warning") == (
        "A new service has been created in ECS (requesting user=Deployer, requesting IP=192.0.2.80,"
        " AWS region=eu-west-3, cluster=prod, service name=web, task definition=web:42)"
    )

"""okta, github and gcp_auditlog fields; every field the public plugin rule files use resolves."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from falconet.event import Event
from falconet.fields import ArgMode, FieldArgError, FieldType
from falconet.rules.fields import gcpaudit, github, okta, plugin_versions, registry_for


def ev(source: str, payload: dict[str, Any], ts: int = 1_709_294_400_123_000_000) -> Event:
    return Event(source=source, type="", ts=ts, host="", id="1", payload=payload)


def x(source: str, name: str, payload: dict[str, Any], arg: str | None = None) -> Any:
    return registry_for(source).bind(name, arg).extract(ev(source, payload))


# ---------------------------------------------------------------------------- okta

OKTA_EVENT: dict[str, Any] = {
    "actor": {
        "id": "00u1abcd2EFGH3ijk4x7",
        "type": "User",
        "alternateId": "alice@example.com",
        "displayName": "Alice Admin",
        "detailEntry": None,
    },
    "client": {
        "userAgent": {
            "rawUserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/537.36",
            "os": "Mac OS X",
            "browser": "CHROME",
        },
        "zone": "null",
        "device": "Computer",
        "id": None,
        "ipAddress": "203.0.113.50",
        "geographicalContext": {
            "city": "Paris",
            "state": "Ile-de-France",
            "country": "France",
            "postalCode": "75001",
            "geolocation": {"lat": 48.8566, "lon": 2.3522},
        },
    },
    "device": None,
    "authenticationContext": {
        "authenticationProvider": None,
        "credentialProvider": None,
        "credentialType": None,
        "authenticationStep": 0,
        "externalSessionId": "102abcDEFghiJKL",
    },
    "displayMessage": "Grant user privilege",
    "eventType": "user.account.privilege.grant",
    "outcome": {"result": "SUCCESS", "reason": None},
    "published": "2024-03-01T12:00:00.123Z",
    "securityContext": {
        "asNumber": 64496,
        "asOrg": "example transit",
        "isp": "example isp",
        "domain": "example.net",
        "isProxy": False,
    },
    "severity": "INFO",
    "debugContext": {
        "debugData": {
            "requestId": "ZeXaMpLe0",
            "requestUri": "/api/v1/users/00u9zyx8WVUT7srq6p5o/roles",
            "url": "/api/v1/users/00u9zyx8WVUT7srq6p5o/roles?",
            "behaviors": "{New Geo-Location=NEGATIVE, New Device=POSITIVE}",
            "logOnlySecurityData": '{"risk":{"level":"LOW"}}',
        }
    },
    "legacyEventType": "core.user.admin_privilege.granted",
    "transaction": {"type": "WEB", "id": "ZeXaMpLe0", "detail": {}},
    "uuid": "1a2b3c4d-5e6f-11ee-8a9b-0c1d2e3f4a5b",
    "version": "0",
    "request": {"ipChain": [{"ip": "203.0.113.50", "version": "V4"}]},
    "target": [
        {"id": "00u9zyx8WVUT7srq6p5o", "type": "User", "alternateId": "bob@example.com",
         "displayName": "Bob Builder", "detailEntry": None},
        {"id": "0oa1", "type": "AppInstance", "alternateId": "Salesforce",
         "displayName": "Salesforce.com"},
        {"id": "00g1", "type": "UserGroup", "alternateId": "unknown", "displayName": "Admins"},
    ],
}  # fmt: skip


def ox(name: str, payload: dict[str, Any] = OKTA_EVENT, arg: str | None = None) -> Any:
    return x("okta", name, payload, arg)


def test_okta_metadata() -> None:
    assert okta.PLUGIN_VERSIONS == {"okta": "0.12.0"}
    assert len(okta.FIELDS) == 54
    assert ox("evt.pluginname") == "okta"
    u64 = {f.name for f in okta.FIELDS if f.type is FieldType.UINT64}
    assert u64 == {
        "okta.security.asnumber",
        "okta.mfa.failure.countlast",
        "okta.mfa.deny.countlast",
    }


def test_okta_strings() -> None:
    assert ox("okta.evt.type") == "user.account.privilege.grant"
    assert ox("okta.evt.legacytype") == "core.user.admin_privilege.granted"
    assert ox("okta.severity") == "INFO"
    assert ox("okta.message") == "Grant user privilege"
    assert ox("okta.published") == "2024-03-01T12:00:00.123Z"
    assert ox("okta.actor.id") == "00u1abcd2EFGH3ijk4x7"
    assert ox("okta.actor.Type") == "User"
    assert ox("okta.actor.alternateid") == "alice@example.com"
    assert ox("okta.actor.name") == "Alice Admin"
    assert ox("okta.client.ip") == "203.0.113.50"
    assert ox("okta.client.zone") == "null"
    assert ox("okta.client.device") == "Computer"
    assert ox("okta.client.geo.city") == "Paris"
    assert ox("okta.client.geo.state") == "Ile-de-France"
    assert ox("okta.client.geo.country") == "France"
    assert ox("okta.client.geo.postalcode") == "75001"
    assert ox("okta.useragent.os") == "Mac OS X"
    assert ox("okta.useragent.browser") == "CHROME"
    assert ox("okta.useragent.raw").startswith("Mozilla/5.0")
    assert ox("okta.result") == "SUCCESS"
    assert ox("okta.transaction.id") == "ZeXaMpLe0"
    assert ox("okta.transaction.type") == "WEB"
    assert ox("okta.requesturi") == "/api/v1/users/00u9zyx8WVUT7srq6p5o/roles"
    assert ox("okta.behaviors") == "{New Geo-Location=NEGATIVE, New Device=POSITIVE}"
    assert ox("okta.logonlysecuritydata") == '{"risk":{"level":"LOW"}}'
    assert ox("okta.authentication.sessionid") == "102abcDEFghiJKL"
    assert ox("okta.security.asorg") == "example transit"
    assert ox("okta.security.isp") == "example isp"
    assert ox("okta.security.domain") == "example.net"


def test_okta_struct_zero_values_are_present() -> None:
    # a Go struct field always has a value: null or absent gives ""
    assert ox("okta.reason") == ""
    assert ox("okta.client.id") == ""
    assert ox("okta.authentication.provider") == ""
    assert ox("okta.principal.id") == ""
    assert ox("okta.security.isproxy") == ""  # a JSON bool does not decode into the string
    assert ox("okta.evt.type", {}) == ""
    assert ox("okta.actor.name", {}) == ""


def test_okta_geo() -> None:
    assert ox("okta.client.geo.lat") == "48.8566"
    assert ox("okta.client.geo.lon") == "0"  # upstream reads "lonDe"
    assert (
        ox(
            "okta.client.geo.lon",
            {"client": {"geographicalContext": {"geolocation": {"lonDe": 2.5}}}},
        )
        == "2.5"
    )
    assert ox("okta.client.geo.lat", {}) == "0"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (48.8566, "48.8566"),
        (-122.4194, "-122.4194"),
        (0.0, "0"),
        (100.0, "100"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e21, "1e+21"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5e-7, "1.5e-07"),
    ],
)
def test_go_float_v(value: float, text: str) -> None:
    assert okta.go_float_v(value) == text


def test_okta_targets() -> None:
    assert ox("okta.target.user.id") == "00u9zyx8WVUT7srq6p5o"
    assert ox("okta.target.user.alternateid") == "bob@example.com"
    assert ox("okta.target.user.name") == "Bob Builder"
    assert ox("okta.target.group.id") == "00g1"
    assert ox("okta.target.group.alternateid") == "unknown"
    assert ox("okta.target.group.name") == "Admins"
    assert ox("okta.target.app.alternateid") == "Salesforce"
    assert ox("okta.targets.displayName") == "(Bob Builder,Salesforce.com,Admins)"
    assert ox("okta.targets.displayName", arg="1") == "Salesforce.com"
    assert ox("okta.targets.displayName", arg="3") is None
    no_targets = {k: v for k, v in OKTA_EVENT.items() if k != "target"}
    assert ox("okta.target.user.name", no_targets) is None
    assert ox("okta.targets.displayName", no_targets) is None
    two_users = copy.deepcopy(OKTA_EVENT)
    two_users["target"].append({"id": "00u2", "type": "User", "displayName": "Last"})
    assert ox("okta.target.user.name", two_users) == "Last"  # the last match wins


def test_okta_app() -> None:
    sso = copy.deepcopy(OKTA_EVENT)
    sso["debugContext"]["debugData"]["requestUri"] = "/app/salesforce/exk1a2b3c4/sso/saml"
    assert ox("okta.app", sso) == "salesforce"
    assert ox("okta.app") is None


def test_okta_fields_without_value() -> None:
    # stateful counters, plugin configuration, and fields that panic upstream
    assert ox("okta.mfa.failure.countlast", arg="300") is None
    assert ox("okta.mfa.deny.countlast", arg="300") is None
    assert ox("okta.org") is None
    assert ox("okta.authentication.step") is None
    assert ox("okta.security.asnumber") is None
    reg = registry_for("okta")
    with pytest.raises(FieldArgError):
        reg.bind("okta.mfa.failure.countlast")
    with pytest.raises(FieldArgError):
        reg.bind("okta.mfa.failure.countlast", "five")
    assert reg.get("okta.targets.displayName").arg is ArgMode.OPTIONAL


def test_okta_case_insensitive_keys() -> None:
    assert ox("okta.evt.type", {"EventType": "user.session.start"}) == "user.session.start"
    assert ox("okta.evt.type", {"EVENTTYPE": "a", "eventType": "b"}) == "b"


def test_okta_json_sees_the_reencoded_struct() -> None:
    assert ox("json.value", arg="/eventType") == "user.account.privilege.grant"
    assert ox("json.value", arg="/client/geographicalContext/geolocation/lat") == "48.8566"
    assert ox("json.value", arg="/client/geographicalContext/geolocation/lon") is None
    assert ox("json.value", arg="/request") is None  # not a struct field
    assert ox("json.value", arg="/outcome") == '{"result":"SUCCESS"}'  # omitempty reason
    info = ox("evt.plugininfo")
    assert info.startswith('{"uuid":"1a2b3c4d-5e6f-11ee-8a9b-0c1d2e3f4a5b","published":')
    assert '"securityContext":{"asNumber":64496,"asOrg":"example transit"' in info


# ---------------------------------------------------------------------------- github

PUSH: dict[str, Any] = {
    "ref": "refs/heads/main",
    "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
    "repository": {
        "id": 35129377,
        "name": "public-repo",
        "full_name": "octo-org/public-repo",
        "private": False,
        "owner": {"login": "octo-org", "id": 6811672},
        "html_url": "https://github.com/octo-org/public-repo",
        "description": "A <demo> repo",
    },
    "organization": {"login": "octo-org", "id": 6811672},
    "sender": {"login": "octocat", "id": 583231},
    "head_commit": {"id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"},
    "commits": [
        {"id": "a1", "added": ["deploy.sh"], "removed": [], "modified": ["README.md", "ci.yml"]},
        {"id": "a2", "added": ["keys.env"], "removed": ["old.txt"], "modified": []},
    ],
    "compare": "https://github.com/octo-org/public-repo/compare/6113728f27ae...0d1a26e67d8f",
    "webhook_type": "push",
    "files": [
        {"name": "keys.env", "matches": [
            {"line": 3, "type": "aws_access_key", "desc": "AWS access key", "platform": "aws"},
            {"line": 4, "type": "aws_secret_key", "desc": "AWS secret key", "platform": "aws"},
        ]},
        {"name": "deploy.sh", "matches": [
            {"line": 12, "type": "github_token", "desc": "GitHub token", "platform": "github"},
        ]},
        {"name": "README.md", "matches": []},
    ],
}  # fmt: skip

WORKFLOW_RUN: dict[str, Any] = {
    "action": "requested",
    "workflow": {"id": 5, "name": "CI", "path": ".github/workflows/ci.yml"},
    "repository": {"full_name": "octo-org/private-repo", "private": True,
                   "html_url": "https://github.com/octo-org/private-repo",
                   "owner": {"login": "octo-org"}},
    "sender": {"login": "mallory"},
    "webhook_type": "workflow_run",
    "workflow_miner_detections": {"name": ".github/workflows/ci.yml", "matches": [
        {"line": 20, "type": "xmrig"}, {"line": 21, "type": "stratum"}, {"line": 30, "type": "xmrig"},
    ]},
}  # fmt: skip

MEMBER: dict[str, Any] = {
    "action": "added",
    "member": {"login": "eve"},
    "changes": {"permission": {"to": "admin"}},
    "repository": {"private": False, "html_url": "https://github.com/octo-org/public-repo",
                   "owner": {"login": "octo-org"}},
    "sender": {"login": "octocat"},
    "webhook_type": "member",
}  # fmt: skip

PING: dict[str, Any] = {
    "zen": "Keep it logically awesome.",
    "hook_id": 463918201,
    "hook": {"type": "Repository", "id": 463918201, "active": True, "events": ["*"]},
    "sender": {"login": "octocat"},
    "webhook_type": "ping",
}


def gx(name: str, payload: dict[str, Any]) -> Any:
    return x("github", name, payload)


def test_github_metadata() -> None:
    assert github.PLUGIN_VERSIONS == {"github": "0.10.1"}
    assert len(github.FIELDS) == 25
    assert all(f.type is FieldType.CHARBUF and f.arg is ArgMode.NONE for f in github.FIELDS)


def test_github_basic() -> None:
    assert gx("github.type", PUSH) == "push"
    assert gx("github.action", PUSH) == ""  # always present
    assert gx("github.action", MEMBER) == "added"
    assert gx("github.user", PUSH) == "octocat"
    assert gx("github.repo", PUSH) == "https://github.com/octo-org/public-repo"
    assert gx("github.repo.url", PUSH) == "https://github.com/octo-org/public-repo"
    assert gx("github.repo.name", PUSH) == "octo-org/public-repo"
    assert gx("github.repo.description", PUSH) == "A <demo> repo"
    assert gx("github.org", PUSH) == "octo-org"
    assert gx("github.org", WORKFLOW_RUN) == ""
    assert gx("github.owner", PUSH) == "octo-org"
    assert gx("github.repo.public", PUSH) == "true"
    assert gx("github.repo.public", WORKFLOW_RUN) == "false"
    assert gx("github.repo.public", PING) == "true"  # no repository: not private
    assert gx("github.collaborator.name", MEMBER) == "eve"
    assert gx("github.collaborator.role", MEMBER) == "admin"
    assert gx("github.webhook.id", PING) == "463918201"
    assert gx("github.webhook.id", PUSH) == "0"
    assert gx("github.webhook.type", PING) == "Repository"
    assert gx("github.workflow.filename", WORKFLOW_RUN) == ".github/workflows/ci.yml"


def test_github_commits_concatenate_like_upstream() -> None:
    # items of one commit are comma separated, two commits are glued together
    assert gx("github.commit.added", PUSH) == "deploy.shkeys.env"
    assert gx("github.commit.modified", PUSH) == "README.md,ci.yml"
    assert gx("github.commit.removed", PUSH) == "old.txt"
    assert gx("github.commit.added", PING) == ""


def test_github_secrets() -> None:
    assert gx("github.diff.has_secrets", PUSH) == "true"
    assert gx("github.diff.has_secrets", PING) == ""  # no files array: present, empty
    no_match = {**PUSH, "files": [{"name": "a", "matches": []}]}
    assert gx("github.diff.has_secrets", no_match) == "false"
    assert (
        gx("github.diff.committed_secrets.desc", PUSH)
        == "AWS access key,AWS secret keyGitHub token"
    )
    assert gx("github.diff.committed_secrets.files", PUSH) == "keys.env,keys.envdeploy.sh"
    assert gx("github.diff.committed_secrets.lines", PUSH) == "3,412"
    assert gx("github.diff.committed_secrets.links", PUSH) == (
        "https://github.com/octo-org/public-repo/blob/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c/keys.env/#L3,"
        "https://github.com/octo-org/public-repo/blob/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c/keys.env/#L4"
        "https://github.com/octo-org/public-repo/blob/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c/deploy.sh/#L12"
    )
    for name in ("desc", "files", "lines"):
        assert gx(f"github.diff.committed_secrets.{name}", PING) is None
    assert gx("github.diff.committed_secrets.links", PING) == ""


def test_github_miners() -> None:
    assert gx("github.workflow.has_miners", WORKFLOW_RUN) == "true"
    assert gx("github.workflow.miners.type", WORKFLOW_RUN) == "xmrig,stratum"
    assert gx("github.workflow.has_miners", PUSH) is None
    assert gx("github.workflow.miners.type", PUSH) is None
    clean = {**WORKFLOW_RUN, "workflow_miner_detections": {"name": "ci.yml", "matches": []}}
    assert gx("github.workflow.has_miners", clean) == "false"


def test_github_plugininfo_and_json() -> None:
    assert gx("evt.plugininfo", PUSH) == (
        "github push user:octocat repo:https://github.com/octo-org/public-repo"
    )
    assert gx("evt.plugininfo", MEMBER).endswith(" action:added")
    assert gx("evt.plugininfo", {}) == "github "
    reg = registry_for("github")
    e = ev("github", PUSH)
    assert (
        reg.bind("json.value", "/repository/owner").extract(e)
        == '{"id":6811672,"login":"octo-org"}'
    )
    assert reg.bind("json.value", "/repository/description").extract(e) == "A <demo> repo"
    assert '"description": "A \\u003cdemo\\u003e repo"' in reg.bind("json.obj").extract(e)


# ---------------------------------------------------------------------------- gcp

GCS_SET_IAM: dict[str, Any] = {
    "protoPayload": {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": {},
        "authenticationInfo": {"principalEmail": "mallory@example.com"},
        "requestMetadata": {
            "callerIp": "203.0.113.77",
            "callerSuppliedUserAgent": "google-cloud-sdk gcloud/467.0.0 command/gcloud.storage.buckets.add-iam-policy-binding",
            "requestAttributes": {"time": "2024-03-01T12:30:00.101Z", "auth": {}},
            "destinationAttributes": {},
        },
        "serviceName": "storage.googleapis.com",
        "methodName": "storage.setIamPermissions",
        "authorizationInfo": [
            {"resource": "projects/_/buckets/corp-bucket", "permission": "storage.buckets.setIamPolicy",
             "granted": True, "resourceAttributes": {}},
        ],
        "resourceName": "projects/_/buckets/corp-bucket",
        "serviceData": {
            "@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
            "policyDelta": {"bindingDeltas": [
                {"action": "ADD", "role": "roles/storage.objectViewer", "member": "allUsers"},
            ]},
        },
        "request": {"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest",
                    "resource": "projects/_/buckets/corp-bucket"},
        "resourceLocation": {"currentLocations": ["eu"]},
    },
    "insertId": "1x2y3z4a5b6c",
    "resource": {"type": "gcs_bucket",
                 "labels": {"location": "eu", "project_id": "corp-prod", "bucket_name": "corp-bucket"}},
    "timestamp": "2024-03-01T12:30:00.123456Z",
    "severity": "NOTICE",
    "logName": "projects/corp-prod/logs/cloudaudit.googleapis.com%2Factivity",
    "receiveTimestamp": "2024-03-01T12:30:01.234567Z",
}  # fmt: skip


def cx(name: str, payload: dict[str, Any] = GCS_SET_IAM) -> Any:
    return x("gcp_auditlog", name, payload)


def with_resource(resource: dict[str, Any]) -> dict[str, Any]:
    return {**GCS_SET_IAM, "resource": resource}


def test_gcp_metadata() -> None:
    assert gcpaudit.PLUGIN_VERSIONS == {"gcpaudit": "0.8.1"}
    assert len(gcpaudit.FIELDS) == 25
    assert all(f.type is FieldType.CHARBUF and f.arg is ArgMode.NONE for f in gcpaudit.FIELDS)
    assert cx("evt.pluginname") == "gcpaudit"


def test_gcp_fields() -> None:
    assert cx("gcp.user") == "mallory@example.com"
    assert cx("gcp.callerIP") == "203.0.113.77"
    assert cx("gcp.userAgent").startswith("google-cloud-sdk gcloud/467.0.0")
    assert cx("gcp.serviceName") == "storage.googleapis.com"
    assert cx("gcp.methodName") == "storage.setIamPermissions"
    assert cx("gcp.resourceName") == "projects/_/buckets/corp-bucket"
    assert cx("gcp.resourceType") == "gcs_bucket"
    assert cx("gcp.storage.bucket") == "corp-bucket"
    assert cx("gcp.projectId") == "corp-prod"
    assert cx("gcp.time") == "2024-03-01T12:30:00.123456Z"
    assert cx("gcp.resourceLabels") == (
        '{"location":"eu","project_id":"corp-prod","bucket_name":"corp-bucket"}'
    )
    assert cx("gcp.cloudsql.databaseId") is None
    assert cx("gcp.logging.sink") is None


def test_gcp_object_values_read_as_empty_strings() -> None:
    # upstream reads these with GetStringBytes: an object or array gives ""
    assert cx("gcp.authorizationInfo") == ""
    assert cx("gcp.request") == ""
    assert cx("gcp.policyDelta") == ""
    bq = {**GCS_SET_IAM, "resource": {"type": "bigquery_dataset", "labels": {}}}
    assert cx("gcp.policyDelta", bq) is None  # reads protoPayload.metadata.datasetChange
    bq["protoPayload"] = {**GCS_SET_IAM["protoPayload"],
                          "metadata": {"datasetChange": {"bindingDeltas": "ADD allUsers"}}}  # fmt: skip
    assert cx("gcp.policyDelta", bq) == "ADD allUsers"


def test_gcp_resource_labels() -> None:
    labels = {
        "function_name": "fn",
        "database_id": "corp-prod:db1",
        "instance_id": "123",
        "network_id": "456",
        "subnetwork_name": "sub",
        "subnetwork_id": "789",
        "zone_name": "corp-zone",
        "email_id": "sa@corp-prod.iam.gserviceaccount.com",
        "unique_id": "1122",
        "name": "sink-1",
    }
    payload = with_resource({"type": "logging_sink", "labels": labels})
    assert cx("gcp.cloudfunctions.function", payload) == "fn"
    assert cx("gcp.cloudsql.databaseId", payload) == "corp-prod:db1"
    assert cx("gcp.compute.instanceId", payload) == "123"
    assert cx("gcp.compute.networkId", payload) == "456"
    assert cx("gcp.compute.subnetwork", payload) == "sub"
    assert cx("gcp.compute.subnetworkId", payload) == "789"
    assert cx("gcp.dns.zone", payload) == "corp-zone"
    assert cx("gcp.iam.serviceAccount", payload) == "sa@corp-prod.iam.gserviceaccount.com"
    assert cx("gcp.iam.serviceAccountId", payload) == "1122"
    assert cx("gcp.logging.sink", payload) == "sink-1"
    assert cx("gcp.location", payload) is None


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"location": "eu", "region": "r"}, "eu"),
        ({"region": "us-central1", "zone": "z"}, "us-central1"),
        ({"zone": "us-central1-a"}, "us-central1"),
        ({"zone": "ab"}, "ab"),
        ({"zone": ""}, None),
        ({"zone": 5}, None),
        ({"location": 5}, ""),
        ({}, None),
    ],
)
def test_gcp_location(labels: dict[str, Any], expected: str | None) -> None:
    assert cx("gcp.location", with_resource({"type": "gce_instance", "labels": labels})) == expected


def test_gcp_json_and_plugininfo() -> None:
    reg = registry_for("gcp_auditlog")
    e = ev("gcp_auditlog", GCS_SET_IAM)
    assert reg.bind("json.value", "/resource/labels/bucket_name").extract(e) == "corp-bucket"
    assert reg.bind("json.value", "/resource/labels/crypto_key_id").extract(e) is None
    assert json.loads(reg.bind("evt.plugininfo").extract(e)) == GCS_SET_IAM


# ---------------------------------------------------------------------------- the rule files

RULE_FILES = {
    "cloudtrail/rules/aws_cloudtrail_rules.yaml": "aws_cloudtrail",
    "k8saudit/rules/k8s_audit_rules.yaml": "k8s_audit",
    "k8saudit-gke/rules/k8s_audit_rules_gke.yaml": "k8s_audit",
    "okta/rules/okta_rules.yaml": "okta",
    "github/rules/github.yaml": "github",
    "gcpaudit/rules/gcp_auditlog_rules.yaml": "gcp_auditlog",
}

_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')
_OPS = (
    r"(?:!=|==|=|<=|>=|<|>|(?:in|intersects|contains|icontains|startswith|endswith|exists|pmatch"
    r"|glob|iglob|regex|bcontains|bstartswith)\b)"
)
_COND_FIELD = re.compile(
    r"(?<![\w.%/-])([A-Za-z][\w]*(?:\.[\w]+)+)(?:\[([^\]]*)\])?(?=\s*" + _OPS + ")"
)
_OUT_FIELD = re.compile(r"%([A-Za-z][\w]*(?:\.[\w]+)+)(?:\[([^\]]*)\])?")


def _rule_file_fields(doc: list[dict[str, Any]]) -> set[tuple[str, str | None]]:
    found: set[tuple[str, str | None]] = set()
    for item in doc:
        condition = item.get("condition")
        if isinstance(condition, str):
            text = _QUOTED.sub('""', condition)
            found.update((m.group(1), m.group(2)) for m in _COND_FIELD.finditer(text))
        output = item.get("output")
        if isinstance(output, str):
            found.update((m.group(1), m.group(2)) for m in _OUT_FIELD.finditer(output))
        for exc in item.get("exceptions") or ():
            fields = exc.get("fields")
            for name in [fields] if isinstance(fields, str) else fields or ():
                found.add((name, None))
    return found


@pytest.mark.parametrize("path", sorted(RULE_FILES))
def test_rule_file_fields_resolve(corpus: Path, path: str) -> None:
    source = RULE_FILES[path]
    doc = yaml.safe_load(
        (corpus / "falco" / "falcosecurity-plugins" / "plugins" / path).read_text()
    )
    sources = {item["source"] for item in doc if "rule" in item and "source" in item}
    assert sources <= {source}  # the gke overlay only overrides a k8s_audit rule
    found = _rule_file_fields(doc)
    assert found, path
    reg = registry_for(source)
    for name, arg in sorted(found, key=str):
        bound = reg.bind(name, arg)  # raises on an unknown field or a bad argument
        assert bound.extract is not None


def test_rule_file_scan_finds_the_known_fields(corpus: Path) -> None:
    base = corpus / "falco" / "falcosecurity-plugins" / "plugins"

    def names(path: str) -> set[str]:
        found = _rule_file_fields(yaml.safe_load((base / path).read_text()))
        return {n if a is None else f"{n}[{a}]" for n, a in found}

    ct = names("cloudtrail/rules/aws_cloudtrail_rules.yaml")
    assert {
        "ct.user",
        "ct.error",
        "json.value[/additionalEventData/MFAUsed]",
        "s3.bucket",
        "evt.plugininfo",
        "json.value[/responseElements/instancesSet/items/0/instanceId]",
    } <= ct
    ka = names("k8saudit/rules/k8s_audit_rules.yaml")
    assert {
        "ka.req.pod.containers.image.repository",
        "ka.uri.param[command]",
        "jevt.rawtime",
        "jevt.value[/stage]",
        "ka.req.pod.ephemeralContainers.privileged",
        "jevt.obj",
        "ka.req.role.rules.verbs",
        "ka.req.service.ports",
    } <= ka
    assert "ka.user.name" in names("k8saudit-gke/rules/k8s_audit_rules_gke.yaml")
    assert {
        "okta.mfa.failure.countlast[300]",
        "okta.client.geo.country",
        "okta.target.app.alternateid",
    } <= names("okta/rules/okta_rules.yaml")
    assert {
        "github.diff.committed_secrets.links",
        "github.workflow.has_miners",
        "github.repo.public",
    } <= names("github/rules/github.yaml")
    assert {"gcp.policyDelta", "json.value[/resource/labels/key_ring_id]",
            "gcp.cloudsql.databaseId"} <= names("gcpaudit/rules/gcp_auditlog_rules.yaml")  # fmt: skip


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


@pytest.mark.parametrize("path", sorted(RULE_FILES))
def test_required_plugin_versions_are_met(corpus: Path, path: str) -> None:
    doc = yaml.safe_load(
        (corpus / "falco" / "falcosecurity-plugins" / "plugins" / path).read_text()
    )
    ours = plugin_versions()
    for item in doc:
        for req in item.get("required_plugin_versions") or ():
            for option in [req, *(req.get("alternatives") or ())]:
                have = ours.get(option["name"])
                assert have is not None, option["name"]
                want = _version(option["version"])
                assert _version(have)[0] == want[0] and _version(have) >= want, option

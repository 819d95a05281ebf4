"""The accounts and identity publishers against moto's Organizations, IAM and STS server,
and the start-up errors (missing credentials, access denied) through the CLI.

moto (``ThreadedMotoServer`` on 127.0.0.1, a random port) answers the paginated
``ListAccounts``/``ListUsers``/``ListRoles`` calls and the tag calls as AWS does, and
keeps one IAM per account (an ``sts:AssumeRole`` into another account's role reads that
account). It does not enforce IAM policies, so "access denied" is served by
:class:`DenyServer`, which answers like AWS does to a caller without the permission:
Organizations (JSON protocol) with a 400 ``AccessDeniedException``, IAM (query protocol)
with a 403 ``AccessDenied`` XML error; only ``sts:GetCallerIdentity``, which needs no
permission, is answered.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from falconet.cli import main
from falconet.sensors.cloud_meta.aws import AwsError, Clients
from falconet.sensors.cloud_meta.inventory import AccountSource, IdentitySource
from falconet.sensors.cloud_meta.options import Options
from tests.conftest import FIXTURES
from tests.moto import AWS_ENV

MOTO_ACCOUNT = "123456789012"  # moto's default account
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                    "Principal": {"AWS": f"arn:aws:iam::{MOTO_ACCOUNT}:root"}}]})  # fmt: skip


def client(url: str, service: str, **creds: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=url, region_name="us-east-1", **creds)


def tags(**kv: str) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in kv.items()]


def organisation(url: str) -> dict[str, str]:
    """An organisation with two member accounts; name → account id."""
    org = client(url, "organizations")
    org.create_organization(FeatureSet="ALL")
    ids = {}
    for name, t in (("prod-payments", tags(Environment="production", criticality="high", owner="team-payments")),
                    ("sandbox", tags(env="lab"))):  # fmt: skip
        status = org.create_account(Email=f"{name}@example.com", AccountName=name, Tags=t)
        ids[name] = status["CreateAccountStatus"]["AccountId"]
    return ids


def options(url: str, **kw: Any) -> Options:
    return Options(endpoint_url=url, region="us-east-1", publisher_id="test", **kw)


def test_accounts_from_organizations_with_tags(aws: str) -> None:
    ids = organisation(aws)
    snap = AccountSource(options(aws, accounts=True)).fetch()
    prod = snap.records[ids["prod-payments"]]
    assert prod == {
        "id": ids["prod-payments"], "name": "prod-payments", "email": "prod-payments@example.com",
        "status": "ACTIVE", "environment": "production", "criticality": "high",
        "owner": "team-payments", "publisher": "test",
        "tags": {"Environment": "production", "criticality": "high", "owner": "team-payments"},
    }  # fmt: skip
    assert snap.records[ids["sandbox"]]["environment"] == "lab"
    assert MOTO_ACCOUNT in snap.records  # the management account is listed too
    assert snap.covers("000000000000", {})  # a complete listing: absent accounts are deleted


def test_accounts_yaml_overrides_organizations(aws: str, tmp_path: Any) -> None:
    ids = organisation(aws)
    inventory = tmp_path / "accounts.yaml"
    inventory.write_text(
        f"accounts:\n  '{ids['prod-payments']}': {{owner: sre, criticality: critical}}\n"
        "  '999988887777': {name: partner, environment: production}\n"
    )
    snap = AccountSource(options(aws, accounts=True, accounts_file=str(inventory))).fetch()
    prod = snap.records[ids["prod-payments"]]
    assert (prod["owner"], prod["criticality"], prod["environment"]) == (
        "sre",
        "critical",
        "production",
    )
    assert snap.records["999988887777"]["name"] == "partner"
    # the file alone, without Organizations
    file_only = AccountSource(options(aws, accounts=True, organizations=False,
                                      accounts_file=str(FIXTURES / "cloud_meta" / "accounts.yaml"))).fetch()  # fmt: skip
    assert set(file_only.records) == {"418295730164", "022233344455", "999988887777"}


def test_identities_users_and_roles_with_tags(aws: str) -> None:
    iam = client(aws, "iam")
    iam.create_user(UserName="alice", Tags=tags(owner="alice@example.com", Team="team-payments"))
    iam.create_user(UserName="ci-bot", Path="/automation/")
    iam.create_role(RoleName="payments-deployer", Path="/deploy/", AssumeRolePolicyDocument=TRUST,
                    Tags=tags(Owner="team-payments", team="payments"))  # fmt: skip
    snap = IdentitySource(options(aws, identities=True, tag_keys=Options().tag_keys)).fetch()
    alice = snap.records[f"arn:aws:iam::{MOTO_ACCOUNT}:user/alice"]
    assert {k: alice[k] for k in ("principal", "kind", "name", "account_id", "owner", "team", "path")} == {
        "principal": f"arn:aws:iam::{MOTO_ACCOUNT}:user/alice", "kind": "user", "name": "alice",
        "account_id": MOTO_ACCOUNT, "owner": "alice@example.com", "team": "team-payments", "path": "/",
    }  # fmt: skip
    assert alice["unique_id"]  # UserId (AIDA… on AWS)
    assert (
        snap.records[f"arn:aws:iam::{MOTO_ACCOUNT}:user/automation/ci-bot"]["path"]
        == "/automation/"
    )
    role_arn = f"arn:aws:iam::{MOTO_ACCOUNT}:role/deploy/payments-deployer"
    role = snap.records[role_arn]
    assert (role["kind"], role["owner"], role["team"]) == ("role", "team-payments", "payments")
    # a session of the role finds the role's record under the alias key
    alias = f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/payments-deployer"
    assert snap.records[alias] == role
    assert snap.covers(f"arn:aws:iam::{MOTO_ACCOUNT}:user/gone", {"account_id": MOTO_ACCOUNT})
    assert not snap.covers("arn:aws:iam::999988887777:user/x", {"account_id": "999988887777"})


def test_identities_of_several_accounts_through_assumed_roles(aws: str) -> None:
    """moto keeps one IAM per account: the role assumed decides which one is read."""
    other = "210987654321"
    sts = client(aws, "sts")
    # in the other account: a role the publisher can assume, and a user
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{other}:role/falconet-reader", RoleSessionName="setup"
    )["Credentials"]
    iam_other = client(aws, "iam", aws_access_key_id=creds["AccessKeyId"],
                       aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])  # fmt: skip
    iam_other.create_role(RoleName="falconet-reader", AssumeRolePolicyDocument=TRUST)
    iam_other.create_user(UserName="bob", Tags=tags(owner="team-data"))
    client(aws, "iam").create_user(UserName="alice")
    roles = (
        f"arn:aws:iam::{other}:role/falconet-reader",
        f"arn:aws:iam::{MOTO_ACCOUNT}:role/falconet-reader",
    )
    client(aws, "iam").create_role(RoleName="falconet-reader", AssumeRolePolicyDocument=TRUST)
    snap = IdentitySource(options(aws, identities=True, assume_roles=roles)).fetch()
    assert snap.records[f"arn:aws:iam::{other}:user/bob"]["owner"] == "team-data"
    assert snap.records[f"arn:aws:iam::{other}:user/bob"]["account_id"] == other
    assert f"arn:aws:iam::{MOTO_ACCOUNT}:user/alice" in snap.records
    assert f"arn:aws:iam::{other}:user/alice" not in snap.records


class DenyServer:
    """Answers like AWS to a caller without permissions (see the module docstring)."""

    def __init__(self) -> None:
        outer = self
        self.calls: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                target = self.headers.get("X-Amz-Target", "")
                if target:  # JSON protocol (Organizations)
                    outer.calls.append(target)
                    action = target.rsplit(".", 1)[-1]
                    payload = json.dumps({"__type": "AccessDeniedException", "Message":
                        "You don't have permissions to access this resource."}).encode()  # fmt: skip
                    self._send(400, "application/x-amz-json-1.1", payload, action)
                    return
                action = urllib.parse.parse_qs(body).get("Action", [""])[0]
                outer.calls.append(action)
                if action == "GetCallerIdentity":
                    xml = (
                        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                        "<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/falconet</Arn>"
                        "<UserId>AIDAW2ZQ4MJ7EXAMPLE99</UserId><Account>123456789012</Account>"
                        "</GetCallerIdentityResult><ResponseMetadata><RequestId>"
                        "0f6b2d7e-4c1a-4c8e-9b7d-2f6a1e3c5d70</RequestId></ResponseMetadata>"
                        "</GetCallerIdentityResponse>"
                    )
                    self._send(200, "text/xml", xml.encode(), action)
                    return
                xml = (
                    '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error>'
                    "<Type>Sender</Type><Code>AccessDenied</Code><Message>User: "
                    "arn:aws:iam::123456789012:user/falconet is not authorized to perform: "
                    f"iam:{action} on resource: arn:aws:iam::123456789012:user/ because no "
                    f"identity-based policy allows the iam:{action} action</Message></Error>"
                    "<RequestId>6c1e0b9a-2d44-4f5e-8a1b-0e9d7c3b2a11</RequestId></ErrorResponse>"
                )
                self._send(403, "text/xml", xml.encode(), action)

            def _send(self, status: int, ctype: str, body: bytes, action: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-amzn-RequestId", "6c1e0b9a-2d44-4f5e-8a1b-0e9d7c3b2a11")
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> DenyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def deny(monkeypatch: pytest.MonkeyPatch) -> Iterator[DenyServer]:
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    with DenyServer() as server:
        yield server


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    env = {"FALCONET_KAFKA_BOOTSTRAP": "127.0.0.1:9", **(env or {})}  # never reached: setup fails
    return CliRunner().invoke(
        main, ["sensor", "cloud-meta", *args], env=env, catch_exceptions=False
    )


@pytest.mark.parametrize(
    ("mode", "action"),
    [("--accounts", "organizations:ListAccounts"), ("--identities", "iam:ListUsers")],
)
def test_access_denied_at_start_names_the_action(deny: DenyServer, mode: str, action: str) -> None:
    result = invoke(mode, "--endpoint-url", deny.url, "--region", "us-east-1")
    assert result.exit_code == 2, result.output
    assert f"cannot call {action}: access denied" in result.output
    assert "docs/sensors/cloud-meta.md" in result.output


def test_access_denied_error_of_a_tag_call() -> None:
    """The tag calls are named too (a policy with List* but not the tag actions)."""
    from botocore.exceptions import ClientError

    from falconet.sensors.cloud_meta.aws import describe

    exc = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListTagsForResource"
    )
    err = describe(exc, "list_tags_for_resource", "account 418295730164")
    assert isinstance(err, AwsError) and err.setup
    assert "organizations:ListTagsForResource on account 418295730164: access denied" in str(err)


def test_missing_credentials_at_start(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
              "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):  # fmt: skip
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = invoke("--accounts", "--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == 2, result.output
    assert "cannot call organizations:ListAccounts: no usable AWS credentials" in result.output


def test_nothing_chosen_is_a_usage_error() -> None:
    result = invoke()
    assert result.exit_code == 2 and "nothing to publish" in result.output


def test_clients_assume_a_role(aws: str) -> None:
    other = Clients("us-east-1", aws).assume("arn:aws:iam::210987654321:role/r")
    ident = other.client("sts").get_caller_identity()
    assert ident["Account"] == "210987654321"

"""The cloud and identity metadata publishers on the real broker.

Organizations, IAM and STS are moto's (``ThreadedMotoServer`` on loopback, see
tests/sensors/test_cloud_meta_aws.py for what it checks and what it does not); the
instance metadata service is the loopback IMDSv2 of tests/sensors/test_cloud_meta_imds.py
(tokens enforced). What is asserted is what lands on the compacted metadata topics:
records, tombstones for what disappeared (also across a restart), nothing republished
when nothing changed, and other publishers' records left alone.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from falconet.sensors.base import run_sensor
from falconet.sensors.cloud_meta.options import Options
from falconet.sensors.cloud_meta.sensor import CloudMetaSensor
from falconet.streams import topics as T
from tests.integration.harness import Stack, make_stack, wait_for
from tests.sensors.test_cloud_meta_imds import ImdsServer

ACCOUNT = "123456789012"  # moto's default account
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                    "Principal": {"Service": "ec2.amazonaws.com"}}]})  # fmt: skip
ACCOUNTS = T.meta_topic("accounts")
IDENTITIES = T.meta_topic("identities")
INSTANCES = T.meta_topic("instances")


@pytest.fixture()
def stack(kafka, topic_prefix: str, tmp_path: Path) -> Stack:
    s = make_stack(kafka.bootstrap, topic_prefix, tmp_path)
    # meta.instances.v1 is not among falconet's topics yet (docs/sensors/cloud-meta.md)
    spec = T.TopicSpec(INSTANCES, 3, {"cleanup.policy": "compact"})
    assert all(st.status in ("created", "exists") for st in T.create(s.settings, [spec], 1))
    return s


def client(url: str, service: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=url, region_name="us-east-1")


def records(stack: Stack, topic: str) -> list[tuple[str, Any]]:
    """Every record of ``topic`` in order per key: (key, JSON value, or None for a tombstone)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    full = stack.topic(topic)
    consumer = Consumer(stack.settings.confluent(**{"group.id": f"read-{time.time_ns()}",
                                                    "enable.auto.commit": False,
                                                    "enable.partition.eof": True}))  # fmt: skip
    try:
        parts = list(consumer.list_topics(full, timeout=10).topics[full].partitions)
        consumer.assign([TopicPartition(full, p, OFFSET_BEGINNING) for p in parts])
        out: list[tuple[str, Any]] = []
        done: set[int] = set()
        deadline = time.monotonic() + 30
        while len(done) < len(parts) and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                done.add(msg.partition())
                continue
            value = msg.value()
            out.append((msg.key().decode(), None if value is None else orjson.loads(value)))
        assert len(done) == len(parts), f"could not read {full} to its end"
        return out
    finally:
        consumer.close()


def latest(stack: Stack, topic: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for key, value in records(stack, topic):
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    return state


def publish_once(stack: Stack, **opts: Any) -> CloudMetaSensor:
    sensor = CloudMetaSensor(Options(once=True, region="us-east-1", **opts), stack.settings)
    run_sensor(sensor, stack.config, settings=stack.settings)
    return sensor


def test_accounts_and_identities_with_tombstones(stack: Stack, aws: str) -> None:
    org, iam = client(aws, "organizations"), client(aws, "iam")
    org.create_organization(FeatureSet="ALL")
    prod = org.create_account(Email="prod@example.com", AccountName="prod-payments",
                              Tags=[{"Key": "environment", "Value": "production"},
                                    {"Key": "owner", "Value": "team-payments"}])["CreateAccountStatus"]["AccountId"]  # fmt: skip
    lab = org.create_account(Email="lab@example.com", AccountName="lab")["CreateAccountStatus"][
        "AccountId"
    ]
    iam.create_user(UserName="alice", Tags=[{"Key": "owner", "Value": "alice@example.com"}])
    iam.create_user(UserName="mallory")
    iam.create_role(RoleName="payments-deployer", Path="/deploy/", AssumeRolePolicyDocument=TRUST,
                    Tags=[{"Key": "team", "Value": "payments"}])  # fmt: skip
    # a record of another publisher on the same table (e.g. Kubernetes users)
    stack.produce(IDENTITIES, [(b"system:serviceaccount:ci:runner",
                                orjson.dumps({"principal": "system:serviceaccount:ci:runner",
                                              "kind": "serviceaccount", "publisher": "k8s-meta"}))])  # fmt: skip

    first = publish_once(stack, accounts=True, identities=True, endpoint_url=aws)
    accounts = latest(stack, ACCOUNTS)
    assert set(accounts) == {ACCOUNT, prod, lab}
    assert (
        accounts[prod]["environment"] == "production" and accounts[prod]["owner"] == "team-payments"
    )
    idents = latest(stack, IDENTITIES)
    role = f"arn:aws:iam::{ACCOUNT}:role/deploy/payments-deployer"
    alias = f"arn:aws:sts::{ACCOUNT}:assumed-role/payments-deployer"
    assert idents[f"arn:aws:iam::{ACCOUNT}:user/alice"]["owner"] == "alice@example.com"
    assert idents[role]["team"] == "payments" and idents[alias] == idents[role]
    assert first.stats.events == len(accounts) + len(idents) - 1  # all but the k8s record

    # changes while the publisher is down: a user and an account leave, a tag changes
    iam.delete_user(UserName="mallory")
    iam.tag_role(RoleName="payments-deployer", Tags=[{"Key": "owner", "Value": "bob"}])
    org.remove_account_from_organization(AccountId=lab)
    before = len(records(stack, IDENTITIES)) + len(records(stack, ACCOUNTS))
    second = publish_once(stack, accounts=True, identities=True, endpoint_url=aws)
    # a restart republishes only what changed: two tombstones, the role and its alias
    assert second.cstats.deletes == {"accounts": 1, "identities": 1}
    assert second.cstats.upserts == {"accounts": 0, "identities": 2}
    log = records(stack, IDENTITIES) + records(stack, ACCOUNTS)
    assert len(log) == before + 4
    assert (f"arn:aws:iam::{ACCOUNT}:user/mallory", None) in log and (lab, None) in log
    idents = latest(stack, IDENTITIES)
    assert idents[alias]["owner"] == "bob"
    assert "system:serviceaccount:ci:runner" in idents  # not ours: never deleted
    assert lab not in latest(stack, ACCOUNTS)


def test_node_mode_publishes_on_change_and_retries(stack: Stack) -> None:
    with ImdsServer(tags={"team": "platform"}) as imds:
        opts = Options(imds=True, node_name="node-7", imds_endpoint=imds.url, imds_refresh_seconds=0.1,
                       imds_timeout=1)  # fmt: skip
        sensor = CloudMetaSensor(opts, stack.settings, backoff_cap=0.2)
        thread = threading.Thread(target=run_sensor, args=(sensor, stack.config),
                                  kwargs={"settings": stack.settings}, daemon=True)  # fmt: skip
        thread.start()
        try:
            wait_for(lambda: "node-7" in latest(stack, INSTANCES), timeout=30)
            value = latest(stack, INSTANCES)["node-7"]
            assert value["name"] == "node-7" and value["cloud"]["instance_type"] == "m6i.xlarge"
            assert value["cloud"]["tags"] == {"team": "platform"}
            rounds = len([m for m, *_ in imds.log if m == "GET"])
            wait_for(lambda: len([m for m, *_ in imds.log if m == "GET"]) > rounds + 6, timeout=30)
            assert len(records(stack, INSTANCES)) == 1  # unchanged rounds publish nothing

            good = imds.document_text
            imds.document_text = "<html>maintenance</html>"  # IMDS answers garbage for a while
            wait_for(lambda: sensor.cstats.errors.get("imds", 0) >= 2, timeout=30)
            imds.document_text = good
            imds.set_document(instanceType="m6i.2xlarge")
            wait_for(lambda: latest(stack, INSTANCES)["node-7"]["cloud"]["instance_type"] == "m6i.2xlarge",
                     timeout=30)  # fmt: skip
            assert len(records(stack, INSTANCES)) == 2
        finally:
            sensor.stop()
            thread.join(30)
        assert not thread.is_alive()


def test_cli_node_mode_once(stack: Stack) -> None:
    with ImdsServer(tags=None) as imds:
        proc = stack.falconet("sensor", "cloud-meta", "--imds", "--imds-endpoint", imds.url,
                              "--node-name", "node-cli", "--once", timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "instances: 1 published, 0 deleted" in proc.stderr
    cloud = latest(stack, INSTANCES)["node-cli"]["cloud"]
    assert cloud["instance_id"] == "i-0a7f3c9e21b4d5f68" and "tags" not in cloud

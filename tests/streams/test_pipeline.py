"""The worker's per-record logic without Kafka: decode, enrich, evaluate, dead letters."""

from __future__ import annotations

import base64

import orjson
import pytest

from falconet import shared_context
from falconet.enrichers.metadata import MetadataEnricher
from falconet.rules.engine import Engine, EngineConfig
from falconet.streams.dlq import Origin
from falconet.streams.pipeline import Pipeline
from falconet.streams.rulesets import Ruleset, RulesetError, RulesetHolder
from tests.conftest import FIXTURES
from tests.helpers import syscall

RULES = """
- rule: Shell in container
  desc: d
  condition: evt.type=execve and proc.name=bash and container.id!=host
  output: "shell in %container.name (image=%container.image.repository pod=%k8s.pod.name ns=%k8s.ns.name)"
  priority: WARNING
- rule: Name check
  desc: d
  condition: evt.type=execve and proc.name=cat
  output: "cat %proc.name"
  priority: INFO
- rule: Trail stopped
  desc: d
  condition: ct.name=StopLogging
  output: "stopped by %ct.user"
  priority: CRITICAL
  source: aws_cloudtrail
"""

ORIGIN = Origin("falconet.events.syscall.v1", 2, 41, b"node-a")


class Holder:
    def __init__(self, text: str = RULES) -> None:
        self.engine = Engine(EngineConfig(rule_matching="all", suggested_output=False))
        assert self.engine.load_texts([("r.yaml", text)]).ok


def pipeline(tables=None, **kw) -> Pipeline:
    enricher = MetadataEnricher(tables) if tables is not None else None
    return Pipeline(Holder(), enricher, "w-test", **kw)


def env(ev) -> dict:
    return ev.to_json_obj()


def shell(cid: str = "3ad7b26ded6d", **kw) -> dict:
    return env(syscall("execve", proc={"name": "bash"}, container=cid, **kw))


def dead(out) -> list[dict]:
    return [orjson.loads(r) for r in out.dead_letters]


def test_batch_of_envelopes() -> None:
    value = orjson.dumps([shell(num=1), env(syscall("execve", proc={"name": "cat"}, num=2))])
    out = pipeline().process(value, ORIGIN)
    assert out.events == 2 and [d.rule for d in out.detections] == ["Shell in container", "Name check"]
    assert out.dead_letters == []


def test_single_envelope_and_raw_cloudtrail_records() -> None:
    p = pipeline()
    assert p.process(orjson.dumps(shell()), ORIGIN).events == 1
    ct = orjson.loads(next((FIXTURES / "cloudtrail").glob("*.json")).read_bytes())
    out = p.process(orjson.dumps(ct), Origin("falconet.events.aws_cloudtrail.v1", 0, 7))
    assert out.events == len(ct["Records"]) and "Trail stopped" in [d.rule for d in out.detections]


@pytest.mark.parametrize(
    "value,reason",
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b'["caf\xe9"]', "not JSON"),  # invalid UTF-8 inside a string
        (b"42", "expected a JSON object"),
        (b'{"hello": 1}', "unrecognized record"),
    ],
)
def test_undecodable_records_go_to_the_dlq(value: bytes, reason: str) -> None:
    out = pipeline().process(value, ORIGIN)
    [d] = dead(out)
    assert d["stage"] == "decode" and reason in d["reason"]
    assert (d["topic"], d["partition"], d["offset"]) == ("falconet.events.syscall.v1", 2, 41)
    assert base64.b64decode(d["original_b64"]) == value and d["key_b64"] == base64.b64encode(b"node-a").decode()
    assert d["worker"] == "w-test" and out.detections == []


def test_oversized_record() -> None:
    value = orjson.dumps([shell()] * 10)
    [d] = dead(pipeline(max_record_bytes=1000).process(value, ORIGIN))
    assert d["stage"] == "decode" and "larger than worker.max_record_bytes" in d["reason"]
    assert d["original_bytes"] == len(value)


def test_bad_items_inside_a_batch_do_not_lose_the_good_ones() -> None:
    bad_schema = dict(shell(), ts="yesterday")
    value = orjson.dumps([shell(num=1), bad_schema, {"nope": True}, env(syscall("execve", proc={"name": "cat"}))])
    out = pipeline().process(value, ORIGIN)
    assert [d.rule for d in out.detections] == ["Shell in container", "Name check"]
    dl = dead(out)
    assert [(d["index"], d["stage"]) for d in dl] == [(1, "decode"), (2, "decode")]
    assert "'ts' must be a non-negative integer" in dl[0]["reason"]
    assert orjson.loads(base64.b64decode(dl[0]["original_b64"]))["ts"] == "yesterday"


def _by_reference(item: dict, j: int) -> dict:
    """``item`` as a sensor writes it when envelope ``j`` of the record has its context."""
    ev = {k: v for k, v in item["event"].items() if k not in shared_context.CONTEXT_KEYS}
    return dict(item, event=dict(ev, ctx=j))


def test_context_references_inside_a_batch_are_resolved() -> None:
    """A syscall batch whose events share their thread's context (docs/events.md "Context
    by reference") evaluates like the self-contained one; a broken reference is a dead
    letter with the reason, and the rest of the record still flows."""
    first = shell(num=1)
    later = shell(num=2)
    good = orjson.dumps([first, _by_reference(later, 0)])
    out = pipeline().process(good, ORIGIN)
    assert [d.rule for d in out.detections] == ["Shell in container"] * 2 and out.dead_letters == []
    cat = env(syscall("execve", proc={"name": "cat"}, num=5))
    bad = orjson.dumps([first, _by_reference(later, 7), _by_reference(later, 1), cat])
    out = pipeline().process(bad, ORIGIN)
    assert [d.rule for d in out.detections] == ["Shell in container", "Name check"]
    dl = dead(out)
    assert [(d["index"], d["stage"]) for d in dl] == [(1, "decode"), (2, "decode")]
    assert "index of an earlier event of the same record (0 to 0), got 7" in dl[0]["reason"]
    assert "refers to item 1, which is invalid itself" in dl[1]["reason"]
    assert orjson.loads(base64.b64decode(dl[0]["original_b64"]))["event"]["ctx"] == 7


def test_evaluation_error_keeps_other_detections() -> None:
    broken = shell()
    broken["event"]["proc"] = "not an object"
    out = pipeline().process(orjson.dumps([broken]), ORIGIN)
    [d] = dead(out)
    assert d["stage"] == "evaluate" and d["index"] == 0 and d["event_id"] == broken["id"]
    assert {f["rule"] for f in d["details"]} == {"Shell in container", "Name check"}


def test_event_numbers_are_assigned_per_source() -> None:
    p = pipeline()
    events = [shell(num=0), shell(num=0)]
    for e in events:
        e.pop("num", None)
    p.process(orjson.dumps(events), ORIGIN)
    assert p._numbers["syscall"] == 2


def test_enrichment_from_tables() -> None:
    tables = {
        "containers": {b"3ad7b26ded6d": orjson.dumps({"id": "3ad7b26ded6d", "name": "web",
                                                      "image": {"repository": "shop/web", "tag": "1.8"},
                                                      "pod_uid": "uid-1"})},
        "pods": {b"uid-1": orjson.dumps({"uid": "uid-1", "name": "web-7d9f", "namespace": "shop"})},
        "namespaces": {b"shop": orjson.dumps({"name": "shop", "labels": {"team": "payments"}})},
        "nodes": {b"node-a": orjson.dumps({"name": "node-a", "provider_id": "aws:///eu-west-1a/i-0abc"})},
    }  # fmt: skip
    out = pipeline(tables).process(orjson.dumps([shell()]), ORIGIN)
    [d] = out.detections
    assert d.output.endswith("shell in web (image=shop/web pod=web-7d9f ns=shop)")
    assert d.enrichment["k8s"]["ns"]["labels"] == {"team": "payments"}
    assert d.enrichment["node"]["provider_id"] == "aws:///eu-west-1a/i-0abc"


def test_inline_enrichment_wins_and_unknown_keys_are_fine() -> None:
    tables = {"containers": {b"3ad7b26ded6d": orjson.dumps({"name": "from-table", "pod_uid": "none"})}}
    ev = shell(enrichment={"container": {"id": "3ad7b26ded6d", "name": "recorded"}})
    [d] = pipeline(tables).process(orjson.dumps([ev]), ORIGIN).detections
    assert "shell in recorded" in d.output


def test_enrichment_of_cloudtrail_and_audit() -> None:
    tables = {
        "accounts": {b"123456789012": orjson.dumps({"id": "123456789012", "environment": "production"})},
        "identities": {b"arn:aws:iam::123456789012:user/alice": orjson.dumps({"team": "platform"})},
    }  # fmt: skip
    rec = {"eventVersion": "1.09", "eventTime": "2024-03-01T10:00:00Z", "eventType": "AwsApiCall",
           "eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com", "eventID": "x",
           "recipientAccountId": "123456789012",
           "userIdentity": {"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::123456789012:user/alice"}}  # fmt: skip
    [d] = pipeline(tables).process(orjson.dumps(rec), Origin("ct", 0, 0)).detections
    assert d.enrichment == {"cloud": {"account": {"id": "123456789012", "environment": "production"}},
                            "identity": {"team": "platform"}}  # fmt: skip


def test_node_cloud_identity_and_assumed_role_owner() -> None:
    """The node's instance identity joins by host; a CloudTrail event by an assumed-role
    session gets the owner of the role (the session ARN never names the role's path)."""
    role = "arn:aws:iam::123456789012:role/deploy/Deployer"
    tables = {
        "instances": {b"node-a": orjson.dumps({"name": "node-a", "cloud": {
            "provider": "aws", "account_id": "123456789012", "instance_id": "i-0abc"}})},
        "identities": {
            b"arn:aws:sts::123456789012:assumed-role/Deployer":
                orjson.dumps({"principal": role, "kind": "role", "owner": "team-ci"}),
        },
    }  # fmt: skip
    [d] = pipeline(tables).process(orjson.dumps([shell()]), ORIGIN).detections
    assert d.enrichment["node"]["cloud"]["instance_id"] == "i-0abc"
    rec = {"eventVersion": "1.09", "eventTime": "2024-03-01T10:00:00Z", "eventType": "AwsApiCall",
           "eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com", "eventID": "y",
           "recipientAccountId": "123456789012",
           "userIdentity": {"type": "AssumedRole",
                            "arn": "arn:aws:sts::123456789012:assumed-role/Deployer/ci-42"}}  # fmt: skip
    [d] = pipeline(tables).process(orjson.dumps(rec), Origin("ct", 0, 0)).detections
    assert d.enrichment["identity"]["owner"] == "team-ci"


class TestRulesets:
    def test_round_trip_and_version(self) -> None:
        rs = Ruleset.of("default", [("a.yaml", RULES)])
        back = Ruleset.decode(rs.encode())
        assert back.files == rs.files and back.version == rs.version and len(rs.version) == 16
        assert Ruleset.of("default", [("a.yaml", RULES + "\n")]).version != rs.version

    @pytest.mark.parametrize("value", [b"x", b"{}", b'{"name": "d", "version": "1", "files": [{"name": 1}]}'])
    def test_bad_records(self, value: bytes) -> None:
        with pytest.raises(RulesetError):
            Ruleset.decode(value)

    def test_holder_swaps_only_valid_sets(self) -> None:
        holder = RulesetHolder(EngineConfig())
        assert holder.apply(Ruleset.of("default", [("a.yaml", RULES)]), "files").ok
        good = holder.engine
        res = holder.apply(Ruleset.of("default", [("b.yaml", "- rule: broken\n  condition: (\n")]), "push")
        assert not res.ok and holder.engine is good
        assert holder.state.refused_version and holder.state.refused_errors
        assert holder.state.origin == "files" and holder.state.rules == 3

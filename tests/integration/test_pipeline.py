"""The pipeline on the real broker: workers, tables, DLQ, rule pushes, record and replay."""

from __future__ import annotations

import base64
import signal
from pathlib import Path

import orjson

from falconet.cli_common import bundled_rules_dir
from falconet.demo import scenario_inputs
from falconet.inputs import RecordDecoder
from falconet.rules.engine import Engine, EngineConfig
from falconet.run import run_files
from falconet.streams.topics import DETECTIONS, DLQ, events_topic, meta_topic, specs
from tests.helpers import syscall
from tests.integration.harness import (
    Stack,
    group_assignment,
    reader,
    status_of,
    wait_for,
)

CAT_RULE = """
- rule: Cat ran
  desc: cat was executed
  condition: evt.type=execve and proc.name=cat
  output: "cat ran (container=%container.name image=%container.image.repository pod=%k8s.pod.name ns=%k8s.ns.name node=%evt.hostname)"
  priority: WARNING
"""
DOG_RULE = CAT_RULE.replace("cat", "dog").replace("Cat", "Dog")


def exec_event(i: int, name: str = "cat", host: str = "node-a", container: str = "host") -> dict:
    return syscall("execve", proc={"name": name, "pid": 1000 + i}, num=i + 1, host=host,
                   container=container).to_json_obj()  # fmt: skip


def batches(events: list[dict], size: int) -> list[bytes]:
    return [orjson.dumps(events[i : i + size]) for i in range(0, len(events), size)]


def rules_file(tmp: Path, text: str, name: str = "rules.yaml") -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def test_scenario_through_kafka_matches_falconet_run(stack: Stack) -> None:
    """The bundled scenario replayed through Kafka gives what `falconet run` gives."""
    engine = Engine(EngineConfig(rule_matching="all"))
    assert engine.load([bundled_rules_dir()]).ok
    offline: set[tuple[str, str]] = set()
    run_files(engine, scenario_inputs(), lambda d: offline.add((d.rule, d.event_id)), lambda m: None,
              RecordDecoder(host="collector"))  # fmt: skip
    assert len(offline) == 51

    w = stack.start_worker("w1", env={"FALCONET_RULES_MATCHING": "all"})
    r = stack.falconet("replay", *scenario_inputs())
    assert r.returncode == 0, r.stderr
    assert "388 events" in r.stderr
    with reader(stack, DETECTIONS) as read:
        seen = read(
            until=lambda s: len({x["id"] for x in s}) >= len(offline), timeout=90, workers=[w]
        )
    online = {(x["rule"], x["event_id"]) for x in seen}
    assert online == offline, stack.log_of("w1")[-3000:]


def test_worker_killed_mid_stream_loses_nothing(stack: Stack) -> None:
    rules = rules_file(stack.tmp, CAT_RULE)
    events = [exec_event(i, host=f"node-{i % 7}") for i in range(3000)]
    stack.produce(events_topic("syscall"), [(e["host"].encode(), b) for e, b in
                                            zip(events[::10], batches(events, 10), strict=True)])  # fmt: skip
    w1 = stack.start_worker("w1", "--rules", rules)
    with reader(stack, DETECTIONS) as read:
        read(until=lambda s: len(s) >= 300, timeout=90, workers=[w1])
        stack.stop(w1, signal.SIGKILL)  # mid-stream, uncommitted work included
        w2 = stack.start_worker("w2", "--rules", rules)
        seen = read(until=lambda s: len({x["id"] for x in s}) >= 3000, timeout=120, workers=[w2])
    ids = [x["id"] for x in seen]
    assert len(set(ids)) == 3000, f"lost {3000 - len(set(ids))} detections"
    duplicates = len(ids) - len(set(ids))
    print(f"redelivered after the kill: {duplicates} duplicate detections (same ids)")
    assert {x["event_id"] for x in seen} == {e["id"] for e in events}


def test_two_workers_share_the_partitions(stack: Stack) -> None:
    rules = rules_file(stack.tmp, CAT_RULE)
    w1 = stack.start_worker("w1", "--rules", rules)
    w2 = stack.start_worker("w2", "--rules", rules)

    def split() -> bool:
        members = group_assignment(stack)
        return len(members) == 2 and all(members.values())

    wait_for(split, 90, "two group members each holding event partitions")
    members = group_assignment(stack)
    a, b = members.values()
    assert not a & b and len(a | b) == 9  # 3 event topics x 3 partitions, no overlap
    events = [exec_event(i, host=f"node-{i % 12}") for i in range(1200)]
    with reader(stack, DETECTIONS) as read:
        stack.produce(
            events_topic("syscall"), [(e["host"].encode(), orjson.dumps([e])) for e in events]
        )
        seen = read(
            until=lambda s: len({x["id"] for x in s}) >= 1200, timeout=120, workers=[w1, w2]
        )
    assert len({x["id"] for x in seen}) == 1200

    def both_busy() -> bool:
        st = status_of(stack)
        return all(st.get(w, {}).get("counters", {}).get("events", 0) > 0 for w in ("w1", "w2"))

    wait_for(both_busy, 40, "both workers to report events")
    st = status_of(stack)
    total = sum(st[w]["counters"]["events"] for w in ("w1", "w2"))
    assert total >= 1200
    # each worker reports the group's consumer lag per event topic (measured every 15 s: the
    # first status records of a busy worker can come before its first measurement)
    topics = {stack.topic(events_topic(s)) for s in ("syscall", "aws_cloudtrail", "k8s_audit")}
    wait_for(lambda: set(status_of(stack).get("w1", {}).get("lag", {})) == topics, 60,
             "w1 to report the lag of every event topic")  # fmt: skip


def test_tables_enrich_and_recover_after_restart(stack: Stack) -> None:
    rules = rules_file(stack.tmp, CAT_RULE)
    meta = {
        "containers": ("3ad7b26ded6d", {"id": "3ad7b26ded6d", "name": "web", "pod_uid": "uid-1",
                                        "image": {"repository": "registry.example.com/shop/web", "tag": "1.8"}}),
        "pods": ("uid-1", {"uid": "uid-1", "name": "web-7d9f", "namespace": "shop"}),
        "namespaces": ("shop", {"name": "shop", "labels": {"team": "payments"}}),
        "nodes": ("node-a", {"name": "node-a", "provider_id": "aws:///eu-west-1a/i-0abc"}),
    }  # fmt: skip
    for table, (key, value) in meta.items():
        stack.produce(meta_topic(table), [(key.encode(), orjson.dumps(value))])
    w1 = stack.start_worker("w1", "--rules", rules)
    expected_text = "cat ran (container=web image=registry.example.com/shop/web pod=web-7d9f ns=shop node=node-a)"
    with reader(stack, DETECTIONS) as read:

        def complete(x: dict) -> bool:  # each table fills on its own: wait for all four joins
            return expected_text in x["output"] and "node" in x.get("enrichment", {})

        def enriched(s: list) -> bool:
            return any(complete(x) for x in s)

        # the tables fill as the worker reads the meta topics: retry until the join shows
        for i in range(60):
            stack.produce(
                events_topic("syscall"),
                [(b"node-a", orjson.dumps([exec_event(i, container="3ad7b26ded6d")]))],
            )
            if read(until=enriched, timeout=2, workers=[w1]) and enriched(read(timeout=0.1)):
                break
        assert enriched(read(timeout=0.1)), stack.log_of("w1")[-3000:]
        hit = next(x for x in read(timeout=0.1) if complete(x))
        assert hit["enrichment"]["k8s"]["ns"]["labels"] == {"team": "payments"}
        assert hit["enrichment"]["node"]["provider_id"] == "aws:///eu-west-1a/i-0abc"

        # restart: a new process rebuilds the tables from their changelog
        assert stack.stop(w1) == 0
        w2 = stack.start_worker("w2", "--rules", rules)
        stack.produce(
            events_topic("syscall"),
            [(b"node-a", orjson.dumps([exec_event(999, container="3ad7b26ded6d")]))],
        )
        seen = read(
            until=lambda s: any(x["event_id"] == "node-a-1000" for x in s), timeout=90, workers=[w2]
        )
        after = next(x for x in seen if x["event_id"] == "node-a-1000")
        assert expected_text in after["output"], after["output"]


def test_malformed_records_go_to_the_dlq(stack: Stack) -> None:
    rules = rules_file(stack.tmp, CAT_RULE)
    good = [exec_event(i) for i in range(4)]
    wrong_schema = dict(exec_event(90), ts="yesterday")
    big = orjson.dumps([dict(exec_event(91), padding="x" * (5 * 1024 * 1024))])
    assert len(big) > 5 * 1024 * 1024
    stack.produce(events_topic("syscall"), [
        (b"node-a", orjson.dumps([good[0]])),
        (b"node-a", b"{this is not json"),
        (b"node-a", orjson.dumps([good[1], wrong_schema])),
        (b"node-a", big),
        (b"node-a", b'[{"source": "syscall", "type": "execve", "x": "caf\xe9"}]'),
        (b"node-a", orjson.dumps([good[2], good[3]])),
    ])  # fmt: skip
    w = stack.start_worker("w1", "--rules", rules)
    with reader(stack, DETECTIONS) as read:
        seen = read(until=lambda s: len(s) >= 4, timeout=90, workers=[w])
    assert sorted(x["event_id"] for x in seen) == sorted(e["id"] for e in good)
    with reader(stack, DLQ) as read:
        dead = read(until=lambda s: len(s) >= 4, timeout=30)
    reasons = sorted((d["stage"], d["reason"].split(":")[0]) for d in dead)
    assert reasons == sorted([
        ("decode", "not JSON"),
        ("decode", "'ts' must be a non-negative integer (nanoseconds since the epoch)"),
        ("decode", f"record of {len(big)} bytes is larger than worker.max_record_bytes (4194304)"),
        ("decode", "not JSON"),
    ]), reasons  # fmt: skip
    by_reason = {d["reason"].split(":")[0]: d for d in dead}
    assert base64.b64decode(by_reason["not JSON"]["original_b64"]) in (
        b"{this is not json", b'[{"source": "syscall", "type": "execve", "x": "caf\xe9"}]')  # fmt: skip
    assert all(d["topic"] == stack.topic(events_topic("syscall")) and "offset" in d for d in dead)
    r = stack.falconet("dlq")
    assert r.returncode == 0 and "larger than worker.max_record_bytes" in r.stdout


def test_rules_push_swaps_without_restart_and_a_bad_set_changes_nothing(stack: Stack) -> None:
    cat_rules = rules_file(stack.tmp, CAT_RULE, "cat.yaml")
    w = stack.start_worker("w1", "--rules", cat_rules)
    topic = events_topic("syscall")
    with reader(stack, DETECTIONS) as read:
        stack.produce(topic, [(b"node-a", orjson.dumps([exec_event(1, "cat")]))])
        assert read(until=lambda s: len(s) >= 1, timeout=90, workers=[w])[-1]["rule"] == "Cat ran"

        # a bad set is refused by `rules push` itself, with positions
        bad = rules_file(
            stack.tmp,
            "- rule: Broken\n  desc: d\n  condition: proc.name=(\n  output: o\n  priority: INFO\n",
            "bad.yaml",
        )
        r = stack.falconet("rules", "push", bad)
        assert r.returncode == 1 and "bad.yaml:3:14" in r.stderr and "not pushed" in r.stderr

        dog_rules = rules_file(stack.tmp, DOG_RULE, "dog.yaml")
        r = stack.falconet("rules", "push", dog_rules)
        assert r.returncode == 0, r.stderr
        version = r.stdout.split("version ")[1].split()[0]
        wait_for(lambda: status_of(stack).get("w1", {}).get("rules", {}).get("version") == version, 40,
                 "the worker to load the pushed rules")  # fmt: skip
        stack.produce(
            topic, [(b"node-a", orjson.dumps([exec_event(2, "cat"), exec_event(3, "dog")]))]
        )
        seen = read(until=lambda s: len(s) >= 2, timeout=60, workers=[w])
        assert [x["rule"] for x in seen] == ["Cat ran", "Dog ran"]
        assert seen[-1]["event_id"] == "node-a-4"

        # a bad set published behind the validator's back: the worker keeps the good one
        from falconet.streams.rulesets import Ruleset, push

        broken = Ruleset.of("default", [("broken.yaml", "- rule: Broken\n  condition: (\n")])
        push(stack.settings, broken)
        wait_for(lambda: status_of(stack).get("w1", {}).get("rules", {}).get("refused_version") == broken.version,
                 40, "the worker to refuse the bad set")  # fmt: skip
        stack.produce(topic, [(b"node-a", orjson.dumps([exec_event(4, "dog")]))])
        seen = read(until=lambda s: len(s) >= 3, timeout=60, workers=[w])
        assert seen[-1]["rule"] == "Dog ran" and seen[-1]["event_id"] == "node-a-5"
    status = stack.falconet("rules", "status")
    assert status.returncode == 0 and version in status.stdout and "w1" in status.stdout
    assert "refused" in status.stderr


def test_topics_create_is_idempotent(stack: Stack) -> None:
    r = stack.falconet("topics", "create")
    assert r.returncode == 0 and r.stdout.count("exists") == len(specs(stack.config))
    r = stack.falconet("topics", "describe", "--json")
    rows = [orjson.loads(x) for x in r.stdout.splitlines()]
    compact = {x["topic"] for x in rows if x["cleanup.policy"] == "compact"}
    assert stack.topic("rules.v1") in compact and stack.topic("meta.pods.v1") in compact
    assert stack.topic("detections.v1") not in compact


def test_record_and_replay_keep_records_and_timestamps(stack: Stack, tmp_path: Path) -> None:
    events = [exec_event(i) for i in range(25)]
    r = stack.falconet("replay", "-", input=b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    assert r.returncode == 0 and "25 events" in r.stderr, r.stderr
    out = tmp_path / "syscall.jsonl.gz"
    r = stack.falconet("record", "--topic", events_topic("syscall"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    import gzip

    recorded = [orjson.loads(x) for x in gzip.decompress(out.read_bytes()).splitlines()]
    assert sum(len(x["value"]) for x in recorded) == 25  # batches of envelopes
    assert all(x["kind"] == "kafka-record" and x["timestamp"] > 0 for x in recorded)
    r = stack.falconet("replay", str(out), "--topic", "detections.v1")  # any topic will do
    assert r.returncode == 0, r.stderr
    again = stack.tmp / "again.jsonl"
    r = stack.falconet("record", "--topic", "detections.v1", "--out", str(again))
    copies = [orjson.loads(x) for x in again.read_bytes().splitlines()]
    key = lambda x: (x["timestamp"], orjson.dumps(x["value"]))  # noqa: E731
    assert sorted(map(key, copies)) == sorted(map(key, recorded))

"""Context-aware policy on the real broker: a rule set with policy A, then policy B pushed
to rules.v1, changes what a running worker emits — without a restart.

Events carry their Kubernetes context inline (``enrichment``, as a recorded stream does),
so the test does not depend on the metadata tables filling.
"""

from __future__ import annotations

import orjson

from falconet.streams.topics import DETECTIONS, events_topic
from tests.helpers import syscall
from tests.integration.harness import Stack, reader, status_of, wait_for
from tests.integration.test_pipeline import CAT_RULE

POLICY_A = """
- policy: silence-lab
  desc: the lab namespace is noisy by design
  scope: {namespace: [lab, 'lab-*']}
  disable: ['*']
- policy: payments-sink
  scope:
    namespace_labels: 'team=payments'
  route: [splunk-payments]
"""
POLICY_B = """
- policy: raise-production
  scope: {environment: production}
  priority: raise 1
- policy: silence-staging
  scope: {namespace: staging}
  disable: [Cat ran]
"""


def cat_in(ns: str, i: int) -> bytes:
    labels = (
        {"team": "payments", "environment": "production"}
        if ns == "shop"
        else {"environment": "lab"}
    )
    ev = syscall("execve", proc={"name": "cat", "pid": 1000 + i}, num=i, container="3ad7b26ded6d",
                 enrichment={"k8s": {"ns": {"name": ns, "labels": labels}, "cluster": "eu-1"}})  # fmt: skip
    return orjson.dumps([ev.to_json_obj()])


def push(stack: Stack, *files: str) -> str:
    r = stack.falconet("rules", "push", *files)
    assert r.returncode == 0, r.stderr
    return r.stdout.split("version ")[1].split()[0]


def test_policy_push_changes_detections_without_restart(stack: Stack) -> None:
    rules = stack.tmp / "rules.yaml"
    rules.write_text(CAT_RULE)
    policy = stack.tmp / "policy.yaml"
    policy.write_text(POLICY_A)
    version_a = push(stack, str(rules), str(policy))
    w = stack.start_worker("w1")
    wait_for(lambda: status_of(stack).get("w1", {}).get("rules", {}).get("version") == version_a, 60,
             "the worker to run rules + policy A")  # fmt: skip
    topic = events_topic("syscall")
    with reader(stack, DETECTIONS) as read:
        # policy A: lab silenced, the payments namespace routed to its team's sink
        stack.produce(topic, [(b"node-a", cat_in("lab", 1)), (b"node-a", cat_in("shop", 2))])
        seen = read(until=lambda s: len(s) >= 1, timeout=90, workers=[w])
        [a] = seen
        assert a["event_id"] == "node-a-2" and a["routes"] == ["splunk-payments"]
        assert (
            a["priority"] == "Warning"
            and a["environment"] == "production"
            and a["owner"] == "payments"
        )
        assert a["score"] == 20  # warning 4 x production 3 x exposure 1 = 12 -> 20

        # a bad policy is refused by `rules push`, with its position; nothing changes
        bad = stack.tmp / "bad-policy.yaml"
        bad.write_text("- policy: x\n  scope: {namespace: shop}\n  priority: raise lots\n")
        r = stack.falconet("rules", "push", str(rules), str(bad))
        assert r.returncode == 1 and "bad-policy.yaml:3:13" in r.stderr and "not pushed" in r.stderr

        # policy B, pushed while the worker runs: production raised one level, staging
        # silenced, lab no longer silenced
        policy.write_text(POLICY_B)
        version_b = push(stack, str(rules), str(policy))
        wait_for(lambda: status_of(stack).get("w1", {}).get("rules", {}).get("version") == version_b, 60,
                 "the worker to load policy B")  # fmt: skip
        # one key, one partition: the lab detection arrives after staging was evaluated
        stack.produce(topic, [(b"node-a", cat_in("shop", 3)), (b"node-a", cat_in("staging", 4)),
                              (b"node-a", cat_in("lab", 5))])  # fmt: skip
        seen = read(
            until=lambda s: any(x["event_id"] == "node-a-5" for x in s), timeout=60, workers=[w]
        )
    assert w.poll() is None, "the worker restarted"
    by_id = {x["event_id"]: x for x in seen}
    assert sorted(by_id) == ["node-a-2", "node-a-3", "node-a-5"], [x["event_id"] for x in seen]
    shop, lab = by_id["node-a-3"], by_id["node-a-5"]
    assert shop["priority"] == "Error" and shop["output"].split(" ")[1] == "Error"
    assert shop["score"] == 30 and "routes" not in shop  # B has no route
    assert lab["priority"] == "Warning" and lab["environment"] == "lab" and lab["score"] == 7
    assert by_id["node-a-2"]["priority"] == "Warning"  # what was emitted under A stays as it was

"""Policies travel in a rule set: loaded with the rules, swapped with them, refused with them."""

from __future__ import annotations

import orjson

from falconet.priority import Priority
from falconet.rules.engine import EngineConfig
from falconet.streams.dlq import Origin
from falconet.streams.pipeline import Pipeline
from falconet.streams.rulesets import Ruleset, RulesetHolder, compile_ruleset
from tests.helpers import syscall

RULES = """
- rule: Shell in container
  desc: d
  condition: evt.type=execve and proc.name=bash
  output: "shell in %k8s.ns.name"
  priority: WARNING
"""
SILENCE_LAB = "- policy: silence-lab\n  scope: {namespace: lab}\n  disable: ['*']\n"
RAISE_PROD = "- policy: raise-prod\n  scope: {environment: production}\n  priority: raise 1\n"
ORIGIN = Origin("falconet.events.syscall.v1", 0, 1)


def event(ns: str, num: int, env: str | None = None) -> bytes:
    labels = {"environment": env} if env else {}
    ev = syscall("execve", proc={"name": "bash"}, container="3ad7b26ded6d", num=num,
                 enrichment={"k8s": {"ns": {"name": ns, "labels": labels}}})  # fmt: skip
    return orjson.dumps([ev.to_json_obj()])


def test_compile_splits_rules_and_policies() -> None:
    compiled, res = compile_ruleset([("rules.yaml", RULES), ("policy.yaml", SILENCE_LAB)], EngineConfig())
    assert res.ok and [r.name for r in compiled.engine.rules] == ["Shell in container"]
    assert [p.name for p in compiled.policy.policies] == ["silence-lab"]
    assert [f.path for f in res.files] == ["rules.yaml", "policy.yaml"]


def test_holder_swaps_rules_and_policy_together_and_refuses_a_bad_policy() -> None:
    holder = RulesetHolder(EngineConfig())
    pipe = Pipeline(holder, None, "w-test")
    assert holder.apply(Ruleset.of("default", [("r.yaml", RULES), ("a.yaml", SILENCE_LAB)]), "files").ok
    assert holder.state.policies == 1
    assert pipe.process(event("lab", 1), ORIGIN).detections == []
    [d] = pipe.process(event("shop", 2, "production"), ORIGIN).detections
    assert d.priority is Priority.WARNING and d.environment == "production" and d.score == 20

    # policy B: lab is no longer silenced, production is raised; no restart
    assert holder.apply(Ruleset.of("default", [("r.yaml", RULES), ("b.yaml", RAISE_PROD)]), "push").ok
    [d] = pipe.process(event("lab", 3), ORIGIN).detections
    assert d.priority is Priority.WARNING
    [d] = pipe.process(event("shop", 4, "production"), ORIGIN).detections
    assert d.priority is Priority.ERROR and d.score == 30

    # a bad policy is refused like a bad rule: positions, and the running set stays
    active = holder.active
    bad = Ruleset.of("default", [("r.yaml", RULES), ("c.yaml", "- policy: x\n  priority: up 1\n")])
    res = holder.apply(bad, "push")
    assert not res.ok and holder.active is active
    assert holder.state.refused_version == bad.version
    assert holder.state.refused_errors[0].startswith("c.yaml:2:13: error LOAD_ERR_POLICY")
    [d] = pipe.process(event("shop", 5, "production"), ORIGIN).detections
    assert d.priority is Priority.ERROR


def test_a_rule_set_without_policies_still_adds_owner_environment_and_score() -> None:
    holder = RulesetHolder(EngineConfig())
    assert holder.apply(Ruleset.of("default", [("r.yaml", RULES)]), "files").ok
    [d] = Pipeline(holder, None, "w").process(event("shop", 1, "staging"), ORIGIN).detections
    obj = orjson.loads(d.to_json())
    assert obj["environment"] == "staging" and obj["score"] == 13 and "routes" not in obj

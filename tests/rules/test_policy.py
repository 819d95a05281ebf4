"""Context-aware policies applied to detections: scopes, each action, and their order."""

from __future__ import annotations

from typing import Any

import pytest

from falconet.detection import Detection
from falconet.event import Event
from falconet.priority import Priority
from falconet.rules.engine import Engine
from falconet.rules.policy import PolicedEngine, PolicySet, load_policy
from tests.helpers import engine, syscall

RULES = """
- rule: Shell in container
  desc: a shell ran in a container
  condition: evt.type=execve and proc.name in (bash, sh, zsh) and container.id!=host
  output: "shell %proc.name in %k8s.ns.name"
  priority: WARNING
  tags: [container, shell, mitre_execution]
- rule: Read shadow
  desc: shadow read
  condition: evt.type=execve and proc.name=cat
  output: "cat by %user.name"
  priority: ERROR
  tags: [filesystem]
"""
CT_RULES = """
- rule: Trail stopped
  desc: d
  condition: ct.name=StopLogging
  output: "stopped by %ct.user"
  priority: CRITICAL
  source: aws_cloudtrail
"""


@pytest.fixture(scope="module")
def eng() -> Engine:
    return engine(RULES, CT_RULES, rule_matching="all")


def policy(text: str, eng: Engine | None = None) -> PolicySet:
    ps, res = load_policy([("policy.yaml", text)], eng)
    assert res.ok, "\n".join(m.format() for m in res.messages)
    return ps


def pod_event(
    proc: str = "bash",
    ns: str = "shop",
    ns_labels: dict[str, Any] | None = None,
    pod_labels: dict[str, Any] | None = None,
    cluster: str | None = "eu-1",
    node: dict[str, Any] | None = None,
    container: dict[str, Any] | None = None,
    num: int = 1,
) -> Event:
    k8s: dict[str, Any] = {
        "pod": {"name": "web-7d9f", "namespace": ns, "labels": pod_labels or {}},
        "ns": {"name": ns, "labels": ns_labels or {}},
    }
    if cluster:
        k8s["cluster"] = cluster
    enrichment: dict[str, Any] = {"k8s": k8s, "container": {"id": "3ad7b26ded6d", **(container or {})}}
    if node is not None:
        enrichment["node"] = node
    return syscall("execve", proc={"name": proc}, container="3ad7b26ded6d", enrichment=enrichment, num=num)


def run(ps: PolicySet, eng: Engine, ev: Event) -> list[Detection]:
    return ps.apply(ev, eng.process(ev))


# -- scopes -------------------------------------------------------------------------------------
def test_namespace_names_and_globs(eng: Engine) -> None:
    ps = policy("- policy: quiet\n  scope: {namespace: [lab, 'lab-*']}\n  disable: ['*']\n")
    assert run(ps, eng, pod_event(ns="lab")) == []
    assert run(ps, eng, pod_event(ns="lab-42")) == []
    assert [d.rule for d in run(ps, eng, pod_event(ns="laboratory"))] == ["Shell in container"]
    # an event without a namespace is outside every namespace scope
    host = syscall("execve", proc={"name": "cat"})
    assert [d.rule for d in run(ps, eng, host)] == ["Read shadow"]


def test_cluster_and_node_scopes(eng: Engine) -> None:
    ps = policy(
        """
- policy: eu-only
  scope: {cluster: 'eu-*', node: [node-a]}
  priority: raise 1
"""
    )
    [d] = run(ps, eng, pod_event(cluster="eu-1"))
    assert d.priority is Priority.ERROR
    [d] = run(ps, eng, pod_event(cluster="us-2"))
    assert d.priority is Priority.WARNING
    [d] = run(ps, eng, pod_event(cluster=None))
    assert d.priority is Priority.WARNING


@pytest.mark.parametrize(
    "selector,labels,hit",
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "api"}, False),
        ("app!=web", {}, True),  # as in Kubernetes, a missing label satisfies !=
        ("app!=web", {"app": "web"}, False),
        ("tier in (frontend, edge)", {"tier": "edge"}, True),
        ("tier in (frontend,edge)", {"tier": "db"}, False),
        ("tier notin (db)", {}, True),
        ("canary", {"canary": "true"}, True),
        ("!canary", {"canary": "true"}, False),
        ("app=web,!canary,tier in (a,b)", {"app": "web", "tier": "b"}, True),
        ("app=web,!canary,tier in (a,b)", {"app": "web", "tier": "b", "canary": "1"}, False),
    ],
)
def test_label_selector_strings(eng: Engine, selector: str, labels: dict, hit: bool) -> None:
    ps = policy(f"- policy: p\n  scope:\n    pod_labels: '{selector}'\n  route: [matched]\n")
    [d] = run(ps, eng, pod_event(pod_labels=labels))
    assert (d.routes == ("matched",)) is hit


def test_label_selector_mappings_on_namespace_and_node(eng: Engine) -> None:
    ps = policy(
        """
- policy: p
  scope:
    namespace_labels:
      matchLabels: {team: payments}
      matchExpressions:
        - {key: environment, operator: In, values: [production, staging]}
        - {key: legacy, operator: DoesNotExist}
    node_labels:
      matchExpressions:
        - {key: node.kubernetes.io/instance-type, operator: Exists}
  route: [payments]
"""
    )
    node = {"name": "node-a", "labels": {"node.kubernetes.io/instance-type": "m6i.xlarge"}}
    ns_labels = {"team": "payments", "environment": "production"}
    [d] = run(ps, eng, pod_event(ns_labels=ns_labels, node=node))
    assert d.routes == ("payments",)
    [d] = run(ps, eng, pod_event(ns_labels={**ns_labels, "legacy": "yes"}, node=node))
    assert d.routes == ()
    [d] = run(ps, eng, pod_event(ns_labels=ns_labels, node={"name": "node-a", "labels": {}}))
    assert d.routes == ()


def test_account_scopes_on_a_cloudtrail_detection(eng: Engine) -> None:
    ps = policy(
        """
- policy: prod-accounts
  scope:
    account: ['4182957301*']
    account_environment: production
    account_criticality: [high, critical]
    source: aws_cloudtrail
  priority: set emergency
  route: [soc-pager]
"""
    )
    record = {"eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com",
              "recipientAccountId": "418295730164", "userIdentity": {"type": "IAMUser", "userName": "bob"}}  # fmt: skip
    account = {"id": "418295730164", "environment": "production", "criticality": "high", "owner": "team-pay"}
    ev = Event("aws_cloudtrail", "StopLogging", 1, "collector", "ct-1", record, {"cloud": {"account": account}})
    [d] = run(ps, eng, ev)
    assert d.priority is Priority.EMERGENCY and d.routes == ("soc-pager",)
    assert d.output.split(" ", 2)[1] == "Emergency"  # the alert text follows the priority
    assert d.owner == "team-pay" and d.environment == "production"
    # the account id alone (no inventory entry): the environment criteria do not hold
    bare = Event("aws_cloudtrail", "StopLogging", 1, "collector", "ct-2", record, {})
    [d] = run(ps, eng, bare)
    assert d.priority is Priority.CRITICAL and d.routes == ()


def test_rule_tag_and_priority_scopes(eng: Engine) -> None:
    ps = policy(
        """
- policy: by-tag
  scope: {tags: [shell]}
  route: [shell-sink]
- policy: by-rule
  scope: {rules: ['Read *']}
  route: [files]
- policy: severe
  scope: {priority: '>= error'}
  route: [pager]
"""
    )
    shell = run(ps, eng, pod_event(proc="bash"))
    cat = run(ps, eng, pod_event(proc="cat"))
    assert [d.routes for d in shell] == [("shell-sink",)]
    assert [d.routes for d in cat] == [("files", "pager")]


# -- actions --------------------------------------------------------------------------------------
def test_disable_by_name_and_tag_is_counted(eng: Engine) -> None:
    ps = policy(
        """
- policy: no-shells-in-ci
  scope: {namespace: ci}
  disable: [tag:shell]
- policy: no-cat
  disable: Read shadow
""",
        eng,
    )
    assert run(ps, eng, pod_event(ns="ci", proc="bash")) == []
    assert [d.rule for d in run(ps, eng, pod_event(ns="shop", proc="bash"))] == ["Shell in container"]
    assert run(ps, eng, pod_event(ns="shop", proc="cat")) == []
    assert ps.suppressed == {
        ("no-shells-in-ci", "Shell in container", "disabled"): 1,
        ("no-cat", "Read shadow", "disabled"): 1,
    }


def test_suppression_metric() -> None:
    from prometheus_client import REGISTRY

    eng_ = engine(RULES)
    ps = policy("- policy: metric-check\n  disable: [Shell in container]\n")
    before = REGISTRY.get_sample_value(
        "falconet_policy_suppressed_total",
        {"policy": "metric-check", "rule": "Shell in container", "reason": "disabled"},
    )
    assert run(ps, eng_, pod_event()) == []
    after = REGISTRY.get_sample_value(
        "falconet_policy_suppressed_total",
        {"policy": "metric-check", "rule": "Shell in container", "reason": "disabled"},
    )
    assert (after or 0) - (before or 0) == 1


def test_priority_raise_lower_set_and_clamping(eng: Engine) -> None:
    for change, expect in [
        ("raise 1", Priority.ERROR),
        ("raise 9", Priority.EMERGENCY),
        ("lower 2", Priority.INFORMATIONAL),
        ("lower 10", Priority.DEBUG),
        ("set critical", Priority.CRITICAL),
        ("notice", Priority.NOTICE),
    ]:
        ps = policy(f"- policy: p\n  scope: {{rules: [Shell in container]}}\n  priority: {change}\n")
        [d] = run(ps, eng, pod_event())
        assert d.priority is expect, change
        assert d.output.startswith(d.output.split(" ")[0] + f" {expect.title} shell bash")


def test_exceptions_like_falco(eng: Engine) -> None:
    ps = policy(
        """
- policy: known-shells
  scope: {rules: [Shell in container]}
  exceptions:
    - name: debug-namespaces
      fields: [proc.name, k8s.ns.name]
      comps: [=, in]
      values:
        - [zsh, [tools, debug]]
    - name: single-field
      fields: k8s.pod.label[app]
      comps: startswith
      values: [batch-]
""",
        eng,
    )
    assert run(ps, eng, pod_event(proc="zsh", ns="debug")) == []
    assert len(run(ps, eng, pod_event(proc="bash", ns="debug"))) == 1
    assert len(run(ps, eng, pod_event(proc="zsh", ns="shop"))) == 1
    assert run(ps, eng, pod_event(pod_labels={"app": "batch-nightly"})) == []
    assert ps.suppressed == {
        ("known-shells", "Shell in container", "exception"): 2,
    }


def test_exception_on_a_field_the_source_lacks_never_matches(eng: Engine) -> None:
    ps = policy(
        "- policy: p\n  exceptions:\n    - {name: e, fields: [proc.name], values: [[x]]}\n"
    )
    record = {"eventName": "StopLogging", "eventSource": "cloudtrail.amazonaws.com"}
    ev = Event("aws_cloudtrail", "StopLogging", 1, "c", "ct-1", record, {})
    assert [d.rule for d in run(ps, eng, ev)] == ["Trail stopped"]


def test_route_and_set(eng: Engine) -> None:
    ps = policy(
        """
- policy: team-sink
  scope: {namespace_labels: 'team=payments'}
  route: [splunk-payments, pager]
- policy: also
  route: [pager, archive]
- policy: lab-override
  scope: {namespace: 'lab-*'}
  set: {environment: lab, owner: research}
"""
    )
    [d] = run(ps, eng, pod_event(ns_labels={"team": "payments"}))
    assert d.routes == ("splunk-payments", "pager", "archive")
    assert d.owner == "payments"  # the namespace label names the owner
    [d] = run(ps, eng, pod_event(ns="lab-1", ns_labels={"environment": "production"}))
    assert (d.environment, d.owner) == ("lab", "research")
    obj = d.to_json_obj()
    assert obj["environment"] == "lab" and obj["routes"] == ["pager", "archive"]
    assert Detection.from_json_obj(obj) == d


# -- order and combination --------------------------------------------------------------------------
def test_disable_wins_over_earlier_and_later_policies(eng: Engine) -> None:
    ps = policy(
        """
- policy: raise-all
  priority: raise 2
  route: [pager]
- policy: silence-lab
  scope: {namespace: lab}
  disable: ['*']
- policy: raise-again
  priority: raise 1
"""
    )
    assert run(ps, eng, pod_event(ns="lab")) == []
    [d] = run(ps, eng, pod_event(ns="shop"))
    assert d.priority is Priority.ALERT  # warning raised 2 then 1
    assert ps.suppressed == {("silence-lab", "Shell in container", "disabled"): 1}


def test_changes_compose_in_file_order_and_scopes_see_them(eng: Engine) -> None:
    ps = policy(
        """
- policy: prod-up
  scope: {environment: production}
  priority: raise 1
- policy: page-on-error
  scope: {priority: '>= error'}
  route: [pager]
- policy: then-down
  priority: lower 2
- policy: staging-is-prod
  scope: {namespace: staging-shop}
  set: {environment: production}
- policy: prod-route
  scope: {environment: production}
  route: [prod]
"""
    )
    [d] = run(ps, eng, pod_event(ns_labels={"environment": "production"}))
    # warning → error (prod-up) → routed to pager (it is an error by then) → notice
    assert d.priority is Priority.NOTICE and d.routes == ("pager", "prod")
    [d] = run(ps, eng, pod_event(ns="staging-shop"))
    assert d.priority is Priority.INFORMATIONAL and d.routes == ("prod",)
    assert d.environment == "production"


def test_disabled_policy_does_nothing(eng: Engine) -> None:
    ps = policy("- policy: off\n  enabled: false\n  disable: ['*']\n")
    assert len(run(ps, eng, pod_event())) == 1


def test_without_policies_detections_still_get_context(eng: Engine) -> None:
    [d] = run(PolicySet(), eng, pod_event(pod_labels={"team": "shop-team"},
                                          ns_labels={"env": "staging"}))  # fmt: skip
    assert (d.owner, d.environment, d.priority) == ("shop-team", "staging", Priority.WARNING)
    assert d.score == 13  # warning 4 x staging 2 x exposure 1 = 8; 8 x 100 / 60 = 13.3
    obj = d.to_json_obj()
    assert obj["score"] == d.score and "routes" not in obj


def test_policed_engine_for_falconet_run(eng: Engine) -> None:
    ps = policy("- policy: p\n  scope: {namespace: lab}\n  disable: ['*']\n")
    pe = PolicedEngine(eng, ps)
    assert pe.process(pod_event(ns="lab")) == []
    assert [d.rule for d in pe.process(pod_event(ns="shop"))] == ["Shell in container"]

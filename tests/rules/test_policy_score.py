"""Owner, environment and falconet.score: where they come from, and pinned score examples."""

from __future__ import annotations

from typing import Any

import pytest

from falconet.event import Event
from falconet.priority import Priority
from falconet.rules.policy import load_policy
from falconet.rules.policy_context import Context, context_of, score
from falconet.rules.policy_model import Settings
from tests.helpers import syscall

P = Priority


@pytest.mark.parametrize(
    "priority,environment,ctx,expected",
    [
        # weight(priority) x weight(environment) x exposure x 100 / 60, halves up
        (P.EMERGENCY, "production", Context(privileged=True, internet_facing=True), 100),  # 10x3x2
        (P.CRITICAL, "production", Context(), 40),  # 8x3x1 = 24
        (P.CRITICAL, "production", Context(privileged=True), 60),  # 8x3x1.5 = 36
        (P.WARNING, "production", Context(), 20),  # 4x3 = 12
        (P.WARNING, "prod", Context(host_network=True), 25),  # 4x3x1.25 = 15
        (P.WARNING, "staging", Context(), 13),  # 8 -> 13.33
        (P.WARNING, "", Context(), 13),  # unknown environment weighs like staging
        (P.WARNING, "lab", Context(), 7),  # 4 -> 6.67
        (P.ERROR, "dev", Context(account_criticality="critical"), 20),  # 6x1x2 = 12
        (P.ERROR, "production", Context(account_criticality="High"), 45),  # 6x3x1.5 = 27
        (P.NOTICE, "staging", Context(account_criticality="medium"), 12),  # 3x2x1.2 = 7.2
        (P.INFORMATIONAL, "production", Context(), 10),  # 2x3 = 6
        (P.DEBUG, "lab", Context(), 2),  # 1 -> 1.67
        (P.DEBUG, "lab", Context(), 2),
        # exposure is capped at 2: privileged x host network x internet-facing = 2.8 -> 2
        (P.ALERT, "production", Context(privileged=True, host_network=True, internet_facing=True), 90),
    ],
)
def test_score_examples(priority: Priority, environment: str, ctx: Context, expected: int) -> None:
    assert score(priority, environment, ctx) == expected


def test_score_is_bounded_and_monotonic_in_priority() -> None:
    ctx = Context(privileged=True, host_network=True, internet_facing=True, account_criticality="critical")
    scores = [score(p, "production", ctx) for p in Priority]
    assert scores == sorted(scores, reverse=True) and max(scores) == 100 and min(scores) >= 0


def enriched(enr: dict[str, Any], source: str = "syscall") -> Event:
    if source == "syscall":
        return syscall("execve", enrichment=enr)
    return Event(source, "x", 1, "collector", "e-1", {}, enr)


def test_owner_precedence() -> None:
    s = Settings()
    full = {
        "k8s": {"pod": {"labels": {"team": "pod-team"}}, "ns": {"labels": {"owner": "ns-owner"}}},
        "identity": {"owner": "alice@example.com"},
        "cloud": {"account": {"owner": "account-owner"}},
        "node": {"cloud": {"tags": {"Owner": "node-owner"}}},
    }
    assert context_of(enriched(full), s).owner == "pod-team"
    del full["k8s"]["pod"]
    assert context_of(enriched(full), s).owner == "ns-owner"
    del full["k8s"]
    assert context_of(enriched(full), s).owner == "alice@example.com"
    del full["identity"]
    assert context_of(enriched(full), s).owner == "account-owner"
    del full["cloud"]
    assert context_of(enriched(full), s).owner == "node-owner"  # tag keys match any case
    # the configured keys, in their order: "owner" before "team" by default
    both = {"k8s": {"pod": {"labels": {"team": "t", "owner": "o"}}}}
    assert context_of(enriched(both), s).owner == "o"
    assert context_of(enriched(both), Settings(owner_keys=("team",))).owner == "t"


def test_environment_precedence() -> None:
    s = Settings()
    enr = {
        "k8s": {"ns": {"labels": {"env": "staging"}}, "pod": {"labels": {"environment": "dev"}}},
        "cloud": {"account": {"environment": "production"}},
        "node": {"cloud": {"tags": {"Environment": "lab"}}},
    }
    assert context_of(enriched(enr), s).environment == "staging"
    del enr["k8s"]["ns"]
    assert context_of(enriched(enr), s).environment == "dev"
    del enr["k8s"]
    assert context_of(enriched(enr), s).environment == "production"
    del enr["cloud"]
    assert context_of(enriched(enr), s).environment == "lab"


def test_context_fallbacks_from_the_event() -> None:
    s = Settings()
    ct = Event("aws_cloudtrail", "x", 1, "c", "e", {"recipientAccountId": "123456789012"}, {})
    assert context_of(ct, s).account == "123456789012"
    audit = Event("k8s_audit", "create", 1, "c", "e", {"objectRef": {"namespace": "kube-system"}}, {},
                  {"cluster": "eu-1"})  # fmt: skip
    ctx = context_of(audit, s)
    assert (ctx.namespace, ctx.cluster, ctx.node) == ("kube-system", "eu-1", None)
    node_ev = syscall("execve", host="ip-10-0-0-1", enrichment={"node": {"cloud": {"account_id": "210987654321"}}})
    ctx = context_of(node_ev, s)
    assert (ctx.node, ctx.account) == ("ip-10-0-0-1", "210987654321")
    runtime = syscall("execve", enrichment={"container": {"privileged": True, "labels": {
        "io.kubernetes.pod.namespace": "shop", "io.kubernetes.pod.name": "web-1"}}})  # fmt: skip
    ctx = context_of(runtime, s)
    assert (ctx.namespace, ctx.pod, ctx.privileged) == ("shop", "web-1", True)


def test_internet_facing_and_host_network_exposure() -> None:
    s = Settings()
    ev = syscall("execve", enrichment={"k8s": {"pod": {"host_network": True, "labels": {
        "falconet.io/internet-facing": "true"}}}})  # fmt: skip
    ctx = context_of(ev, s)
    assert ctx.host_network and ctx.internet_facing
    ps, res = load_policy(
        [("p.yaml", "- policy_settings:\n    internet_facing_keys: [exposed]\n    owner_keys: [squad]\n")]
    )
    assert res.ok and ps.settings.internet_facing_keys == ("exposed",)
    assert ps.settings.environment_keys == ("environment", "env")  # not given: the default
    assert not context_of(ev, ps.settings).internet_facing

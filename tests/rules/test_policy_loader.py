"""Policy files are validated like rule files: errors and warnings at file:line:column."""

from __future__ import annotations

import pytest

from falconet.rules.policy import is_policy_text, load_policy, split_policy_files
from falconet.rules.policy_loader import LOAD_ERR_POLICY, LOAD_POLICY_UNKNOWN_RULE
from falconet.rules.result import LOAD_ERR_YAML_PARSE
from tests.helpers import engine

RULES = """
- rule: Shell in container
  desc: d
  condition: evt.type=execve and proc.name=bash
  output: "shell"
  priority: WARNING
  tags: [shell]
"""


def errors(text: str) -> list[str]:
    _, res = load_policy([("p.yaml", text)])
    return [m.format() for m in res.errors]


@pytest.mark.parametrize(
    "text,where,message",
    [
        ("- policy: p\n  scop: {}\n  disable: [x]\n", "p.yaml:2:3", "unknown key 'scop' in a policy"),
        ("- policy: p\n  scope:\n    namespaces: [a]\n  disable: [x]\n", "p.yaml:3:5",
         "unknown key 'namespaces' in scope"),
        ("- policy: p\n  priority: raise one\n", "p.yaml:2:13", "invalid priority change 'raise one'"),
        ("- policy: p\n  priority: set urgent\n", "p.yaml:2:13", "invalid priority 'urgent'"),
        ("- policy: p\n  scope: {priority: '>= severe'}\n  route: [x]\n", "p.yaml:2:21",
         "invalid priority 'severe'"),
        ("- policy: p\n  scope:\n    pod_labels: 'app=web,tier in (a,b'\n  route: [x]\n", "p.yaml:3:17",
         "invalid label selector in scope.pod_labels: expected ',' or ')'"),
        ("- policy: p\n  scope:\n    pod_labels: app=web,-bad=1\n  route: [x]\n", "p.yaml:3:25",
         "invalid label key '-bad'"),
        ("- policy: p\n  scope:\n    pod_labels:\n      matchExpressions:\n"
         "        - {key: app, operator: Equals, values: [a]}\n  route: [x]\n", "p.yaml:5:32",
         "invalid operator 'Equals'"),
        ("- policy: p\n  scope:\n    pod_labels:\n      matchExpressions:\n"
         "        - {key: app, operator: In}\n  route: [x]\n", "p.yaml:5:32",
         "operator In needs a non-empty 'values' list"),
        ("- policy: p\n  scope:\n    pod_labels: {matchLabel: {a: b}}\n  route: [x]\n", "p.yaml:3:18",
         "unknown key 'matchLabel'"),
        ("- policy: p\n  scope: {source: syscalls}\n  route: [x]\n", "p.yaml:2:19",
         "unknown source 'syscalls'"),
        ("- policy: p\n  exceptions:\n    - name: e\n      fields: [proc.nam]\n      values: [[x]]\n",
         "p.yaml:4:16", "unknown field 'proc.nam'"),
        ("- policy: p\n  exceptions:\n    - name: e\n      fields: [proc.name]\n      comps: [like]\n"
         "      values: [[x]]\n", "p.yaml:5:15", "unknown comparison operator 'like'"),
        ("- policy: p\n  exceptions:\n    - name: e\n      fields: [proc.name, fd.name]\n"
         "      values: [[x]]\n", "p.yaml:5:16", "each value must be a list of 2 values"),
        ("- policy: p\n  scope: {namespace: lab}\n", "p.yaml:1:11", "the policy has no action"),
        ("- policy: p\n  route: [a]\n- policy: p\n  route: [b]\n", "p.yaml:3:11", "defined twice"),
        ("- rule: r\n  desc: d\n- policy: p\n  route: [b]\n", "p.yaml:1:3", "unknown item 'rule'"),
        ("- policy: p\n  set: {team: x}\n", "p.yaml:2:9", "unknown key 'team' in set"),
        ("- policy: p\n  route: []\n", "p.yaml:2:10", "route must not be an empty list"),
        ("- policy: p\n  enabled: maybe\n  route: [x]\n", "p.yaml:2:12", "enabled must be true or false"),
        ("- policy_settings: {owner_key: [x]}\n", "p.yaml:1:21", "unknown key 'owner_key'"),
        ("- policy: p\n  route: [x\n", "p.yaml:3:1", ""),
    ],
)
def test_errors_carry_positions(text: str, where: str, message: str) -> None:
    found = errors(text)
    assert found, f"no error for {text!r}"
    assert found[0].startswith(where + ": error"), found
    assert message in found[0], found


def test_a_selector_error_shows_the_spot_with_a_caret() -> None:
    [msg] = errors("- policy: p\n  scope:\n    pod_labels: 'app=web,tier in (a,b'\n  route: [x]\n")
    assert msg.splitlines()[1:] == ["    app=web,tier in (a,b", "                        ^"]


def test_yaml_errors_use_the_rules_code() -> None:
    _, res = load_policy([("p.yaml", "- policy: p\n  route: [x\n")])
    assert [m.code for m in res.errors] == [LOAD_ERR_YAML_PARSE]


def test_every_bad_policy_is_reported_not_only_the_first() -> None:
    text = "- policy: a\n  priority: up\n- policy: b\n  scope: {nope: 1}\n  route: [x]\n- policy: c\n  route: [x]\n"
    ps, res = load_policy([("p.yaml", text)])
    assert [m.position.line for m in res.errors] == [2, 4] and not res.ok
    assert all(m.code == LOAD_ERR_POLICY and m.item.startswith("policy '") for m in res.errors)


def test_unknown_rules_and_tags_are_warnings_like_falco() -> None:
    eng = engine(RULES)
    text = """
- policy: p
  scope: {rules: [Shell in container, Nope rule, 'Net*']}
  disable: [Other rule, tag:shell, tag:nosuchtag, 'Shell*']
"""
    ps, res = load_policy([("p.yaml", text)], eng)
    assert res.ok and len(ps) == 1
    warnings = [(m.code, str(m.position), m.message) for m in res.warnings]
    assert warnings == [
        (LOAD_POLICY_UNKNOWN_RULE, "p.yaml:3:39", "unknown rule 'Nope rule': no loaded rule has that name"),
        (LOAD_POLICY_UNKNOWN_RULE, "p.yaml:3:50", "no loaded rule matches 'Net*'"),
        (LOAD_POLICY_UNKNOWN_RULE, "p.yaml:4:13", "unknown rule 'Other rule': no loaded rule has that name"),
        (LOAD_POLICY_UNKNOWN_RULE, "p.yaml:4:36", "no loaded rule has the tag 'nosuchtag'"),
    ]


def test_policy_files_are_told_from_rule_files() -> None:
    policy = "# silence\n- policy: p\n  route: [x]\n"
    settings = "- policy_settings: {owner_keys: [team]}\n"
    assert is_policy_text(policy) and is_policy_text(settings)
    assert not is_policy_text(RULES) and not is_policy_text("- rule: [unclosed\n")
    assert not is_policy_text("- macro: policy\n  condition: evt.type=open\n")
    rules, policies = split_policy_files([("a.yaml", RULES), ("p.yaml", policy), ("b.yaml", RULES)])
    assert [n for n, _ in rules] == ["a.yaml", "b.yaml"] and [n for n, _ in policies] == ["p.yaml"]


def test_the_examples_of_docs_policy_md_load() -> None:
    import re

    from tests.conftest import ROOT

    text = (ROOT / "docs" / "policy.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "- policy" in b]
    assert len(blocks) >= 5
    for block in blocks:
        ps, res = load_policy([("docs.yaml", block)])
        assert res.ok and len(ps) >= 1, "\n".join(m.format() for m in res.messages) + "\n" + block

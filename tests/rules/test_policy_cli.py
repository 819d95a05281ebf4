"""`falconet run --policy`: offline evaluation applies policies as a worker does."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from falconet.cli import main
from tests.helpers import syscall

RULES = """
- rule: Shell in container
  desc: d
  condition: evt.type=execve and proc.name=bash
  output: "shell in %k8s.ns.name"
  priority: WARNING
"""
POLICY = """
- policy: silence-lab
  scope: {namespace: 'lab-*'}
  disable: ['*']
- policy: raise-production
  scope: {environment: production}
  priority: raise 1
  route: [pager]
"""


def events(tmp: Path) -> Path:
    lines = []
    for i, (ns, env) in enumerate([("lab-1", "lab"), ("shop", "production"), ("tools", "")], 1):
        labels = {"environment": env} if env else {}
        ev = syscall("execve", proc={"name": "bash"}, container="3ad7b26ded6d", num=i,
                     enrichment={"k8s": {"ns": {"name": ns, "labels": labels}}})  # fmt: skip
        lines.append(orjson.dumps(ev.to_json_obj()))
    path = tmp / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_run_with_a_policy(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "policy.yaml").write_text(POLICY)
    r = CliRunner().invoke(main, ["run", "-r", str(tmp_path / "rules.yaml"), "-i", str(events(tmp_path)),
                                  "--policy", str(tmp_path / "policy.yaml")])  # fmt: skip
    assert r.exit_code == 0, r.output
    found = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert [(d["event_id"], d["priority"], d.get("routes")) for d in found] == [
        ("node-a-2", "Error", ["pager"]),
        ("node-a-3", "Warning", None),
    ]
    assert found[0]["score"] == 30 and found[1]["score"] == 13
    assert "suppressed by policy: 1 'Shell in container' (disabled by silence-lab)" in r.stderr


def test_run_without_a_policy_prints_falco_alerts_unchanged(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    r = CliRunner().invoke(main, ["run", "-r", str(tmp_path / "rules.yaml"), "-i", str(events(tmp_path))])
    found = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert len(found) == 3 and not any({"score", "owner", "environment", "routes"} & set(d) for d in found)


def test_run_refuses_a_bad_policy_with_its_position(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "policy.yaml").write_text("- policy: p\n  scope: {namespace: lab}\n  priority: higher\n")
    r = CliRunner().invoke(main, ["run", "-r", str(tmp_path / "rules.yaml"), "-i", str(events(tmp_path)),
                                  "--policy", str(tmp_path / "policy.yaml")])  # fmt: skip
    assert r.exit_code == 1
    assert f"{tmp_path / 'policy.yaml'}:3:13: error LOAD_ERR_POLICY: invalid priority change" in r.stderr
    assert r.stdout == ""


def test_rules_validate_checks_policy_files_against_the_rules(tmp_path: Path) -> None:
    """A policy file among the validated paths is checked as a policy (not reported as an
    unknown rules item), and a policy naming a rule the files do not have is a warning."""
    (tmp_path / "a_rules.yaml").write_text(RULES)
    (tmp_path / "b_policy.yaml").write_text(POLICY + "- policy: typo\n  disable: [Shel in container]\n")
    r = CliRunner().invoke(main, ["rules", "validate", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "policies: 3 in 1 file(s)" in r.output
    assert "Unknown top level" not in r.output
    assert "Shel in container" in r.output  # the warning names it
    (tmp_path / "b_policy.yaml").write_text("- policy: bad\n  scope: {namespace: 3}\n  bogus: 1\n")
    r = CliRunner().invoke(main, ["rules", "validate", str(tmp_path)])
    assert r.exit_code == 1 and "b_policy.yaml:" in r.output

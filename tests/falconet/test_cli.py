"""The `falconet` command line: the `run` contract other tools depend on, and the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from falconet import __version__
from falconet.cli import main
from tests.conftest import FIXTURES

RULES = """
- rule: Shell spawned
  desc: a shell started
  condition: evt.type=execve and proc.name in (bash, sh)
  output: "shell %proc.name (user=%user.name)"
  priority: NOTICE
  tags: [shell]
- rule: Any execve
  desc: every exec
  condition: evt.type=execve
  output: "exec %proc.name"
  priority: DEBUG
- rule: Stop logging
  desc: trail stopped
  condition: ct.name=StopLogging and not ct.error exists
  output: "trail stopped by %ct.user from %ct.srcip"
  priority: CRITICAL
  source: aws_cloudtrail
"""


def event(i: int, name: str) -> bytes:
    return orjson.dumps(
        {"v": 1, "source": "syscall", "type": "execve", "ts": 1_700_000_000_000_000_000 + i,
         "host": "node-a", "id": f"e{i}",
         "event": {"args": {}, "proc": {"name": name, "args": []}, "user": {"uid": 0, "name": "root"},
                   "container": {"id": "host"}}}
    )  # fmt: skip


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join([event(1, "bash"), b"{oops", event(3, "ls")]) + b"\n")
    return {"rules": rules, "events": events}


def invoke(*args: str, env: dict[str, str] | None = None, input: bytes | None = None):
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def test_version() -> None:
    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"falconet, version {__version__}"


@pytest.mark.parametrize(
    "cmd", [[], ["run"], ["rules"], ["rules", "validate"], ["rules", "list"], ["fields"], ["demo"]]
)
def test_help_everywhere(cmd: list[str]) -> None:
    r = invoke(*cmd, "--help")
    assert r.exit_code == 0 and "Usage: " in r.stdout and len(r.stdout.splitlines()) > 4


class TestRun:
    def test_contract(self, files: dict[str, Path]) -> None:
        r = invoke("run", "--rules", str(files["rules"]), "--input", str(files["events"]))
        assert r.exit_code == 0
        alerts = [json.loads(line) for line in r.stdout.splitlines()]
        assert [a["rule"] for a in alerts] == ["Shell spawned", "Any execve"]  # first match per event
        a = alerts[0]
        assert set(a) >= {"time", "rule", "priority", "output", "output_fields", "source", "tags", "hostname"}
        assert a["priority"] == "Notice" and a["tags"] == ["shell"] and a["hostname"] == "node-a"
        assert "Notice shell bash (user=root)" in a["output"]
        # stderr: the bad record with file and line, then the one-line summary
        err = r.stderr.splitlines()
        assert err[0].startswith(f"skipped record: {files['events']}:2: invalid JSON")
        assert err[-1].startswith("falconet run: 2 events, 2 detections (")
        assert "Shell spawned: 1" in err[-1] and "1 input errors" in err[-1]

    def test_rule_matching_all_and_min_priority(self, files: dict[str, Path]) -> None:
        r = invoke("run", "-r", str(files["rules"]), "-i", str(files["events"]), "--rule-matching", "all")
        assert [json.loads(x)["rule"] for x in r.stdout.splitlines()] == ["Shell spawned", "Any execve", "Any execve"]
        r = invoke("run", "-r", str(files["rules"]), "-i", str(files["events"]), "--min-priority", "notice")
        assert [json.loads(x)["rule"] for x in r.stdout.splitlines()] == ["Shell spawned"]

    def test_text_and_table_formats(self, files: dict[str, Path]) -> None:
        r = invoke("run", "-r", str(files["rules"]), "-i", str(files["events"]), "--format", "text")
        assert "Notice shell bash (user=root) container_id=host container_name=host" in r.stdout.splitlines()[0]
        r = invoke("run", "-r", str(files["rules"]), "-i", str(files["events"]), "--format", "table")
        assert "Shell spawned" in r.stdout and "2 detections" in r.stdout

    def test_stdin_and_several_inputs(self, files: dict[str, Path]) -> None:
        ct = next((FIXTURES / "cloudtrail").glob("*.json"))
        r = invoke("run", "-r", str(files["rules"]), "-i", "-", "-i", str(ct), input=event(9, "sh") + b"\n")
        rules = [json.loads(x)["rule"] for x in r.stdout.splitlines()]
        assert rules[0] == "Shell spawned" and "Stop logging" in rules

    def test_rules_error_exits_1_with_position(self, tmp_path: Path, files: dict[str, Path]) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text("- rule: R\n  desc: d\n  condition: proc.name = \n  output: o\n  priority: INFO\n")
        r = invoke("run", "-r", str(bad), "-i", str(files["events"]))
        assert r.exit_code == 1 and r.stdout == ""
        assert f"{bad}:3:14: error LOAD_ERR_COMPILE_CONDITION" in r.stderr
        assert "rules failed to load" in r.stderr

    def test_missing_input_exits_1(self, files: dict[str, Path], tmp_path: Path) -> None:
        r = invoke("run", "-r", str(files["rules"]), "-i", str(tmp_path / "nope.jsonl"))
        assert r.exit_code == 1 and "cannot open" in r.stderr

    def test_config_file_and_env(self, files: dict[str, Path], tmp_path: Path) -> None:
        cfg = tmp_path / "falconet.yaml"
        cfg.write_text("rules:\n  matching: all\n")
        r = invoke("--config", str(cfg), "run", "-r", str(files["rules"]), "-i", str(files["events"]))
        assert len(r.stdout.splitlines()) == 3
        r = invoke("run", "-r", str(files["rules"]), "-i", str(files["events"]),
                   env={"FALCONET_RULES_MIN_PRIORITY": "critical"})  # fmt: skip
        assert r.stdout == ""
        cfg.write_text("rules:\n  colour: blue\n")
        r = invoke("--config", str(cfg), "run", "-r", str(files["rules"]), "-i", str(files["events"]))
        assert r.exit_code == 2 and "unknown setting 'rules.colour'" in r.stderr


class TestRules:
    def test_validate_counts_and_ok(self, files: dict[str, Path]) -> None:
        r = invoke("rules", "validate", str(files["rules"]))
        assert r.exit_code == 0
        assert f"{files['rules']}: 3 rules, 0 macros, 0 lists" in r.stdout
        assert r.stdout.strip().splitlines()[-1].startswith("OK: 1 file, 0 errors")

    def test_validate_error(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text("- macro: m\n  condition: a.b=1 and (\n")
        r = invoke("rules", "validate", str(bad))
        assert r.exit_code == 1 and "FAILED: 1 file, 1 error" in r.stdout
        assert f"{bad}:2:14: error LOAD_ERR_COMPILE_CONDITION" in r.stdout

    def test_validate_json(self, files: dict[str, Path]) -> None:
        r = invoke("rules", "validate", "--json", str(files["rules"]))
        obj = json.loads(r.stdout)
        assert obj["ok"] is True and obj["files"][0]["rules"] == 3

    def test_list(self, files: dict[str, Path]) -> None:
        r = invoke("rules", "list", str(files["rules"]))
        assert r.exit_code == 0 and "Shell spawned" in r.stdout and "Stop logging" in r.stdout
        r = invoke("rules", "list")  # the bundled library
        assert r.exit_code == 0 and "rules" in r.stdout

    def test_fields(self) -> None:
        r = invoke("fields", "--source", "aws_cloudtrail")
        assert r.exit_code == 0 and "ct.user" in r.stdout
        r = invoke("fields", "--source", "nosuch")
        assert r.exit_code == 2 and "unknown source" in r.stderr


def test_installed_entry_point(files: dict[str, Path]) -> None:
    """The `falconet` script pip installed next to this interpreter works end to end."""
    exe = Path(sys.executable).with_name("falconet")
    if not exe.exists():
        pytest.skip(f"no falconet entry point next to {sys.executable}")
    out = subprocess.run(
        [str(exe), "run", "-r", str(files["rules"]), "-i", str(files["events"])],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 2 and "Traceback" not in out.stderr


def test_validate_totals_for_several_files(corpus: Path) -> None:
    rules = corpus / "falco/falcosecurity-rules/rules"
    r = invoke("rules", "validate", str(rules / "falco_rules.yaml"), str(rules / "falco-sandbox_rules.yaml"))
    assert r.exit_code == 0
    assert "falco_rules.yaml: 25 rules, 87 macros, 49 lists" in r.stdout
    assert "together: 62 rules, 258 macros, 95 lists (unique names)" in r.stdout


def test_python_dash_m() -> None:
    out = subprocess.run([sys.executable, "-m", "falconet", "--version"], capture_output=True, text=True,
                         timeout=60, check=False)  # fmt: skip
    assert out.returncode == 0 and __version__ in out.stdout


def test_calling_the_group_in_process_leaves_sigpipe_alone() -> None:
    """Only the process entry point restores SIGPIPE; a test runner or service that
    calls the group must keep Python's 'ignore', or a later write to a socket whose
    peer has gone would kill it (a CI run died of exactly this)."""
    import signal

    before = signal.getsignal(signal.SIGPIPE)
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert signal.getsignal(signal.SIGPIPE) == before == signal.SIG_IGN


def test_installed_command_ends_quietly_when_stdout_closes(tmp_path: Path) -> None:
    """`falconet run ... | head -1` ends without a BrokenPipe traceback: the output
    (several hundred KiB) is far larger than the pipe buffer, so the writer does hit
    the closed pipe."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(event(i, "bash") for i in range(5000)) + b"\n")
    proc = subprocess.run(
        f"{sys.executable} -m falconet run -r {rules} -i {events} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(proc.stdout)["rule"] == "Shell spawned"
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr

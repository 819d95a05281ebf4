"""Configuration: YAML + FALCONET_* variables, documented in one table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from falconet.config import SETTINGS, Config
from falconet.errors import ConfigError
from falconet.priority import Priority
from tests.conftest import ROOT


def test_defaults() -> None:
    cfg = Config.load(env={})
    assert cfg["rules.matching"] == "first" and cfg.min_priority is Priority.DEBUG
    assert cfg.sources is None and cfg["input.max_record_bytes"] == 16 * 1024 * 1024


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("rules:\n  matching: all\n  min_priority: warning\noutput:\n  time_iso8601: yes\n")
    cfg = Config.load(f, env={"FALCONET_RULES_MIN_PRIORITY": "error", "FALCONET_RULES_SOURCES": "syscall, k8s_audit"})
    assert cfg["rules.matching"] == "all"
    assert cfg.min_priority is Priority.ERROR  # env beats the file
    assert cfg["output.time_iso8601"] is True
    assert cfg.sources == ("syscall", "k8s_audit")
    cfg = Config.load(f, env={}, overrides={"rules.matching": "first", "rules.min_priority": None})
    assert cfg["rules.matching"] == "first" and cfg.min_priority is Priority.WARNING


def test_config_path_from_env(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("input:\n  cluster: eu-1\n")
    assert Config.load(env={"FALCONET_CONFIG": str(f)})["input.cluster"] == "eu-1"


@pytest.mark.parametrize(
    "text,env,message",
    [
        ("rules: [a]\n", {}, "unknown setting 'rules'"),
        ("nope: 1\n", {}, "unknown setting 'nope'"),
        ("- a\n", {}, "must hold a mapping"),
        ("rules: {matching: sometimes}\n", {}, "rules.matching must be 'first' or 'all'"),
        ("", {"FALCONET_RULES_MIN_PRIORITY": "loud"}, "invalid priority 'loud'"),
        ("", {"FALCONET_OUTPUT_TIME_ISO8601": "maybe"}, "must be true or false"),
        ("", {"FALCONET_INPUT_MAX_RECORD_BYTES": "lots"}, "must be an integer"),
        ("a: [\n", {}, "not valid YAML"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, env: dict, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config.load(f, env=env)


def test_docs_table_matches_settings() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9_.]+)` \| `(FALCONET_[A-Z0-9_]+)` \| `([^`]*)` \|", doc, re.M)
    expected = []
    for s in SETTINGS:
        d = s.default
        expected.append((s.key, s.env, ("true" if d else "false") if isinstance(d, bool) else str(d)))
    assert rows == expected

"""Falco's own capture-based test cases, replayed through falconet.

Each case of ``falco-tests/expectations.json`` whose captures exist in ``traces/`` loads its
rule files the way Falco's legacy tests run Falco (default configuration: only the syscall
source, ``rule_matching: first``), replays the ``.scap`` captures with the scap reader and
checks every detection assertion (``Equal``/``Zero``/``NotZero`` counts filtered by rule
and priority) and the exit code (1: the rules must not load).

Two things need care, and are spelled out below rather than hidden:

* ``expectations.json`` lost the options some cases pass to Falco through helpers of the
  upstream Go tests (``WithEnabledTags``, ``WithDisabledTags``, ``WithDisabledRules``,
  ``WithMinRulePriority``, ``WithConfig``); :data:`OPTIONS` restores them, as written in
  falcosecurity/testing ``tests/falco/legacy_test.go`` at the commit the corpus cites.
* The assertions were written for Falco < 0.42, which still evaluated syscall *enter*
  events. falconet implements the Falco ≥ 0.42 model (one event per completed syscall,
  falco-language.md §3.17; libs 0.22 filters the remaining enter events out, libs commit
  618c2f675). Where a count includes enter events, :data:`ENTER_EVENT_COUNTS` gives the
  count without them and says why; everything else is checked exactly as Falco asserts.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from falconet.detection import Detection
from falconet.event import Event
from falconet.priority import Priority
from falconet.rules.engine import Engine, EngineConfig
from falconet.sensors.scap import read_scap
from tests.rules.test_corpus import falco_cases


# -- the options expectations.json lost ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Options:
    enabled_tags: tuple[str, ...] = ()  # WithEnabledTags: disable every rule, enable these tags
    disabled_tags: tuple[str, ...] = ()  # WithDisabledTags
    disabled_rules: tuple[str, ...] = ()  # WithDisabledRules: rule-name wildcard patterns
    min_priority: str | None = None  # WithMinRulePriority
    # WithConfig(configs.Drops*): Falco's syscall_event_drops self-monitoring (simulate_drops)
    drop_monitor: bool = False


_DROPS = Options(drop_monitor=True)
OPTIONS: dict[str, Options] = {
    "DisabledRulesUsingSubstring": Options(disabled_rules=("open_from",)),
    "DisabledRules": Options(disabled_rules=("open_from_cat",)),
    "RuleAppendSkipped": Options(min_priority="ERROR"),
    "MultipleRulesSuppressInfo": Options(min_priority="WARNING"),
    "RunTagsA": Options(enabled_tags=("a",)),
    "RunTagsB": Options(enabled_tags=("b",)),
    "RunTagsC": Options(enabled_tags=("c",)),
    "RunTagsD": Options(enabled_tags=("d",)),
    "RunTagsAb": Options(enabled_tags=("a", "b")),
    "RunTagsBc": Options(enabled_tags=("b", "c")),
    "RunTagsAbc": Options(enabled_tags=("a", "b", "c")),
    "DisabledTagsA": Options(disabled_tags=("a",)),
    "DisabledTagsB": Options(disabled_tags=("b",)),
    "DisabledTagsC": Options(disabled_tags=("c",)),
    "DisabledTagsAb": Options(disabled_tags=("a", "b")),
    "DisabledTagsAbc": Options(disabled_tags=("a", "b", "c")),
    "MonitorSyscallDropsNone": _DROPS,
    "MonitorSyscallDropsIgnore": _DROPS,
    "MonitorSyscallDropsIgnoreAndLog": _DROPS,
    "MonitorSyscallDropsLog": _DROPS,
    "MonitorSyscallDropsAlert": _DROPS,
    "MonitorSyscallDropsExit": _DROPS,
    "MonitorSyscallDropsThresholdNeg": _DROPS,
    "MonitorSyscallDropsThresholdOor": _DROPS,
}

# -- assertions that count enter events (Falco < 0.42) -------------------------------------------
#: (case, filter) -> (count without enter events, why). The captures hold 4 ``open`` calls of
#: ``cat`` (4 enter + 4 exit events); Falco < 0.42 matched ``evt.type=open`` on both.
ENTER_EVENT_COUNTS: dict[tuple[str, str], tuple[int, str]] = {
    ("DetectSkipUnknownNoevt", "*"): (4, "4 open exits; Falco < 0.42 also matched the 4 open enter events"),
    ("MultipleRulesSuppressInfo", "OfRule=open_from_cat"): (
        4, "4 open exits; Falco < 0.42 also matched the 4 open enter events",
    ),  # fmt: skip
    ("EnabledRuleUsingFalseEnabledFlagOnly", "OfRule=open_from_cat"): (
        4, "4 open exits; Falco < 0.42 also matched the 4 open enter events",
    ),  # fmt: skip
    ("CatchallOrder", "OfRule=dev_null"): (
        3, "fstat, read and close exits on /dev/null; Falco < 0.42 also matched their enter events",
    ),  # fmt: skip
}

#: What the four "*OutputStrict" cases compare Falco's output with (falcosecurity/testing
#: ``tests/data/outputs/outputs.go``, SingleRuleWithCatWriteText): ISO 8601 time and text of
#: the open_from_cat alerts on cat_write.scap. The lines of enter events (Falco < 0.42) are
#: marked; falconet produces exactly the other ones.
CAT_WRITE_ALERTS: tuple[tuple[str, bool], ...] = tuple(
    (f"2016-08-04T16:17:57.{ns}+0000: Warning An open was seen (command=cat /dev/null)", enter)
    for ns, enter in (
        ("881781397", True), ("881785348", False), ("881796705", True), ("881799840", False),
        ("882003104", True), ("882008208", False), ("882045694", True), ("882054739", False),
    )
)  # fmt: skip
_STRICT = {"StdoutOutputStrict", "StdoutOutputJsonStrict", "FileOutputStrict", "ProgramOutputStrict"}
_STRICT_TAGS = {"StdoutOutputJsonStrict": ("filesystem", "process", "testing")}

#: stderr assertions about Falco's own log lines, not about detections.
_LOG_ONLY_STDERR = {"TimeIso8601"}


# -- cases ---------------------------------------------------------------------------------------
def _short(case: dict[str, Any]) -> str:
    return str(case["test"]).removeprefix("TestFalco_Legacy_")


def _capture_cases() -> list[dict[str, Any]]:
    from tests.conftest import corpus_dir

    root = corpus_dir() / "falco-tests"
    return [
        c for c in falco_cases()
        if c["captures"] and all((root / p).is_file() for p in c["captures"])
    ]  # fmt: skip


CASES = _capture_cases()


@functools.cache
def _capture(path: str) -> tuple[Event, ...]:
    """Each capture is read once per test session."""
    return tuple(read_scap(path))


def _args(case: dict[str, Any]) -> dict[str, str]:
    """The ``-o key=value`` arguments of a case."""
    out: dict[str, str] = {}
    for a in case["args"]:
        m = re.fullmatch(r'"-o",\s*"([^"=]+)=([^"]*)"(?:\+\w+)?', a)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _rule_override(engine: Engine, opts: Options) -> str:
    """A rules file applying the tag and rule selections the way Falco's ``rules:`` config
    does (disable/enable by rule-name wildcard or by tag, in that order)."""
    lines: list[str] = []
    for rule in engine.rules:
        enabled = rule.enabled
        if opts.enabled_tags:
            enabled = any(t in rule.tags for t in opts.enabled_tags)
        if any(t in rule.tags for t in opts.disabled_tags):
            enabled = False
        if any(fnmatch.fnmatchcase(rule.name, p) for p in opts.disabled_rules):
            enabled = False
        if enabled != rule.enabled:
            lines.append(f"- rule: {json.dumps(rule.name)}\n  enabled: {'true' if enabled else 'false'}\n")
    return "".join(lines)


@dataclass(slots=True)
class Run:
    ok: bool
    load_messages: str
    detections: list[Detection] = field(default_factory=list)


def _run(corpus: Path, case: dict[str, Any], opts: Options) -> Run:
    args = _args(case)
    cfg = EngineConfig(
        sources=("syscall",),
        suggested_output=False,
        time_iso8601=args.get("time_format_iso_8601") == "true",
        min_priority=Priority.parse(opts.min_priority) if opts.min_priority else Priority.DEBUG,
    )  # fmt: skip
    root = corpus / "falco-tests"
    files = [(str(root / f), (root / f).read_text()) for f in case["rule_files"]]
    engine = Engine(cfg)
    res = engine.load_texts(files)
    if res.ok and (opts.enabled_tags or opts.disabled_tags or opts.disabled_rules):
        override = _rule_override(engine, opts)
        if override:
            engine = Engine(cfg)
            res = engine.load_texts([*files, ("<options>", override)])
    messages = "\n".join(m.format() for m in res.messages)
    if not res.ok:
        return Run(False, messages)
    run = Run(True, messages)
    for path in case["captures"]:
        for ev in _capture(str(root / path)):
            ev.cache.clear()
            run.detections.extend(engine.process(ev))
    return run


def _matches(d: Detection, filters: list[list[str]]) -> bool:
    for kind, value in filters:
        if kind == "OfRule" and d.rule != value:
            return False
        if kind == "OfPriority" and d.priority != Priority.parse(value):
            return False
    return True


def _filter_key(filters: list[list[str]]) -> str:
    return ",".join(f"{k}={v}" for k, v in filters) or "*"


@pytest.mark.parametrize("case", CASES, ids=[_short(c) for c in CASES])
def test_falco_capture_case(corpus: Path, case: dict[str, Any]) -> None:
    name = _short(case)
    opts = OPTIONS.get(name, Options())
    if opts.drop_monitor and (case["exit_code"] or case["stderr_regex"] or case["stdout_regex"]):
        pytest.skip(
            "asserts Falco's syscall_event_drops self-monitoring (simulate_drops, drop actions, "
            "its config validation): a Falco daemon feature falconet does not have"
        )
    run = _run(corpus, case, opts)
    problems: list[str] = []
    if case["exit_code"] == 1:
        if run.ok:
            problems.append("exit code: Falco refuses these rules (exit 1), falconet loaded them")
    elif not run.ok:
        problems.append(f"exit code: Falco loads these rules, falconet refused them:\n{run.load_messages}")
    for a in case["detections"] if run.ok else ():
        key = _filter_key(a["filters"])
        got = sum(1 for d in run.detections if _matches(d, a["filters"]))
        expected = a["count"]
        note = ""
        if (name, key) in ENTER_EVENT_COUNTS:
            expected, why = ENTER_EVENT_COUNTS[(name, key)]
            note = f" (Falco < 0.42 asserts {a['count']}: {why})"
        if a["assert"] == "Zero":
            ok = got == 0
        elif a["assert"] == "NotZero":
            ok = got != 0
        else:
            ok = got == expected
        if not ok:
            want = {"Zero": "0", "NotZero": "> 0"}.get(a["assert"], str(expected))
            problems.append(f"{a['assert']} [{key}]: expected {want}, got {got}{note}")
    if run.ok:
        problems.extend(_output_checks(name, case, run))
    if problems:
        per_rule = Counter(d.rule for d in run.detections)
        pytest.fail(
            f"{case['test']}: rules {case['rule_files']}, captures {case['captures']}\n  "
            + "\n  ".join(problems)
            + f"\n  detections per rule: {dict(per_rule)}",
            pytrace=False,
        )


def _output_checks(name: str, case: dict[str, Any], run: Run) -> list[str]:
    """The stdout assertions that concern alerts (text, JSON tags, ISO times)."""
    problems: list[str] = []
    json_lines = [d.to_json().decode() for d in run.detections]
    text_lines = [d.output for d in run.detections]
    for rx in case["stdout_regex"]:
        if not any(re.search(rx, line) for line in (json_lines if '"' in rx else text_lines)):
            problems.append(f"stdout should match {rx!r}; alerts were:\n    " + "\n    ".join(text_lines[:5]))
    for rx in case["stderr_regex"]:
        if name not in _LOG_ONLY_STDERR:
            problems.append(f"stderr regex {rx!r} is not checked by this test")
    if name in _STRICT:
        expected = [line for line, enter in CAT_WRITE_ALERTS if not enter]
        got = [d.output for d in run.detections if d.rule == "open_from_cat"]
        if got != expected:
            problems.append("alert lines differ from Falco's (exit events):\n    " + "\n    ".join(got))
        tags = _STRICT_TAGS.get(name)
        if tags is not None and any(tuple(d.tags) != tags for d in run.detections):
            problems.append(f"alert tags should be {list(tags)}")
        for d in run.detections:
            if d.output_fields.get("proc.cmdline") != "cat /dev/null":
                problems.append(f"output_fields[proc.cmdline] = {d.output_fields.get('proc.cmdline')!r}")
                break
    return problems


def test_there_are_89_capture_cases(corpus: Path) -> None:
    # README: 157 cases, 89 with their captures in traces/ (the others were never published)
    assert len(CASES) == 89
    assert {Path(p).name for c in CASES for p in c["captures"]} == {
        "cat_write.scap", "connect_localhost.scap", "empty.scap", "open-multiple-files.scap",
        "ping_sendto.scap", "syscall.scap",
    }  # fmt: skip
    assert sum(c["exit_code"] == 1 for c in CASES) == 4


def test_options_name_real_cases() -> None:
    names = {_short(c) for c in CASES}
    missing = (set(OPTIONS) | {k for k, _ in ENTER_EVENT_COUNTS} | _STRICT) - names
    assert not missing, f"OPTIONS/ENTER_EVENT_COUNTS name cases that do not exist: {missing}"

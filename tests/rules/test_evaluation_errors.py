"""A malformed event never crashes evaluation: the failing rule is named, others still run."""

from __future__ import annotations

import pytest

from falconet.event import Event
from falconet.rules.engine import EvaluationError
from tests.helpers import engine, syscall

RULES = """
- rule: By name
  desc: d
  condition: evt.type=execve and proc.name=cat
  output: "name %proc.name"
  priority: INFO
- rule: By container
  desc: d
  condition: evt.type=execve and container.id=host
  output: "host %container.id"
  priority: INFO
"""


def broken() -> Event:
    ev = syscall("execve")
    ev.payload["proc"] = "not an object"  # a sensor bug, or a hand-edited recording
    return ev


@pytest.mark.parametrize("matching", ["first", "all"])
def test_failure_is_isolated_and_reported(matching: str) -> None:
    e = engine(RULES, rule_matching=matching, suggested_output=False)
    with pytest.raises(EvaluationError) as err:
        e.process(broken())
    assert [name for name, _ in err.value.failures] == ["By name"]
    assert "AttributeError" in err.value.failures[0][1]
    # the other rule still ran on the same event
    assert [d.rule for d in err.value.detections] == ["By container"]
    # and the engine keeps working for the next, well-formed event
    assert [d.rule for d in e.process(syscall("execve"))][0] == "By name"


def test_run_reports_and_continues(tmp_path) -> None:
    import orjson

    from falconet.inputs import RecordDecoder
    from falconet.run import run_files

    good = syscall("execve").to_json_obj()
    bad = broken().to_json_obj()
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(o) for o in (bad, good)) + b"\n")
    messages: list[str] = []
    found: list = []
    stats = run_files(engine(RULES, suggested_output=False), [str(path)], found.append, messages.append,
                      RecordDecoder())  # fmt: skip
    assert stats.events == 2 and stats.eval_errors == 1
    assert messages[0].startswith("evaluation error on event node-a-1 (syscall/execve): 1 rule(s) failed")
    assert [d.rule for d in found] == ["By container", "By name"]

"""Bad and hostile rule files: a clear error with a position, never a traceback or a hang,
and rule text never becomes code."""

from __future__ import annotations

import pytest

from falconet.rules.compiler import CheckCompiler
from falconet.rules.fields import registry_for
from falconet.rules.parser import parse_condition
from tests.helpers import engine, fired, load, syscall

HOSTILE = [
    "'); import os; os.system('touch /tmp/pwned') #",
    '"; __import__("os").system("id"); "',
    "\\x00\\n\\r\\\\' \" {} {{}} %s %(x)s",
    "__builtins__",
    "_k1",
    "ev) or (1",
    "a\u2028b\u0085c",
    "🙂 ünïcödé",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_are_data_not_code(value: str) -> None:
    # the value travels as a quoted YAML string, then as a quoted condition string
    quoted = value.replace("\\", "\\\\").replace("'", "\\'")
    cond = f"proc.name = '{quoted}' or proc.cmdline contains '{quoted}' or proc.name in ('{quoted}', x)"
    text = "- rule: R\n  desc: d\n  condition: " + _yaml_str(cond) + "\n  output: o\n  priority: INFO\n  warn_evttypes: false\n"
    e, res = load(text)
    assert res.ok, [m.format() for m in res.messages]
    assert fired(e, syscall("execve", proc={"name": value})) == ["R"]
    assert fired(e, syscall("execve", proc={"name": "other"})) == []


def _yaml_str(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    # YAML folds raw U+0085/U+2028 line breaks inside flow scalars: escape them
    return '"' + out.replace("\u0085", "\\N").replace("\u2028", "\\L") + '"'


def test_generated_source_holds_no_rule_text() -> None:
    cc = CheckCompiler(registry_for("syscall"))
    marker = "MARKER_xyz'\"\\"
    expr = parse_condition(
        "proc.name = 'MARKER_xyz\\'\"\\x41' or proc.name in (MARKER_abc) or proc.cmdline glob 'MARKER_*'"
    )
    body = cc.code(expr, None)
    assert isinstance(body, str)
    cc.function("probe", body)
    source = "\n".join(cc.defs)
    assert "MARKER" not in source and marker not in source
    ns = cc.build()
    assert ns["__builtins__"] == {}


@pytest.mark.parametrize(
    "text,message",
    [
        ("[" * 5_000_000, "nesting deeper than 200 levels"),
        ("- " * 3_000_000 + "x", "nesting deeper than 200 levels"),
        ("{a: " * 2_000_000, "nesting deeper than 200 levels"),
        (":\n  - [", "YAML"),
        ("- rule: [unclosed\n", ""),
        ("\t- rule: x", ""),
    ],
)
def test_malformed_and_deep_yaml(text: str, message: str) -> None:
    _, res = load(text)
    assert not res.ok
    err = res.errors[0]
    assert err.code == "LOAD_ERR_YAML_PARSE"
    assert err.position.line >= 1
    if message and message != "YAML":
        assert message in err.message


def test_ten_megabytes_of_condition_nesting() -> None:
    cond = "(" * 5_000_000 + "proc.name=x" + ")" * 5_000_000
    _, res = load(f"- macro: m\n  condition: '{cond}'\n")
    assert not res.ok
    assert "exceeded max depth limit of 1000" in res.errors[0].message
    assert res.errors[0].item == "macro 'm'"


def test_deep_not_chain_within_limits_compiles() -> None:
    cond = "not (" * 150 + "proc.name=x" + ")" * 150
    e = engine(f"- rule: R\n  desc: d\n  condition: '{cond}'\n  output: o\n  priority: INFO\n  warn_evttypes: false\n")
    assert fired(e, syscall("execve", proc={"name": "x"})) == ["R"]  # an even number of nots


def test_long_macro_chains_compile() -> None:
    parts = ["- macro: m0\n  condition: proc.name=x\n"]
    for i in range(1, 400):
        parts.append(f"- macro: m{i}\n  condition: m{i - 1} and proc.cwd=/\n")
    parts.append("- rule: R\n  desc: d\n  condition: m399\n  output: o\n  priority: INFO\n  warn_evttypes: false\n")
    e = engine("".join(parts))
    assert fired(e, syscall("execve", proc={"name": "x", "cwd": "/"})) == ["R"]


def test_billion_laughs_is_refused() -> None:
    lines = ["- list: l0\n  items: &a0 [x, x, x, x, x, x, x, x, x, x]\n"]
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 9):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
    _, res = load(text)
    assert not res.ok
    assert "expands to more than" in res.errors[0].message
    del lines


def test_wrong_types_everywhere() -> None:
    for text in (
        "- rule: {a: b}\n",
        "- macro: [x]\n  condition: y\n",
        "- list: l\n  items: {a: b}\n",
        "- rule: A\n  desc: d\n  condition: proc.name=cat\n  output: o\n  priority: [INFO]\n",
        "- rule: A\n  desc: d\n  condition: proc.name=cat\n  output: o\n  priority: INFO\n  override: x\n",
        "- required_engine_version: [1]\n",
        "- required_plugin_versions: x\n",
        "- required_plugin_versions:\n  - x\n",
        "- rule: A\n  desc: d\n  condition: proc.name=cat\n  output: o\n  priority: INFO\n"
        "  exceptions:\n    - x\n",
        "- rule: A\n  desc: d\n  condition: proc.name=cat\n  output: o\n  priority: INFO\n"
        "  exceptions:\n    - name: e\n      fields: [proc.name]\n      values: x\n",
        "- rule: A\n  desc: d\n  condition: proc.name=cat\n  output: o\n  priority: INFO\n"
        "  exceptions:\n    - name: e\n      fields: proc.name\n      values: [[a]]\n",
    ):
        _, res = load(text)
        assert not res.ok, text
        assert res.errors[0].message and res.errors[0].position.line >= 1, text


def test_unreadable_and_binary_files(tmp_path) -> None:
    from falconet.rules.engine import Engine

    missing = Engine().load([tmp_path / "nope.yaml"])
    assert missing.errors[0].code == "LOAD_ERR_FILE_READ"
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    res = Engine().load([binary])
    assert res.errors[0].code == "LOAD_ERR_FILE_READ" and "UTF-8" in res.errors[0].message


def test_directory_loads_yaml_files_in_name_order(tmp_path) -> None:
    from falconet.rules.engine import Engine

    (tmp_path / "b.yaml").write_text("- macro: m\n  condition: proc.name=cat\n  override:\n    condition: replace\n")
    (tmp_path / "a.yaml").write_text(
        "- macro: m\n  condition: proc.name=dog\n- rule: R\n  desc: d\n  condition: m\n"
        "  output: o\n  priority: INFO\n  warn_evttypes: false\n"
    )
    (tmp_path / "c.txt").write_text("not rules")
    e = Engine()
    res = e.load([tmp_path])
    assert res.ok and [f.path.rsplit("/", 1)[1] for f in res.files] == ["a.yaml", "b.yaml"]
    assert fired(e, syscall("execve", proc={"name": "cat"})) == ["R"]

"""Loader semantics: lists, macros, exceptions, append/override, order, sources, warnings."""

from __future__ import annotations

import pytest

from tests.helpers import engine, fired, load, syscall

RULE = """
- rule: {name}
  desc: d
  condition: {cond}
  output: "{name} %proc.name"
  priority: WARNING
  warn_evttypes: false
"""


def rule(name: str, cond: str) -> str:
    return RULE.format(name=name, cond=cond)


def cat() -> object:
    return syscall("execve", proc={"name": "cat"})


# -- lists ------------------------------------------------------------------------------------
class TestLists:
    def test_substituted_inside_parentheses(self) -> None:
        e = engine("- list: bins\n  items: [cat, dog]\n" + rule("R", "proc.name in (bins)"))
        assert fired(e, cat()) == ["R"]
        assert fired(e, syscall("execve", proc={"name": "cow"})) == []

    def test_items_with_spaces_are_quoted(self) -> None:
        e = engine(
            "- list: cmds\n  items: ['cat a b']\n"
            + rule("R", "proc.cmdline in (cmds)")
        )
        assert fired(e, syscall("execve", proc={"name": "cat", "args": ["a", "b"]})) == ["R"]

    def test_bare_list_without_parentheses_fails_to_parse(self) -> None:
        _, res = load("- list: bins\n  items: [cat, dog]\n" + rule("R", "proc.name in bins"))
        assert not res.ok
        assert "unexpected token" in res.errors[0].message

    def test_list_name_as_value_is_replaced_too(self) -> None:
        # `proc.name=bins` becomes `proc.name= cat, dog`: a parse error, as in Falco
        _, res = load("- list: bins\n  items: [cat, dog]\n" + rule("R", "proc.name=bins"))
        assert not res.ok

    def test_quoted_list_name_is_not_replaced(self) -> None:
        e = engine("- list: bins\n  items: [cat]\n" + rule("R", "proc.name='bins'"))
        assert fired(e, syscall("execve", proc={"name": "bins"})) == ["R"]

    def test_empty_list_removes_a_comma(self) -> None:
        e = engine("- list: none\n  items: []\n" + rule("R", "proc.name in (cat, none)"))
        assert fired(e, cat()) == ["R"]

    def test_list_in_list_only_earlier_lists(self) -> None:
        e = engine(
            "- list: a\n  items: [cat]\n- list: b\n  items: [a, dog]\n"
            + rule("R", "proc.name in (b)")
        )
        assert fired(e, cat()) == ["R"]

    def test_later_list_name_in_items_expands_in_a_later_pass(self) -> None:
        # b's item 'c' is a list defined after b: b keeps the literal 'c', which the
        # substitution loop then expands when it reaches list c.
        e = engine(
            "- list: b\n  items: [c]\n- list: c\n  items: [cat]\n" + rule("R", "proc.name in (b)")
        )
        assert fired(e, cat()) == ["R"]

    def test_append_and_override(self) -> None:
        base = "- list: bins\n  items: [dog]\n" + rule("R", "proc.name in (bins)")
        legacy = engine(base, "- list: bins\n  items: [cat]\n  append: true\n")
        assert fired(legacy, cat()) == ["R"]
        override = engine(base, "- list: bins\n  items: [cat]\n  override:\n    items: append\n")
        assert fired(override, cat()) == ["R"]
        assert fired(override, syscall("execve", proc={"name": "dog"})) == ["R"]
        replaced = engine(base, "- list: bins\n  items: [cat]\n")
        assert fired(replaced, syscall("execve", proc={"name": "dog"})) == []

    def test_append_to_missing_list_is_an_error(self) -> None:
        _, res = load("- list: nope\n  items: [cat]\n  append: true\n")
        assert "no list by that name already exists" in res.errors[0].message

    def test_append_and_override_together_is_an_error(self) -> None:
        _, res = load(
            "- list: a\n  items: [x]\n- list: a\n  items: [y]\n  append: true\n"
            "  override:\n    items: append\n"
        )
        assert "cannot be used together" in res.errors[0].message

    def test_redefinition_in_a_later_file_changes_earlier_rules(self) -> None:
        e = engine("- list: bins\n  items: [dog]\n" + rule("R", "proc.name in (bins)"),
                   "- list: bins\n  items: [cat]\n")
        assert fired(e, cat()) == ["R"]

    def test_unused_list_warns(self) -> None:
        _, res = load("- list: lonely\n  items: [x]\n" + rule("R", "proc.name=cat"))
        assert [w.code for w in res.warnings] == ["LOAD_UNUSED_LIST"]


# -- macros ------------------------------------------------------------------------------------
class TestMacros:
    def test_macro_acts_as_parenthesized(self) -> None:
        # without the implicit parentheses `proc.name=dog and m` would read
        # `proc.name=dog and proc.name=x or proc.name=cat` and fire on cat
        e = engine(
            "- macro: m\n  condition: proc.name=x or proc.name=cat\n"
            + rule("R", "proc.name=dog and m")
        )
        assert fired(e, cat()) == []

    def test_macro_sees_only_earlier_macros(self) -> None:
        _, res = load(
            "- macro: a\n  condition: b\n- macro: b\n  condition: proc.name=cat\n"
            + rule("R", "a")
        )
        assert "Undefined macro 'b'" in res.errors[0].message

    def test_rule_sees_every_macro_collected_so_far(self) -> None:
        e = engine(rule("R", "later") + "- macro: later\n  condition: proc.name=cat\n")
        assert fired(e, cat()) == ["R"]
        # Falco compiles after every file: a macro from a later file is not there yet
        _, res = load(rule("R", "later"), "- macro: later\n  condition: proc.name=cat\n")
        assert "Undefined macro 'later'" in res.errors[0].message
        assert res.errors[0].position.file == "f0.yaml"

    def test_macro_loop(self) -> None:
        _, res = load(
            "- macro: a\n  condition: proc.name=cat\n- macro: b\n  condition: a\n"
            "- macro: a\n  condition: b\n" + rule("R", "a")
        )
        assert "reference loop in macro" in res.errors[0].message

    def test_undefined_macro(self) -> None:
        _, res = load(rule("R", "nothere and proc.name=cat"))
        assert "Undefined macro 'nothere' used in filter." == res.errors[0].message

    def test_append_concatenates_text(self) -> None:
        e = engine(
            "- macro: m\n  condition: proc.name=dog\n" + rule("R", "m"),
            "- macro: m\n  condition: or proc.name=cat\n  append: true\n",
        )
        assert fired(e, cat()) == ["R"]

    def test_override_replace(self) -> None:
        e = engine(
            "- macro: m\n  condition: proc.name=dog\n" + rule("R", "m"),
            "- macro: m\n  condition: proc.name=cat\n  override:\n    condition: replace\n",
        )
        assert fired(e, cat()) == ["R"]
        assert fired(e, syscall("execve", proc={"name": "dog"})) == []

    def test_syntax_error_in_unused_macro_fails_the_load(self) -> None:
        _, res = load("- macro: broken\n  condition: proc.name=\n" + rule("R", "proc.name=cat"))
        assert res.errors[0].code == "LOAD_ERR_COMPILE_CONDITION"
        assert res.errors[0].item == "macro 'broken'"

    def test_unknown_field_in_unused_macro_is_fine(self) -> None:
        # Falco parses macros on their own but compiles fields only within rules
        _, res = load("- macro: odd\n  condition: no.such=1\n" + rule("R", "proc.name=cat"))
        assert res.ok and [w.code for w in res.warnings] == ["LOAD_UNUSED_MACRO"]


# -- exceptions -------------------------------------------------------------------------------
class TestExceptions:
    BASE = """
- rule: R
  desc: d
  condition: evt.type=execve
  output: "R %proc.name"
  priority: WARNING
  exceptions:
{exc}
"""

    def eng(self, exc: str, *more: str):
        return engine(self.BASE.format(exc=exc), *more)

    def test_tuple_values(self) -> None:
        e = self.eng(
            "    - name: ok\n      fields: [proc.name, proc.cwd]\n"
            "      values: [[cat, /tmp], [dog, /]]\n"
        )
        assert fired(e, syscall("execve", proc={"name": "cat", "cwd": "/tmp"})) == []
        assert fired(e, syscall("execve", proc={"name": "cat", "cwd": "/"})) == ["R"]
        assert fired(e, syscall("execve", proc={"name": "dog", "cwd": "/"})) == []

    def test_comps_and_list_items(self) -> None:
        e = self.eng(
            "    - name: ok\n      fields: [proc.name, proc.cwd]\n      comps: [in, startswith]\n"
            "      values: [[[cat, dog], /ho]]\n"
        )
        assert fired(e, syscall("execve", proc={"name": "dog", "cwd": "/home/x"})) == []
        assert fired(e, syscall("execve", proc={"name": "dog", "cwd": "/tmp"})) == ["R"]

    def test_value_can_be_a_list_name(self) -> None:
        e = self.eng(
            "    - name: ok\n      fields: [proc.name]\n      comps: [in]\n      values: [[pets]]\n",
            "- list: pets\n  items: [cat]\n",
        )
        assert fired(e, cat()) == []

    def test_scalar_fields_form(self) -> None:
        e = self.eng("    - name: ok\n      fields: proc.name\n      values: [cat, 'big dog']\n")
        assert fired(e, cat()) == []
        assert fired(e, syscall("execve", proc={"name": "big dog"})) == []
        assert fired(e, syscall("execve", proc={"name": "cow"})) == ["R"]

    def test_empty_values_add_nothing(self) -> None:
        e = self.eng("    - name: ok\n      fields: [proc.name]\n      values: []\n")
        assert fired(e, cat()) == ["R"]

    def test_append_values_to_existing_exception(self) -> None:
        e = self.eng(
            "    - name: ok\n      fields: [proc.name]\n      values: [[dog]]\n",
            "- rule: R\n  exceptions:\n    - name: ok\n      values: [[cat]]\n"
            "  override:\n    exceptions: append\n",
        )
        assert fired(e, cat()) == []

    def test_append_fields_to_existing_exception_is_an_error(self) -> None:
        _, res = load(
            self.BASE.format(exc="    - name: ok\n      fields: [proc.name]\n      values: [[x]]\n"),
            "- rule: R\n  exceptions:\n    - name: ok\n      fields: [proc.cwd]\n"
            "      values: [[cat]]\n  append: true\n",
        )
        assert "Can not append exception fields" in res.errors[0].message

    def test_exception_fields_are_recorded(self) -> None:
        e = self.eng("    - name: ok\n      fields: [proc.name, proc.cwd]\n      values: [[a, b]]\n")
        assert e.rules[0].exception_fields == ("proc.cwd", "proc.name")

    def test_unknown_comp(self) -> None:
        _, res = load(
            self.BASE.format(
                exc="    - name: ok\n      fields: [proc.name]\n      comps: [like]\n      values: [[x]]\n"
            )
        )
        assert "'like' is not a supported comparison operator" in res.errors[0].message

    def test_scalar_field_needs_list_comp(self) -> None:
        _, res = load(
            self.BASE.format(exc="    - name: ok\n      fields: proc.name\n      comps: '='\n      values: [x]\n")
        )
        assert "comps must be one of (in, pmatch, intersects)" in res.errors[0].message


# -- rules: order, append, override, enable --------------------------------------------------------
class TestRules:
    def test_first_match_wins_by_definition_order(self) -> None:
        e = engine(rule("A", "proc.name=cat"), rule("B", "evt.type=execve"))
        assert fired(e, cat()) == ["A"]

    def test_rule_matching_all(self) -> None:
        e = engine(rule("A", "proc.name=cat"), rule("B", "evt.type=execve"), rule_matching="all")
        assert fired(e, cat()) == ["A", "B"]

    def test_redefinition_keeps_original_position(self) -> None:
        e = engine(
            rule("A", "proc.name=dog"),
            rule("B", "evt.type=execve"),
            rule("A", "proc.name=cat"),
        )
        assert fired(e, cat()) == ["A"]

    def test_rules_in_different_event_types_do_not_shadow(self) -> None:
        e = engine(rule("A", "evt.type=open"), rule("B", "evt.type=execve"))
        assert fired(e, cat()) == ["B"]

    def test_legacy_append_condition(self) -> None:
        e = engine(rule("A", "evt.type=execve"),
                   "- rule: A\n  condition: and proc.name=dog\n  append: true\n")
        assert fired(e, cat()) == []

    def test_override_append_and_replace(self) -> None:
        e = engine(
            rule("A", "evt.type=execve"),
            "- rule: A\n  condition: and proc.name=cat\n  output: extra=%proc.pid\n"
            "  priority: CRITICAL\n  override:\n    condition: append\n    output: append\n"
            "    priority: replace\n",
        )
        [d] = e.process(cat())
        assert d.priority.name == "CRITICAL"
        assert d.output.split(" ", 1)[1].startswith("Critical A cat extra=100")

    def test_override_key_without_value_is_an_error(self) -> None:
        _, res = load(rule("A", "evt.type=execve"),
                      "- rule: A\n  override:\n    condition: append\n")
        assert "was specified but 'condition' is not defined" in res.errors[0].message

    def test_value_without_override_entry_is_an_error(self) -> None:
        _, res = load(
            rule("A", "evt.type=execve"),
            "- rule: A\n  condition: and proc.name=cat\n  desc: x\n  override:\n    condition: append\n",
        )
        assert "Unexpected key 'desc'" in res.errors[0].message

    def test_priority_cannot_be_appended(self) -> None:
        _, res = load(rule("A", "evt.type=execve"),
                      "- rule: A\n  priority: INFO\n  override:\n    priority: append\n")
        assert "cannot be appended to" in res.errors[0].message

    def test_append_to_missing_rule(self) -> None:
        _, res = load("- rule: Z\n  condition: and x\n  append: true\n")
        assert "no rule by that name already exists" in res.errors[0].message

    def test_enabled_false_and_enable_only_item(self) -> None:
        e = engine(rule("A", "proc.name=cat"), "- rule: A\n  enabled: false\n")
        assert fired(e, cat()) == []
        assert e.rules[0].enabled is False
        e = engine(rule("A", "proc.name=cat").rstrip() + "\n  enabled: false\n",
                   "- rule: A\n  enabled: true\n  override:\n    enabled: replace\n")
        assert fired(e, cat()) == ["A"]

    def test_disabled_rule_is_still_compiled(self) -> None:
        _, res = load(rule("A", "no.such=1").rstrip() + "\n  enabled: false\n")
        assert not res.ok

    def test_redefined_with_different_source(self) -> None:
        _, res = load(rule("A", "evt.type=execve"),
                      rule("A", "ct.name=x").rstrip() + "\n  source: aws_cloudtrail\n")
        assert "re-defined with a different source" in res.errors[0].message

    def test_min_priority(self) -> None:
        text = rule("A", "proc.name=cat").replace("WARNING", "DEBUG") + rule("B", "proc.name=cat")
        e = engine(text, min_priority=__import__("falconet.priority").priority.Priority.NOTICE)
        assert fired(e, cat()) == ["B"]

    def test_unknown_source_is_a_warning_and_skipped(self) -> None:
        e, res = load(rule("A", "whatever").rstrip() + "\n  source: nosuch\n")
        assert res.ok and res.warnings[0].code == "LOAD_UNKNOWN_SOURCE"
        assert e.rules == ()

    def test_skip_if_unknown_filter(self) -> None:
        e, res = load(
            rule("A", "proc.nobody=1").rstrip() + "\n  skip-if-unknown-filter: true\n"
            + rule("B", "evt.type=nosuchcall").rstrip() + "\n  skip-if-unknown-filter: true\n"
            + rule("C", "proc.name=cat")
        )
        assert res.ok
        assert [w.code for w in res.warnings] == ["LOAD_UNKNOWN_FILTER", "LOAD_UNKNOWN_FILTER"]
        assert [r.name for r in e.rules] == ["C"]

    def test_too_many_event_types_warns(self) -> None:
        text = rule("A", "evt.type!=execve").replace("  warn_evttypes: false\n", "")
        _, res = load(text)
        assert [w.code for w in res.warnings] == ["LOAD_NO_EVTTYPE"]
        _, res = load(rule("A", "evt.type!=execve"))
        assert res.warnings == []

    def test_unknown_keys_warn(self) -> None:
        _, res = load(rule("A", "proc.name=cat").rstrip() + "\n  colour: blue\n")
        assert res.ok and res.warnings[0].code == "LOAD_UNKNOWN_KEY"

    def test_invalid_priority(self) -> None:
        _, res = load(rule("A", "proc.name=cat").replace("WARNING", "LOUD"))
        assert res.errors[0].message == "Invalid priority"
        assert (res.errors[0].position.line, res.errors[0].position.column) == (6, 13)

    def test_failed_reload_keeps_previous_rules(self) -> None:
        e = engine(rule("A", "proc.name=cat"))
        res = e.load_texts([("bad.yaml", rule("B", "proc.name="))])
        assert not res.ok
        assert fired(e, cat()) == ["A"]


class TestVersions:
    def test_engine_version(self) -> None:
        assert load("- required_engine_version: 10\n")[1].ok
        assert load("- required_engine_version: 0.57.0\n")[1].ok
        assert not load("- required_engine_version: 1.0.0\n")[1].ok
        assert not load("- required_engine_version: 999\n")[1].ok

    def test_plugin_versions(self) -> None:
        ok = "- required_plugin_versions:\n  - name: json\n    version: 0.7.0\n"
        assert load(ok)[1].ok
        too_new = "- required_plugin_versions:\n  - name: json\n    version: 9.0.0\n"
        res = load(too_new)[1]
        assert "not compatible with required plugin version" in res.errors[0].message
        missing = "- required_plugin_versions:\n  - name: nope\n    version: 1.0.0\n"
        res = load(missing)[1]
        assert "must load one of: nope (>= 1.0.0)" in res.errors[0].message
        alt = (
            "- required_plugin_versions:\n  - name: nope\n    version: 1.0.0\n"
            "    alternatives:\n      - name: json\n        version: 0.1.0\n"
        )
        assert load(alt)[1].ok


@pytest.mark.parametrize(
    "text,message",
    [
        ("foo: bar", "Rules content is not yaml array of objects"),
        ("- foo", "Each element should be a yaml associative array"),
        ("- rule: A\n  desc: d\n  condition: proc.name=cat\n  priority: INFO\n",
         "Item has no mapping for key 'output'"),
        ("- rule: A\n  desc: d\n  condition:\n  output: o\n  priority: INFO\n",
         "Mapping for key 'condition' is empty"),
        ("- rule: A\n  desc: d\n  condition: [a]\n  output: o\n  priority: INFO\n",
         "Value is not a scalar value"),
        ("- list: l\n  items: x\n", "Value is not a sequence"),
        ("- list: l\n  items: [[a]]\n", "sequence value is not scalar"),
        ("- rule: A\n  desc: d\n  condition: a.b=1\n  output: o\n  priority: INFO\n  enabled: maybe\n",
         "Can't decode YAML scalar value"),
        ("- rule: A\n  desc: d\n  condition: proc.name=cat\n  output: o\n  priority: INFO\n"
         "  tags: tag\n", "Value is not a sequence"),
        ("- rule: A\n  desc: d\n  condition: proc.name=cat\n  output: o\n  priority: INFO\n"
         "  exceptions: x\n", "Rule exceptions must be a sequence"),
        ("- rule: A\n  desc: d\n  condition: ct.name=x\n  output: 'x %'\n  priority: INFO\n"
         "  source: aws_cloudtrail\n", "formatting cannot end with a %"),
        ("- rule: A\n  desc: d\n  condition: proc.name=cat\n  output: '%nope.x'\n  priority: INFO\n",
         "unknown filter"),
        ("- rule: A\n  desc: d\n  condition: proc.name>cat\n  output: o\n  priority: INFO\n",
         "expected a number value"),
        ("- rule: A\n  desc: d\n  condition: fd.num=abc\n  output: o\n  priority: INFO\n",
         "'abc' is not a valid number"),
        ("- rule: A\n  desc: d\n  condition: proc.name bcontains 41\n  output: o\n  priority: INFO\n",
         "'bcontains' operator not supported for string filters"),
        ("- rule: A\n  desc: d\n  condition: evt.is_open_read=yes\n  output: o\n  priority: INFO\n",
         "not a valid boolean"),
        ("- rule: A\n  desc: d\n  condition: proc.name regex '('\n  output: o\n  priority: INFO\n",
         "invalid regular expression"),
    ],
)
def test_errors_are_clear_and_positioned(text: str, message: str) -> None:
    _, res = load(text)
    assert not res.ok
    err = res.errors[0]
    assert message in err.message
    assert err.position.file == "f0.yaml"
    assert err.position.line >= 0


def test_condition_error_shows_caret() -> None:
    _, res = load(rule("A", "proc.name=cat and and"))
    err = res.errors[0]
    assert err.position.line == 4
    assert err.detail.splitlines()[1].index("^") == err.detail.splitlines()[0].index("and and") + 4


def test_plugin_requirements_follow_the_loaded_sources() -> None:
    needs_cloudtrail = "- required_plugin_versions:\n  - name: cloudtrail\n    version: 0.10.0\n"
    assert load(needs_cloudtrail)[1].ok
    res = load(needs_cloudtrail, sources=("syscall",))[1]
    assert "must load one of: cloudtrail (>= 0.10.0)" in res.errors[0].message

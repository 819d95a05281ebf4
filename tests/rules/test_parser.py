"""The condition grammar, token for token as libsinsp parses it."""

from __future__ import annotations

import pytest

from falconet.rules import ast as A
from falconet.rules.parser import ConditionSyntaxError, parse_condition, unescape


def check(expr: A.Expr) -> tuple[str, str, object]:
    assert isinstance(expr, A.BinaryCheck), expr
    right = expr.right
    if isinstance(right, A.Value):
        r: object = right.text
    elif isinstance(right, A.ListValue):
        r = list(right.values)
    else:
        r = str(right)
    return str(expr.left), expr.op, r


@pytest.mark.parametrize(
    "text,expected",
    [
        ("proc.name=bash", ("proc.name", "=", "bash")),
        ("proc.name == bash", ("proc.name", "==", "bash")),
        ("proc.name!=bash", ("proc.name", "!=", "bash")),
        ("fd.num>=0", ("fd.num", ">=", "0")),
        ("fd.num<=10", ("fd.num", "<=", "10")),
        ("fd.num<10", ("fd.num", "<", "10")),
        ("fd.num>0x1F", ("fd.num", ">", "0x1F")),
        ("proc.name contains ba", ("proc.name", "contains", "ba")),
        ("proc.name icontains BA", ("proc.name", "icontains", "BA")),
        ("evt.buffer bcontains CAFEBABE", ("evt.buffer", "bcontains", "CAFEBABE")),
        ("proc.name startswith ba", ("proc.name", "startswith", "ba")),
        ("evt.buffer bstartswith 7f45", ("evt.buffer", "bstartswith", "7f45")),
        ("proc.name endswith sh", ("proc.name", "endswith", "sh")),
        ("fd.name glob '/etc/*'", ("fd.name", "glob", "/etc/*")),
        ("fd.name iglob '/ETC/*'", ("fd.name", "iglob", "/ETC/*")),
        ("proc.name regex 'ba.*'", ("proc.name", "regex", "ba.*")),
        ("proc.name in (bash, sh)", ("proc.name", "in", ["bash", "sh"])),
        ("proc.name in(bash,sh)", ("proc.name", "in", ["bash", "sh"])),
        ("proc.name in ()", ("proc.name", "in", [])),
        ("ka.groups intersects (a, b)", ("ka.groups", "intersects", ["a", "b"])),
        ("fd.name pmatch (/var/run, /tmp)", ("fd.name", "pmatch", ["/var/run", "/tmp"])),
        ("proc.aname[2]=sshd", ("proc.aname[2]", "=", "sshd")),
        ("json.value[/a/b]=x", ("json.value[/a/b]", "=", "x")),
        ('json.value["/a b"]=x', ("json.value[/a b]", "=", "x")),
        ("evt.arg.flags contains O_TRUNC", ("evt.arg.flags", "contains", "O_TRUNC")),
        ("proc.name=runc:[0:PARENT]", ("proc.name", "=", "runc:[0:PARENT]")),
        ("ka.uri=/healthz?", ("ka.uri", "=", "/healthz?")),
        ("evt.dir = <", ("evt.dir", "=", "<")),
        ('proc.name="a b"', ("proc.name", "=", "a b")),
        ("proc.name='a b'", ("proc.name", "=", "a b")),
        ("proc.name startswith oneof (a, b)", ("proc.name", "startswith oneof", ["a", "b"])),
        ("proc.name = anyof (a, b)", ("proc.name", "= anyof", ["a", "b"])),
        ("proc.name contains allof (a, b)", ("proc.name", "contains allof", ["a", "b"])),
        ("proc.name = val(proc.pname)", ("proc.name", "=", "val(proc.pname)")),
        ("tolower(proc.name) = bash", ("tolower(proc.name)", "=", "bash")),
        ("toupper(tolower(proc.name)) = BASH", ("toupper(tolower(proc.name))", "=", "BASH")),
        ("proc.name = tolower(proc.pname)", ("proc.name", "=", "tolower(proc.pname)")),
        ("len(proc.name) > 3", ("len(proc.name)", ">", "3")),
    ],
)
def test_checks(text: str, expected: tuple[str, str, object]) -> None:
    assert check(parse_condition(text)) == expected


def test_exists_is_unary() -> None:
    e = parse_condition("ct.error exists")
    assert isinstance(e, A.UnaryCheck) and e.op == "exists" and str(e.left) == "ct.error"


def test_precedence_not_and_or() -> None:
    e = parse_condition("a.b=1 or not c.d=2 and e.f=3")
    assert isinstance(e, A.Or)
    assert isinstance(e.children[1], A.And)
    assert isinstance(e.children[1].children[0], A.Not)


def test_chains_are_nary() -> None:
    e = parse_condition("a.b=1 and c.d=2 and e.f=3")
    assert isinstance(e, A.And) and len(e.children) == 3


def test_parentheses_group_and_vanish() -> None:
    e = parse_condition("((a.b=1))")
    assert isinstance(e, A.BinaryCheck)
    e = parse_condition("(a.b=1 or c.d=2) and e.f=3")
    assert isinstance(e, A.And) and isinstance(e.children[0], A.Or)


def test_not_forms() -> None:
    assert isinstance(parse_condition("not(a.b=1)"), A.Not)
    assert isinstance(parse_condition("not a.b=1"), A.Not)
    # two nots cancel, as in libsinsp
    assert isinstance(parse_condition("not not a.b=1"), A.BinaryCheck)
    assert isinstance(parse_condition("not not not a.b=1"), A.Not)


def test_and_or_before_parenthesis() -> None:
    e = parse_condition("a.b=1 and(c.d=2 or(e.f=3))")
    assert isinstance(e, A.And)


def test_identifier_is_macro_reference() -> None:
    e = parse_condition("spawned_process and not my_macro")
    assert isinstance(e, A.And)
    assert isinstance(e.children[0], A.Identifier) and e.children[0].name == "spawned_process"


def test_identifier_list_value() -> None:
    e = parse_condition("proc.name in my_list")
    assert check(e) == ("proc.name", "in", "my_list")


def test_positions() -> None:
    e = parse_condition("a.b=1 and\n  c.d=2")
    assert isinstance(e, A.And)
    second = e.children[1]
    assert second.pos.idx == 12 and second.pos.line == 2 and second.pos.col == 3


@pytest.mark.parametrize(
    "text,message,idx",
    [
        ("", "filter input string is empty", 0),
        ("proc.name=bash andx", "expected blank or '(' after 'and'", 18),
        ("proc.name=bash or_x", "expected blank or '(' after 'or'", 17),
        ("proc.name", "expected a valid check operator", 9),
        ("proc.name containsx", "expected a valid check operator", 10),
        ('proc.name contains"x"', "expected a valid check operator", 10),
        ("proc.name > abc", "expected a number value", 12),
        ("proc.name in ( a", "expected a ')' token", 16),
        ("(proc.name=a", "expected a ')' token", 12),
        ("proc.name=a )", "unexpected token after 'a', expecting 'or', 'and'", 12),
        ("proc.aname[2=x", "expected a ']' token", 14),
        ("proc.name=", "expected a string value", 10),
        ("= x", "expected a '(' token, a field check, or an identifier", 0),
        ("proc.name in ash, bash", "unexpected token after 'ash'", 16),
    ],
)
def test_errors_have_positions(text: str, message: str, idx: int) -> None:
    with pytest.raises(ConditionSyntaxError) as err:
        parse_condition(text)
    assert message in err.value.message
    assert err.value.pos.idx == idx


class TestEscapes:
    def test_supported(self) -> None:
        assert unescape(r'"a\tb\nc\\d\/e\"f"') == 'a\tb\nc\\d/e"f'
        assert unescape(r"'it\'s'") == "it's"
        assert unescape(r'"\x41\x42"') == "AB"

    def test_backslash_space_is_one_backslash(self) -> None:
        # the legacy escape used by the sandbox rules: "\ " is a single backslash
        assert unescape('"\\ "') == "\\"
        assert check(parse_condition('proc.args contains "\\ "')) == ("proc.args", "contains", "\\")

    @pytest.mark.parametrize(
        "token,err",
        [
            (r'"\q"', "unsupported string escape sequence"),
            (r"""'\"'""", "invalid \\\" escape"),
            (r'''"\''"''', "invalid \\' escape"),
            (r'"\x4"', "truncated hex"),
            (r'"\xZZ"', "invalid hex char"),
        ],
    )
    def test_invalid(self, token: str, err: str) -> None:
        with pytest.raises(ValueError, match=err.replace("\\", "\\\\").replace('"', '"')):
            unescape(token)

    def test_quote_after_escaped_backslash_does_not_close(self) -> None:
        # libsinsp ends a quoted string at the first delimiter not preceded by a
        # backslash, so "a\\" keeps going; here the string is then unterminated and the
        # parser falls back to a bare string, which cannot start with a quote.
        with pytest.raises(ConditionSyntaxError):
            parse_condition('proc.name = "a\\\\"')

    def test_bare_backslash(self) -> None:
        assert check(parse_condition("proc.args endswith \\")) == ("proc.args", "endswith", "\\")


def test_recursion_limit() -> None:
    deep = "(" * 400 + "a.b=1" + ")" * 400
    with pytest.raises(ConditionSyntaxError, match="exceeded max depth limit of 1000"):
        parse_condition(deep)
    ok = "(" * 150 + "a.b=1" + ")" * 150
    assert isinstance(parse_condition(ok), A.BinaryCheck)


def test_huge_flat_condition_parses() -> None:
    text = " or ".join(f"proc.name=p{i}" for i in range(5000))
    e = parse_condition(text)
    assert isinstance(e, A.Or) and len(e.children) == 5000

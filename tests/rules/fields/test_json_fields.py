"""json.* / jevt.* fields: the json plugin's pointer walk and renderings."""

from __future__ import annotations

from typing import Any

import pytest

from falconet.event import Event
from falconet.fields import FieldArgError, FieldType, UnknownFieldError
from falconet.rules.fields import jsonfields, registry_for

PLUGIN_SOURCES = ("aws_cloudtrail", "k8s_audit", "okta", "github", "gcp_auditlog")

DOC: dict[str, Any] = {
    "s": "text",
    "n": 33,
    "f": 33.5,
    "t": True,
    "z": None,
    "o": {"a": [1, "two", {"x": None}], "a/b": "slash", "m~n": "tilde", "": "empty-key"},
    "empty": "",
    "arr": ["zero", "one", "two"],
    "html": "a<b & c>d",
}


def ev(payload: Any, source: str = "aws_cloudtrail", ts: int = 1_709_287_530_000_000_000) -> Event:
    return Event(source=source, type="x", ts=ts, host="h", id="1", payload=payload)


def val(pointer: str | None, payload: Any = DOC, source: str = "aws_cloudtrail") -> Any:
    return registry_for(source).bind("json.value", pointer).extract(ev(payload, source))


def test_version() -> None:
    assert jsonfields.PLUGIN_VERSION == "0.7.4"


@pytest.mark.parametrize("source", PLUGIN_SOURCES)
def test_fields_exist_for_every_plugin_source(source: str) -> None:
    reg = registry_for(source)
    for prefix in ("json", "jevt"):
        for name in ("value", "obj", "rawtime"):
            f = reg.get(f"{prefix}.{name}")
            assert f is not None and f.type is FieldType.CHARBUF and not f.is_list


def test_not_for_syscall() -> None:
    with pytest.raises(UnknownFieldError):
        registry_for("syscall").resolve("json.value", "/a")


@pytest.mark.parametrize("name", ["json.value", "jevt.value"])
def test_value_requires_an_argument(name: str) -> None:
    with pytest.raises(FieldArgError):
        registry_for("k8s_audit").bind(name)


@pytest.mark.parametrize("name", ["json.obj", "jevt.obj", "json.rawtime", "jevt.rawtime"])
def test_others_take_no_argument(name: str) -> None:
    with pytest.raises(FieldArgError):
        registry_for("k8s_audit").bind(name, "x")


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("/s", "text"),  # strings unquoted
        ("/empty", ""),  # present and empty
        ("/n", "33"),  # other values as compact JSON
        ("/f", "33.5"),
        ("/t", "true"),
        ("/z", "null"),  # null is a value, not missing
        ("/o/a", '[1,"two",{"x":null}]'),
        ("/o/a/2", '{"x":null}'),
        ("/o/a/1", "two"),
        ("/o/a/2/x", "null"),
        ("/o/a~1b", "slash"),  # ~1 is /
        ("/o/m~0n", "tilde"),  # ~0 is ~
        ("/o/", "empty-key"),  # an empty step is the "" key
        ("s", "text"),  # the leading slash is optional
        ("/arr/+1", "one"),  # array steps are read by strconv.Atoi
        ("/arr/01", "one"),
        ("/arr/-0", "zero"),
    ],
)
def test_value(pointer: str, expected: str) -> None:
    assert val(pointer) == expected


@pytest.mark.parametrize(
    "pointer",
    ["/missing", "/o/a/3", "/arr/-1", "/arr/x", "/s/x", "/n/0", "/z/x", "/o/a/1/0", "/arr/ 1", "/"],
)
def test_value_missing(pointer: str) -> None:
    assert val(pointer) is None


def test_empty_pointer_is_whole_document() -> None:
    assert val("", {"b": 1, "a": [True]}) == '{"b":1,"a":[true]}'


def test_jevt_value_is_an_alias() -> None:
    reg = registry_for("k8s_audit")
    e = ev(DOC, "k8s_audit")
    for p in ("/s", "/o/a", "/missing", "/n"):
        assert reg.bind("jevt.value", p).extract(e) == reg.bind("json.value", p).extract(e)


def test_nul_truncates_strings() -> None:
    assert val("/s", {"s": "abc\x00def"}) == "abc"


def test_go_escaping_per_source() -> None:
    # CloudTrail files are passed through as written (no HTML escaping) ...
    assert val("/o", {"o": {"u": "a<b&c>"}}) == '{"u":"a<b&c>"}'
    # ... while k8s audit events were written by the apiserver's Go encoder.
    assert val("/o", {"o": {"u": "a<b&c>\u2028"}}, "k8s_audit") == (
        '{"u":"a\\u003cb\\u0026c\\u003e\\u2028"}'
    )
    # a plain string value is unescaped in both
    assert val("/html", DOC, "k8s_audit") == "a<b & c>d"


def test_github_view_is_go_remarshalled_map() -> None:
    payload = {"b": {"z": 1, "y": 2.0}, "a": "x&y"}
    assert val("", payload, "github") == '{"a":"x\\u0026y","b":{"y":2,"z":1}}'
    assert val("/b/y", payload, "github") == "2"


def test_obj_is_indented_like_go_json_indent() -> None:
    payload = {"kind": "Event", "list": [1, {"a": None}], "empty": {}, "none": [], "s": "<x>"}
    expected = (
        "{\n"
        '  "kind": "Event",\n'
        '  "list": [\n'
        "    1,\n"
        "    {\n"
        '      "a": null\n'
        "    }\n"
        "  ],\n"
        '  "empty": {},\n'
        '  "none": [],\n'
        '  "s": "<x>"\n'
        "}"
    )
    reg = registry_for("aws_cloudtrail")
    e = ev(payload)
    assert reg.bind("json.obj").extract(e) == expected
    assert reg.bind("jevt.obj").extract(e) == expected
    k = ev(payload, "k8s_audit")
    assert registry_for("k8s_audit").bind("jevt.obj").extract(k) == expected.replace(
        "<x>", "\\u003cx\\u003e"
    )


def test_rawtime_is_the_timestamp_as_string() -> None:
    reg = registry_for("k8s_audit")
    e = ev({}, "k8s_audit", ts=1_709_290_801_204_518_000)
    assert reg.bind("jevt.rawtime").extract(e) == "1709290801204518000"
    assert reg.bind("json.rawtime").extract(e) == "1709290801204518000"
    # k8s rules use `jevt.rawtime exists` (always true) and `jevt.rawtime=0` (never)
    assert reg.bind("jevt.rawtime").extract(ev({}, "k8s_audit", ts=0)) == "0"


def test_big_integers_fall_back_to_exact_text() -> None:
    assert val("/n", {"n": 2**70}) == str(2**70)

"""Context references inside a syscall batch record (docs/events.md "Context by reference")."""

from __future__ import annotations

from falconet.shared_context import resolve


def _full(n: int) -> dict:
    return {"source": "syscall", "event": {"args": {"fd": n}, "proc": {"pid": 7}, "ancestors": [],
                                           "user": {"uid": 0}, "group": {"gid": 0},
                                           "container": {"id": "host"}}}  # fmt: skip


def _ref(j: object) -> dict:
    return {"source": "syscall", "event": {"args": {"fd": 9}, "ctx": j, "fd": {"num": 9}}}


def test_a_reference_takes_the_context_of_the_envelope_it_names() -> None:
    items = [_full(3), _ref(0), _ref(1)]
    assert resolve(items) == {}
    for item in items[1:]:
        ev = item["event"]
        assert "ctx" not in ev and ev["fd"] == {"num": 9} and ev["args"] == {"fd": 9}
        for key in ("proc", "ancestors", "user", "group", "container"):
            assert ev[key] is items[0]["event"][key]  # shared, not copied


def test_bad_references_are_reported_and_left_as_they_were() -> None:
    no_context = {"source": "syscall", "event": {"args": {}}}
    items = [_ref(0), _full(3), _ref(5), _ref(True), no_context, _ref(4), _ref(2), "junk", _ref(7)]
    problems = resolve(items)
    assert sorted(problems) == [0, 2, 3, 5, 6, 8]
    assert "none: this is the first" in problems[0]
    assert "(0 to 1), got 5" in problems[2]
    assert "got True" in problems[3]
    assert "item 4, which carries no process context" in problems[5]
    assert "item 2, which is invalid itself" in problems[6]
    assert "item 7, which carries no process context" in problems[8]
    assert all(items[i]["event"]["ctx"] is not None and "proc" not in items[i]["event"] for i in problems)

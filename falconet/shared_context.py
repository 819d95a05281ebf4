"""Syscall envelopes of one batch record share their thread's context by reference.

A node sensor publishes a thread's events close together: a compiler opens hundreds of
headers within milliseconds, each event carrying the same ``proc``, ``ancestors``,
``user``, ``group`` and ``container`` (about 2.5 KB of JSON, most of every event). Inside
one batch record (a JSON array of envelopes, docs/events.md "On Kafka") the sensor writes
that context once; a later event of the same context says ``"ctx": j`` in its ``event``
object instead, ``j`` being the index of the earlier envelope in the array that carries it.

Every reader of batch records calls :func:`resolve` on the decoded array before it looks
at the events, so nothing downstream ever sees a reference. The events then share the
context's dicts, which readers only read.
"""

from __future__ import annotations

from typing import Any

#: the members of ``event`` a reference stands for
CONTEXT_KEYS: tuple[str, ...] = ("proc", "ancestors", "user", "group", "container")
#: the member of ``event`` that refers to an earlier envelope's context
REF_KEY = "ctx"


def resolve(items: list[Any]) -> dict[int, str]:
    """Replace, in place, each ``event.ctx`` reference of a batch by the context it names.

    Returns the problems by index: an item whose reference is not the index of an earlier
    envelope that carries a process context is left as it was and must be reported (and
    skipped) by the caller; the other items are unaffected.
    """
    problems: dict[int, str] = {}
    for i, item in enumerate(items):
        if item.__class__ is not dict:
            continue
        ev = item.get("event")
        if ev.__class__ is not dict or REF_KEY not in ev:
            continue
        j = ev[REF_KEY]  # left in place when it is bad: the dead letter shows it
        if j.__class__ is not int or not 0 <= j < i:
            earlier = f"0 to {i - 1}" if i else "none: this is the first"
            problems[i] = (
                f"'event.{REF_KEY}' must be the index of an earlier event of the same "
                f"record ({earlier}), got {j!r}"
            )
            continue
        if j in problems:
            problems[i] = f"'event.{REF_KEY}' refers to item {j}, which is invalid itself"
            continue
        target = items[j]
        src = target.get("event") if target.__class__ is dict else None
        if src.__class__ is not dict or "proc" not in src:
            problems[i] = f"'event.{REF_KEY}' refers to item {j}, which carries no process context"
            continue
        del ev[REF_KEY]
        for key in CONTEXT_KEYS:
            if key in src and key not in ev:
                ev[key] = src[key]
    return problems

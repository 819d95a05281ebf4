"""Old event layouts → current ones, enter parameters merged into exit events.

Captures written before libs 0.22 hold an enter event and an exit event per syscall, in
layouts of their time (``open`` enter without parameters, ``execve`` exit with 16
parameters, ``link`` with its paths on the enter event …). libscap's savefile converter
upgrades every event, step by step, to the current layout of the libs event table,
taking the parameters the exit event lacks from the enter event of the same thread
(``userspace/libscap/engine/savefile/converter``). :class:`Upgrader` applies the same
declarative table (``CONVERSIONS``, generated from libs) and the same rules:

1. events flagged unused are dropped;
2. events the converter does not manage pass as they are if current, old enter events are
   dropped;
3. managed enter events are converted (stored for their exit, passed, or both);
4. managed exit events are converted until they reach the current layout;

so that what comes out is exactly what libsinsp sees. Where libscap would abort the whole
capture (an enter event of another syscall waiting for this exit, a missing table entry),
the event is handled as if its enter event had been lost and the problem is counted.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from . import events_table as T
from .blocks import EventRecord
from .params import FIXED_WIDTH

#: The converter gives up after this many steps (libscap's MAX_CONVERSION_BOUNDARY is 50).
MAX_STEPS = 50

PASS, DROP, CONTINUE, ERROR = "pass", "drop", "continue", "error"
_CONTAINER_E = T.CODES["PPME_CONTAINER_E"]


@dataclass(slots=True)
class Upgraded:
    """An event in its current layout; ``params[i]`` is ``b""`` when empty."""

    type: int
    params: list[bytes]


@dataclass(slots=True)
class UpgradeStats:
    dropped: int = 0
    lost_enter: int = 0
    unconvertible: int = 0
    problems: list[str] = field(default_factory=list)


def verdict(etype: int, nparams: int) -> str:
    """libscap's test_event_convertibility."""
    flags = T.EVENTS[etype][2]
    if flags & T.EF_UNUSED:
        return DROP
    if not flags & T.EF_CONVERTER_MANAGED:
        if not flags & T.EF_OLD_VERSION:
            return PASS
        return DROP if etype % 2 == 0 else ERROR
    if etype % 2 == 0:
        return CONTINUE
    expected = len(T.EVENTS[etype][3])
    if nparams > expected:
        return ERROR
    if flags & T.EF_OLD_VERSION or nparams != expected:
        return CONTINUE
    return PASS


def _default(etype: int, index: int) -> bytes:
    ptype = T.EVENTS[etype][3][index][1]
    width = FIXED_WIDTH.get(ptype, 0)
    if not width:
        return b""
    if ptype in (T.PT_UID, T.PT_GID):
        return b"\xff" * width
    return b"\0" * width


def _fit(etype: int, index: int, raw: bytes) -> bytes:
    """Cap a copied parameter to the size its new type allows."""
    params = T.EVENTS[etype][3]
    if index >= len(params):
        return raw
    width = FIXED_WIDTH.get(params[index][1], 0)
    return raw[:width] if width and len(raw) > width else raw


def _container_json(old: list[bytes]) -> bytes:
    """The json parameter libscap builds from an old container event (id, type, name, image)."""

    def text(i: int) -> str:
        b = old[i] if i < len(old) else b""
        return b.split(b"\0", 1)[0].decode("utf-8", "replace")

    ctype = struct.unpack_from("<I", old[1])[0] if len(old) > 1 and len(old[1]) >= 4 else 0
    doc = {"id": text(0), "type": ctype, "name": text(2), "image": text(3)}
    return json.dumps(doc, separators=(",", ":")).encode() + b"\0"


class Upgrader:
    """Upgrades the events of one capture, in file order."""

    def __init__(self) -> None:
        self._stored: dict[int, tuple[int, list[bytes]]] = {}
        self.stats = UpgradeStats()

    def _problem(self, msg: str) -> None:
        if len(self.stats.problems) < 20:
            self.stats.problems.append(msg)

    def upgrade(self, ev: EventRecord) -> Upgraded | None:
        """The event in its current layout, or ``None`` when libscap would not pass it on."""
        etype, params = ev.type, list(ev.params)
        for _ in range(MAX_STEPS):
            v = verdict(etype, len(params))
            if v == PASS:
                return Upgraded(etype, params)
            if v == DROP:
                self.stats.dropped += 1
                return None
            if v == ERROR:
                self.stats.unconvertible += 1
                self._problem(f"event type {etype} with {len(params)} parameters cannot be converted")
                return None
            conv = T.CONVERSIONS.get((etype, len(params)))
            if conv is None:
                self.stats.unconvertible += 1
                self._problem(f"no conversion for event type {etype} with {len(params)} parameters")
                return None
            action, desired, instrs = conv
            if action == "store":
                self._stored[ev.tid] = (etype, params)
                self.stats.dropped += 1
                return None
            if action == "pass":
                return Upgraded(etype, params)
            if action == "store_and_pass":
                self._stored[ev.tid] = (etype, params)
                return Upgraded(etype, params)
            if action == "add":
                new_type, new_params = etype, list(params)
            else:  # change
                new_type, new_params = desired, []
            used_enter = False
            for kind, num, fallback_empty in instrs:
                slot = len(new_params)
                if kind == "empty":
                    new_params.append(b"")
                    continue
                if kind == "default":
                    new_params.append(_default(new_type, slot))
                    continue
                if kind == "callback":
                    new_params.append(_container_json(params) if etype == _CONTAINER_E else b"")
                    continue
                src: list[bytes] | None = None
                if kind == "old":
                    src = params
                else:  # enter
                    stored = self._stored.get(ev.tid)
                    if stored is not None and stored[0] != etype - 1:
                        self.stats.lost_enter += 1
                        self._problem(
                            f"tid {ev.tid}: the stored enter event (type {stored[0]}) does not "
                            f"belong to exit type {etype}; treated as lost"
                        )
                        stored = None
                    if stored is not None:
                        src = stored[1]
                        used_enter = True
                if src is None or num >= len(src):
                    new_params.append(b"" if fallback_empty else _default(new_type, slot))
                    continue
                new_params.append(_fit(new_type, slot, src[num]))
            if used_enter:
                self._stored.pop(ev.tid, None)
            etype, params = new_type, new_params
        self.stats.unconvertible += 1
        self._problem(f"event type {ev.type}: conversion did not settle in {MAX_STEPS} steps")
        return None

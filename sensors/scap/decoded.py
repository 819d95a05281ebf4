"""An upgraded event with its parameters decoded on demand, by index or by name."""

from __future__ import annotations

from typing import Any

from . import events_table as T
from .params import decode


class ScapEvent:
    """One event in the current libs layout, as the state tracker and converter see it."""

    __slots__ = ("_values", "cpu", "flags", "info", "name", "num", "params", "tid", "ts", "type")

    def __init__(self, ts: int, tid: int, cpu: int, etype: int, params: list[bytes], num: int) -> None:
        self.ts = ts
        self.tid = tid
        self.cpu = cpu
        self.type = etype
        self.params = params
        self.num = num
        name, _category, self.flags, self.info = T.EVENTS[etype]
        self.name: str = name
        self._values: dict[int, Any] = {}

    @property
    def is_enter(self) -> bool:
        return self.type % 2 == 0

    def empty(self, i: int) -> bool:
        return i >= len(self.params) or not self.params[i]

    def at(self, i: int) -> Any:
        """The decoded value of parameter ``i`` (``None`` when absent or empty)."""
        if i >= len(self.params) or i >= len(self.info):
            return None
        v = self._values.get(i, self)
        if v is self:
            pinfo = self.info[i]
            v = decode(pinfo[1], self.params[i], pinfo[3])
            self._values[i] = v
        return v

    def index(self, name: str) -> int:
        for i, p in enumerate(self.info):
            if p[0] == name:
                return i
        return -1

    def get(self, name: str) -> Any:
        i = self.index(name)
        return None if i < 0 else self.at(i)

    def int_at(self, i: int, default: int = 0) -> int:
        v = self.at(i)
        return v if isinstance(v, int) else default

    @property
    def res(self) -> int | None:
        """The return value (libsinsp's get_syscall_return_value): parameter 0 of exit events
        when it is an errno, fd or pid."""
        if self.is_enter or not self.info:
            return None
        if self.info[0][1] in (T.PT_ERRNO, T.PT_FD, T.PT_PID):
            v = self.at(0)
            return v if isinstance(v, int) else None
        return None

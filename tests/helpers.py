"""Small builders for events and engines used across the tests."""

from __future__ import annotations

from typing import Any

from falconet.event import Event
from falconet.rules.engine import Engine, EngineConfig
from falconet.rules.result import LoadResult

TS = 1_718_000_000_123_456_789


def syscall(
    etype: str,
    *,
    args: dict[str, Any] | None = None,
    res: int | None = 0,
    proc: dict[str, Any] | None = None,
    ancestors: list[dict[str, Any]] | None = None,
    fd: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    container: str = "host",
    enrichment: dict[str, Any] | None = None,
    num: int = 1,
    ts: int = TS,
    host: str = "node-a",
) -> Event:
    """A syscall event in the documented schema (docs/events.md)."""
    payload: dict[str, Any] = {
        "args": args or {},
        "proc": {"pid": 100, "tid": 100, "name": "cat", "exe": "cat", "exepath": "/usr/bin/cat",
                 "args": [], "cwd": "/", "tty": 0, **(proc or {})},
        "ancestors": ancestors if ancestors is not None else [{"pid": 1, "name": "systemd"}],
        "user": user or {"uid": 0, "name": "root", "loginuid": -1},
        "group": {"gid": 0, "name": "root"},
        "container": {"id": container},
    }
    if res is not None:
        payload["res"] = res
    if fd is not None:
        payload["fd"] = fd
    return Event("syscall", etype, ts, host, f"{host}-{num}", payload, enrichment or {}, {}, num)


def engine(*texts: str, **config: Any) -> Engine:
    """An engine loaded from rule texts (named f0.yaml, f1.yaml …); fails on load errors."""
    e = Engine(EngineConfig(**config))
    res = e.load_texts([(f"f{i}.yaml", t) for i, t in enumerate(texts)])
    assert res.ok, "\n".join(m.format() for m in res.messages)
    return e


def load(*texts: str, **config: Any) -> tuple[Engine, LoadResult]:
    e = Engine(EngineConfig(**config))
    return e, e.load_texts([(f"f{i}.yaml", t) for i, t in enumerate(texts)])


def fired(e: Engine, ev: Event) -> list[str]:
    return [d.rule for d in e.process(ev)]

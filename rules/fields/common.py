"""Generic ``evt.*`` fields that every source has (number, times, source, host)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from falconet import timefmt
from falconet.fields import BoundField, FieldDef, FieldType, field, simple


def _num(ev: Any) -> int | None:
    return ev.num or None


def _ts(ev: Any) -> int:
    return ev.ts


def _source(ev: Any) -> str:
    return ev.source


def _hostname(ev: Any) -> str | None:
    return ev.host or None


def _time(arg: str | None) -> BoundField:
    # a number in JSON output_fields, the local clock in text (as Falco prints it)
    return BoundField("evt.time", _ts, FieldType.ABSTIME, text=timefmt.clock_ns)


def _rendered(name: str, fmt: Callable[[int], str]) -> FieldDef:
    return field(name, FieldType.CHARBUF, "", simple(lambda ev: fmt(ev.ts)))


GENERIC_FIELDS: tuple[FieldDef, ...] = (
    field("evt.num", FieldType.UINT64, "event number, from 1 within its stream", simple(_num)),
    field("evt.time", FieldType.ABSTIME, "event time; text form HH:MM:SS.nnnnnnnnn (local)", _time),
    field(
        "evt.time.s",
        FieldType.CHARBUF,
        "event time as HH:MM:SS (local)",
        simple(lambda ev: timefmt.clock_s(ev.ts)),
    ),
    field(
        "evt.time.iso8601",
        FieldType.CHARBUF,
        "event time in ISO 8601 with nanoseconds (UTC)",
        simple(lambda ev: timefmt.iso8601_offset(ev.ts)),
    ),
    field(
        "evt.datetime",
        FieldType.CHARBUF,
        "event date and time, YYYY-MM-DD HH:MM:SS.nnnnnnnnn (local)",
        simple(lambda ev: timefmt.datetime_ns(ev.ts)),
    ),
    field(
        "evt.datetime.s",
        FieldType.CHARBUF,
        "event date and time, YYYY-MM-DD HH:MM:SS (local)",
        simple(lambda ev: timefmt.datetime_ns(ev.ts)[:19]),
    ),
    field("evt.rawtime", FieldType.ABSTIME, "event time in ns since the epoch", simple(_ts)),
    field(
        "evt.rawtime.s",
        FieldType.ABSTIME,
        "whole seconds of the event time",
        simple(lambda ev: ev.ts // 1_000_000_000),
    ),
    field(
        "evt.rawtime.ns",
        FieldType.ABSTIME,
        "nanoseconds part of the event time",
        simple(lambda ev: ev.ts % 1_000_000_000),
    ),
    field("evt.source", FieldType.CHARBUF, "the event source name", simple(_source)),
    field("evt.hostname", FieldType.CHARBUF, "the host the event comes from", simple(_hostname)),
)


def plugin_event_fields(
    plugin: str, info: Callable[[Any], str | None]
) -> tuple[FieldDef, ...]:
    """``evt.pluginname``/``evt.plugininfo`` for a plugin-style source.

    ``info(event)`` is the one-line summary the upstream plugin gives for an event.
    """
    return (
        field("evt.pluginname", FieldType.CHARBUF, "the plugin that produced the event",
              simple(lambda ev: plugin)),
        field("evt.plugininfo", FieldType.CHARBUF, "one-line summary of the event",
              simple(info)),
        field("evt.is_async", FieldType.BOOL, "true for asynchronous events",
              simple(lambda ev: False)),
    )

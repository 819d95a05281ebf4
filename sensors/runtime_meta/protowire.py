"""A small Protocol Buffers wire-format codec driven by a field table.

The CRI client needs a handful of ``runtime.v1`` messages (:mod:`.cri_messages`). Rather
than generated code tied to one protobuf runtime version, each message is a table of
``field number → Field`` and this module turns dicts into wire bytes and back. Decoding
keeps only the fields in the table (unknown fields are skipped, as protobuf does), so a
newer runtime that adds fields is read without change.

Kinds: ``string``, ``bytes``, ``bool``, ``int`` (int32/uint32/enum varints), ``int64``
(two's complement varint), ``message`` (a nested table), ``map`` (``map<string,string>``).
A missing scalar decodes to its protobuf default; a missing message is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str  # string | bytes | bool | int | int64 | message | map
    repeated: bool = False
    message: Mapping[int, Field] | None = None  # the table of a nested message


Message = Mapping[int, Field]

_DEFAULTS: dict[str, Any] = {"string": "", "bytes": b"", "bool": False, "int": 0, "int64": 0}


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the message."""


# -- encoding --------------------------------------------------------------------------------
def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint((number << 3) | wire)


def _len(number: int, data: bytes) -> bytes:
    return _key(number, _LEN) + _varint(len(data)) + data


def _one(number: int, field: Field, value: Any) -> bytes:
    kind = field.kind
    if kind == "string":
        return _len(number, str(value).encode())
    if kind == "bytes":
        return _len(number, bytes(value))
    if kind in ("bool", "int", "int64"):
        return _key(number, _VARINT) + _varint(int(value))
    if kind == "message":
        assert field.message is not None
        return _len(number, encode(field.message, value))
    raise ValueError(f"unknown field kind {kind!r}")


def encode(table: Message, value: Mapping[str, Any]) -> bytes:
    """The wire bytes of ``value`` (a dict keyed by field name); defaults are not written."""
    out = bytearray()
    for number, field in sorted(table.items()):
        v = value.get(field.name)
        if v is None:
            continue
        if field.kind == "map":
            for k, item in dict(v).items():
                entry = _len(1, str(k).encode()) + _len(2, str(item).encode())
                out += _len(number, entry)
        elif field.repeated:
            for item in v:
                out += _one(number, field, item)
        elif field.kind != "message" and v == _DEFAULTS[field.kind]:
            continue
        else:
            out += _one(number, field, v)
    return bytes(out)


# -- decoding --------------------------------------------------------------------------------
def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise DecodeError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(number, wire type, raw value) of every field in ``data``."""
    out: list[tuple[int, int, Any]] = []
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _LEN:
            size, pos = _read_varint(data, pos)
            if pos + size > end:
                raise DecodeError("truncated length-delimited field")
            value, pos = data[pos : pos + size], pos + size
        elif wire == _I64:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == _I32:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise DecodeError(f"unsupported wire type {wire}")
        if pos > end:
            raise DecodeError("truncated fixed-width field")
        out.append((number, wire, value))
    return out


def _scalar(field: Field, wire: int, raw: Any) -> Any:
    kind = field.kind
    if kind in ("string", "bytes"):
        if wire != _LEN:
            raise DecodeError(f"{field.name}: expected a length-delimited field")
        if kind == "bytes":
            return bytes(raw)
        try:
            return bytes(raw).decode()
        except UnicodeDecodeError as exc:
            raise DecodeError(f"{field.name}: not UTF-8") from exc
    if wire != _VARINT:
        raise DecodeError(f"{field.name}: expected a varint")
    if kind == "bool":
        return bool(raw)
    if kind == "int64" and raw >= 1 << 63:
        return raw - (1 << 64)
    if kind == "int":
        raw &= 0xFFFFFFFF
        return raw - (1 << 32) if raw >= 1 << 31 else raw
    return raw


def _packed(field: Field, raw: bytes) -> list[Any]:
    out, pos = [], 0
    while pos < len(raw):
        value, pos = _read_varint(raw, pos)
        out.append(_scalar(field, _VARINT, value))
    return out


def decode(table: Message, data: bytes) -> dict[str, Any]:
    """The dict of ``data`` (field names of ``table``; unknown fields skipped)."""
    out: dict[str, Any] = {}
    for field in table.values():
        if field.kind == "map":
            out[field.name] = {}
        elif field.repeated:
            out[field.name] = []
        elif field.kind != "message":
            out[field.name] = _DEFAULTS[field.kind]
    for number, wire, raw in _fields(bytes(data)):
        field = table.get(number)
        if field is None:
            continue
        if field.kind == "map":
            entry = {n: v for n, w, v in _fields(raw) if w == _LEN}
            key = bytes(entry.get(1, b"")).decode("utf-8", "replace")
            out[field.name][key] = bytes(entry.get(2, b"")).decode("utf-8", "replace")
        elif field.kind == "message":
            if wire != _LEN:
                raise DecodeError(f"{field.name}: expected a nested message")
            assert field.message is not None
            value = decode(field.message, raw)
            if field.repeated:
                out[field.name].append(value)
            else:
                out[field.name] = value
        elif field.repeated and wire == _LEN and field.kind not in ("string", "bytes"):
            out[field.name].extend(_packed(field, raw))
        elif field.repeated:
            out[field.name].append(_scalar(field, wire, raw))
        else:
            out[field.name] = _scalar(field, wire, raw)
    return out

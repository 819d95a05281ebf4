"""Right-hand-side literals converted to the left field's type, at load time.

Every literal is lexed as text; the comparison decides its type (libsinsp's
``value_parser.cpp``): numbers for numeric fields, ``true``/``false`` for booleans,
addresses and CIDR networks for IP fields, service names or digits for ports, hex text
for the byte operators. A value that does not convert is a load error.
"""

from __future__ import annotations

import ipaddress
import socket

from falconet.fields import FieldType


class ValueError_(ValueError):
    """A literal that does not fit the field type (message says which)."""


_INT_RANGES = {
    FieldType.INT8: (-(2**7), 2**7 - 1),
    FieldType.INT16: (-(2**15), 2**15 - 1),
    FieldType.INT32: (-(2**31), 2**31 - 1),
    FieldType.INT64: (-(2**63), 2**63 - 1),
    FieldType.ERRNO: (-(2**63), 2**63 - 1),
    FieldType.FD: (-(2**63), 2**63 - 1),
    FieldType.PID: (-(2**63), 2**63 - 1),
    FieldType.UINT8: (0, 2**8 - 1),
    FieldType.UINT16: (0, 2**16 - 1),
    FieldType.UINT32: (0, 2**32 - 1),
    FieldType.UINT64: (0, 2**64 - 1),
    FieldType.PORT: (0, 2**16 - 1),
    FieldType.MODE: (0, 2**32 - 1),
    FieldType.FLAGS32: (0, 2**32 - 1),
    FieldType.RELTIME: (0, 2**64 - 1),
    FieldType.ABSTIME: (0, 2**64 - 1),
}


def _parse_int(text: str, ftype: FieldType) -> int:
    t = text.strip()
    try:
        if t.lower().startswith(("0x", "-0x", "+0x")):
            n = int(t, 16)
        else:
            n = int(t, 10)
    except ValueError:
        raise ValueError_(f"'{text}' is not a valid number") from None
    lo, hi = _INT_RANGES.get(ftype, (-(2**63), 2**64 - 1))
    if ftype in (
        FieldType.UINT8,
        FieldType.UINT16,
        FieldType.UINT32,
        FieldType.UINT64,
        FieldType.RELTIME,
        FieldType.ABSTIME,
    ) and n < 0:
        # libsinsp parses unsigned literals with wrap-around (strtoull)
        n &= hi
    if not lo <= n <= hi:
        raise ValueError_(f"'{text}' is out of range for a {ftype.value} field")
    return n


def _parse_port(text: str) -> int:
    t = text.strip()
    if t.isdigit():
        n = int(t)
        if n > 65535:
            raise ValueError_(f"'{text}' is not a valid port")
        return n
    for proto in ("tcp", "udp"):
        try:
            return socket.getservbyname(t, proto)
        except OSError:
            continue
    raise ValueError_(f"'{text}' is not a valid port number or service name")


def parse_value(text: str, ftype: FieldType, op: str) -> object:
    """Convert one literal for a comparison ``op`` on a field of type ``ftype``."""
    if "\0" in text:
        raise ValueError_("values cannot contain NUL characters")
    if op in ("bcontains", "bstartswith"):
        t = text.strip()
        if len(t) % 2 or not all(c in "0123456789abcdefABCDEF" for c in t):
            raise ValueError_("bcontains and bstartswith operator support hex strings only")
        return bytes.fromhex(t)
    if ftype.is_string:
        return text
    if ftype is FieldType.BYTEBUF:
        return text.encode("utf-8", "surrogateescape")
    if ftype is FieldType.BOOL:
        if text == "true":
            return True
        if text == "false":
            return False
        raise ValueError_(f"'{text}' is not a valid boolean (use true or false)")
    if ftype is FieldType.PORT:
        return _parse_port(text)
    if ftype is FieldType.DOUBLE:
        try:
            return float(text)
        except ValueError:
            raise ValueError_(f"'{text}' is not a valid number") from None
    if ftype.is_numeric:
        return _parse_int(text, ftype)
    if ftype is FieldType.IPADDR:
        try:
            return ipaddress.ip_address(text.strip()).compressed
        except ValueError:
            raise ValueError_(f"'{text}' is not a valid IP address") from None
    if ftype is FieldType.IPNET:
        try:
            return ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ValueError_(f"'{text}' is not a valid IP network") from None
    return text

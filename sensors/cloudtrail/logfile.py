"""One CloudTrail log file (``{"Records": [...]}``, gzip or not) → envelopes, grouped by account.

Each record becomes its envelope through :meth:`falconet.inputs.RecordDecoder.cloudtrail`
(the record unchanged, plus ``received_ts`` and ``origin``). A record the decoder refuses
(no ``eventTime``/``eventType``, an Insights record, not an object) is a
:class:`BadRecord` for the DLQ; the others flow. A file that cannot be read at all (not
gzip, not JSON, no ``Records`` list, too large once decompressed) raises
:class:`UnreadableFile`, whose reason goes to the DLQ with the file's bytes.
"""

from __future__ import annotations

import gzip
import io
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from falconet.errors import InputError
from falconet.inputs import RecordDecoder
from falconet.kafka import MAX_MESSAGE_BYTES
from falconet.sensors.base import envelope

from .keys import account_of
from .sources import ObjectRef

#: Largest log file accepted once decompressed (CloudTrail files are a few MB at most).
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Largest envelope one Kafka batch record can carry (the publisher's own bound).
MAX_ENVELOPE_BYTES = MAX_MESSAGE_BYTES - 64 * 1024 - 2
_GZIP_MAGIC = b"\x1f\x8b"


class UnreadableFile(InputError):
    """The whole log file is unusable; the message is the DLQ reason."""


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record of the file that is not an event: its position, why, and its JSON."""

    index: int
    reason: str
    original: bytes


@dataclass(frozen=True, slots=True)
class Decoded:
    """The envelopes of one log file by Kafka key (the account), in file order."""

    groups: dict[str, list[bytes]] = field(default_factory=dict)
    records: int = 0
    bad: tuple[BadRecord, ...] = ()
    newest_ts: int = 0  # newest eventTime (ns), for the lag metric


def decompress(data: bytes, limit: int = MAX_FILE_BYTES) -> bytes:
    """The file's JSON bytes: gunzipped when it starts with the gzip magic, else as is."""
    if data[:2] != _GZIP_MAGIC:
        if len(data) > limit:
            raise UnreadableFile(f"file of {len(data)} bytes is larger than {limit} bytes")
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            out = f.read(limit + 1)
    except EOFError:
        raise UnreadableFile("truncated gzip data") from None
    except (OSError, zlib.error) as exc:
        raise UnreadableFile(f"not valid gzip data: {exc}") from None
    if len(out) > limit:
        raise UnreadableFile(f"file is larger than {limit} bytes once decompressed")
    return out


def parse_records(data: bytes, limit: int = MAX_FILE_BYTES) -> list[Any]:
    """The ``Records`` list of a log file's stored bytes; :class:`UnreadableFile` otherwise."""
    text = decompress(data, limit)
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        what = (
            "gzip data holding invalid JSON"
            if data[:2] == _GZIP_MAGIC
            else "not gzip data and not JSON"
        )
        raise UnreadableFile(f"{what}: {exc}") from None
    if not isinstance(doc, dict):
        raise UnreadableFile(
            f"not a CloudTrail log file: a JSON {type(doc).__name__}, not an object with 'Records'"
        )
    records = doc.get("Records")
    if not isinstance(records, list):
        raise UnreadableFile("not a CloudTrail log file: no 'Records' list")
    return records


def kafka_key(record: dict[str, Any], key_account: str) -> str:
    """The account a record is keyed by: ``recipientAccountId``, else the file's account by
    its key, else ``userIdentity.accountId`` (``""`` when none is known)."""
    account = record.get("recipientAccountId")
    if isinstance(account, str) and account:
        return account
    if key_account:
        return key_account
    ident = record.get("userIdentity")
    account = ident.get("accountId") if isinstance(ident, dict) else None
    return account if isinstance(account, str) else ""


def decode_log_file(
    data: bytes, ref: ObjectRef, decoder: RecordDecoder, limit: int = MAX_FILE_BYTES
) -> Decoded:
    """Every record of one stored log file as an envelope (see the module docstring)."""
    records = parse_records(data, limit)
    origin = ref.origin
    key_account = account_of(ref.key)
    groups: dict[str, list[bytes]] = {}
    bad: list[BadRecord] = []
    newest = 0
    for i, rec in enumerate(records):
        try:
            ev = decoder.cloudtrail(rec, origin)
        except InputError as exc:
            bad.append(BadRecord(i, str(exc), orjson.dumps(rec)))
            continue
        env = envelope(ev.to_json_obj())
        if len(env) > MAX_ENVELOPE_BYTES:
            bad.append(
                BadRecord(
                    i,
                    f"record of {len(env)} bytes is larger than a Kafka record holds",
                    orjson.dumps(rec),
                )
            )
            continue
        groups.setdefault(kafka_key(rec, key_account), []).append(env)
        newest = max(newest, ev.ts)
    return Decoded(groups, len(records) - len(bad), tuple(bad), newest)

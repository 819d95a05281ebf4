"""A real rsyslogd as the benchmark's syslog receiver (bench/sink_throughput.py).

The receiver is rsyslog itself (tests/sinks/rsyslogd.py: RFC 5424 parser, RFC 6587
octet-counting on ``imtcp``, RFC 5425 TLS with its gtls/ossl driver); what counts as
delivered is what rsyslog parsed and wrote to its output file, one JSON line per message,
by the detection id in the falconet structured-data element.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.sinks.rsyslogd import INSTALL_HINT, RSYSLOGD, Rsyslogd, make_tls_files, tls_driver

SD_ID = "falconet@32473"


def _new_ids(path: Path) -> Any:
    """``read()``: the detection ids in the lines rsyslog completed since the last call."""
    offset = 0

    def read() -> list[str]:
        nonlocal offset
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]  # rsyslog may be writing the last line
        offset += len(complete)
        ids = []
        for line in complete.splitlines():
            if line.strip():
                sd = json.loads(line).get("sd_parsed") or "{}"
                ids.append(json.loads(sd).get(SD_ID, {}).get("id", ""))
        return ids

    return read


@contextlib.contextmanager
def bench_target(tmp: Path, variant: str = "") -> Iterator[tuple[dict[str, Any], Any]]:
    """Hook of bench/sink_throughput.py: rsyslogd on loopback, the sink's options and a count
    of the distinct detections rsyslog wrote. ``variant``: ``tls`` (default, RFC 5425) or
    ``tcp`` (RFC 6587, octet-counting)."""
    protocol = variant or "tls"
    if protocol not in ("tls", "tcp"):
        raise SystemExit(f"syslog: unknown variant {variant!r} (use syslog:tls or syslog:tcp)")
    if not os.access(RSYSLOGD, os.X_OK):
        raise SystemExit(f"{RSYSLOGD} not found: {INSTALL_HINT}")
    if protocol == "tls" and tls_driver() is None:
        raise SystemExit(f"rsyslog has no TLS driver: {INSTALL_HINT}")
    pki = make_tls_files(tmp / "pki")
    workdir = tmp / "rsyslog"
    workdir.mkdir()
    server = Rsyslogd(workdir, pki.ca_file, pki.cert_file, pki.key_file)
    server.start()
    try:
        port = server.tls_port if protocol == "tls" else server.tcp_port
        options: dict[str, Any] = {"type": "syslog", "host": "127.0.0.1", "port": port,
                                   "protocol": protocol}  # fmt: skip
        if protocol == "tls":
            options["ca_file"] = str(pki.ca_file)
        read, seen = _new_ids(server.out_file), set()

        def delivered() -> int:
            seen.update(read())
            return len(seen)

        yield options, delivered
    finally:
        server.stop()

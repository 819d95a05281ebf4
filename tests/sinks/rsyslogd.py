"""A real rsyslogd (the Debian package) on loopback, for the syslog sink's tests.

:class:`Rsyslogd` writes a configuration to a temporary folder and runs
``/usr/sbin/rsyslogd -n -f <conf> -i <pidfile>`` with four listeners on free loopback
ports: ``imudp`` (RFC 5426), ``imtcp`` plain (RFC 6587, octet-counting or LF framing),
``imtcp`` over TLS (RFC 5425, the ``gtls`` or ``ossl`` driver, whichever is installed;
anonymous clients) and ``imtcp`` over TLS requiring a client certificate signed by the
test CA (``x509/certvalid``). The server certificate comes from ``trustme``.

Every message rsyslog accepted from those inputs is written as one JSON line with the
fields its RFC 5424 parser extracted (``pri``, ``facility``, ``severity``, ``version``,
``timestamp``, ``hostname``, ``app``, ``procid``, ``msgid``, ``sd``, ``msg``, ``raw``,
``input``; ``sd_parsed`` is the structured data as rsyslog's ``mmpstrucdata`` parsed and
unescaped it: ``{sd-id: {name: value}}``), so a test reads what rsyslog actually understood, not what we sent.
Control characters are kept as received (``parser.escapeControlCharactersOnReceive`` off)
and JSON-escaped in the file, so a newline inside a message stays visible as such.

When rsyslogd is missing the fixture fails with the install hint, unless
``FALCONET_SKIP_RSYSLOG=1`` (then the tests are skipped with that reason).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

RSYSLOGD = os.environ.get("FALCONET_RSYSLOGD", "/usr/sbin/rsyslogd")
INSTALL_HINT = (
    "the syslog sink tests need a real rsyslogd: apt-get install -y rsyslog rsyslog-gnutls "
    "(or run `make prereqs` as root); set FALCONET_SKIP_RSYSLOG=1 to skip them"
)
_MODULE_DIRS = ("/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog",
                "/usr/lib/rsyslog", "/usr/lib64/rsyslog")  # fmt: skip

_TEMPLATE_FIELDS = (
    ("pri", "pri"),
    ("facility", "syslogfacility"),
    ("severity", "syslogseverity"),
    ("version", "protocol-version"),
    ("hostname", "hostname"),
    ("app", "app-name"),
    ("procid", "procid"),
    ("msgid", "msgid"),
    ("sd", "structured-data"),
    ("msg", "msg"),
    ("raw", "rawmsg"),
    ("input", "inputname"),
)


def require_rsyslogd() -> str:
    """The path of rsyslogd; fail (or skip with FALCONET_SKIP_RSYSLOG=1) when missing."""
    if os.access(RSYSLOGD, os.X_OK):
        return RSYSLOGD
    if os.environ.get("FALCONET_SKIP_RSYSLOG") == "1":
        pytest.skip(f"{RSYSLOGD} not found and FALCONET_SKIP_RSYSLOG=1 ({INSTALL_HINT})")
    pytest.fail(f"{RSYSLOGD} not found: {INSTALL_HINT}", pytrace=False)


def tls_driver() -> str | None:
    """``gtls`` or ``ossl``: the TLS network stream driver this rsyslog has installed."""
    for d in _MODULE_DIRS:
        for name in ("gtls", "ossl"):
            if Path(d, f"lmnsd_{name}.so").exists():
                return name
    return None


def require_tls_driver() -> str:
    """The TLS driver's name; fail (or skip with FALCONET_SKIP_RSYSLOG=1) when none."""
    driver = tls_driver()
    if driver:
        return driver
    message = "rsyslog has no TLS driver (lmnsd_gtls or lmnsd_ossl): " + INSTALL_HINT
    if os.environ.get("FALCONET_SKIP_RSYSLOG") == "1":
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 right now (for TCP and UDP both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, other) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free loopback port")


@dataclass
class Rsyslogd:
    """One rsyslogd with its ports, files and received messages."""

    workdir: Path
    ca_file: Path  # the CA that signed the server (and the valid client) certificates
    cert_file: Path
    key_file: Path
    max_message_size: int = 65536
    udp_port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    tcp_port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    mtls_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def out_file(self) -> Path:
        return self.workdir / "received.jsonl"

    @property
    def internal_file(self) -> Path:
        return self.workdir / "rsyslogd-internal.log"

    def config(self) -> str:
        driver = tls_driver()
        fields = "\n".join(
            f'  property(outname="{out}" name="{name}" format="jsonf")'
            for out, name in _TEMPLATE_FIELDS
        )
        tls_inputs = ""
        if driver:
            common = (
                f'streamDriver.name="{driver}" streamDriver.mode="1" '
                f'streamDriver.CAFile="{self.ca_file}" streamDriver.CertFile="{self.cert_file}" '
                f'streamDriver.KeyFile="{self.key_file}"'
            )
            tls_inputs = (
                f'input(type="imtcp" address="127.0.0.1" port="{self.tls_port}" name="tls" '
                f'{common} streamDriver.authMode="anon")\n'
                f'input(type="imtcp" address="127.0.0.1" port="{self.mtls_port}" name="mtls" '
                f'{common} streamDriver.authMode="x509/certvalid")\n'
            )
        return f"""
global(workDirectory="{self.workdir}" maxMessageSize="{self.max_message_size}"
       processInternalMessages="on"
       parser.escapeControlCharactersOnReceive="off"
       defaultNetstreamDriverCAFile="{self.ca_file}"
       defaultNetstreamDriverCertFile="{self.cert_file}"
       defaultNetstreamDriverKeyFile="{self.key_file}")
module(load="imudp")
module(load="mmpstrucdata")
module(load="imtcp" maxSessions="100")
input(type="imudp" address="127.0.0.1" port="{self.udp_port}" name="udp")
input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}" name="tcp")
{tls_inputs}
template(name="falconet_jsonl" type="list" option.jsonf="on") {{
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="sd_parsed" name="$!rfc5424-sd" format="jsonf")
{fields}
}}
if $inputname != "rsyslogd" then {{
  action(type="mmpstrucdata" sd_name.lowercase="off")
  action(type="omfile" file="{self.out_file}" template="falconet_jsonl")
  stop
}}
action(type="omfile" file="{self.internal_file}")
"""

    def start(self, timeout: float = 15.0) -> None:
        """Start rsyslogd; wait for its 'start' line and for the plain TCP listener.

        (The TLS listeners are not probed: an empty connection makes rsyslog log a failed
        handshake.) Inputs are set up before rsyslogd logs 'start'.
        """
        binary = require_rsyslogd()
        conf = self.workdir / "rsyslog.conf"
        conf.write_text(self.config())
        pidfile = self.workdir / "rsyslogd.pid"
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()
        log = (self.workdir / "rsyslogd.stderr").open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - fixed binary, our own config
            [binary, "-n", "-f", str(conf), "-i", str(pidfile)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rsyslogd exited at start: {self.diagnostics()}")
            if self._started() and _tcp_open(self.tcp_port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"rsyslogd did not start within {timeout}s: {self.diagnostics()}")

    def _started(self) -> bool:
        """rsyslogd logs its 'start' line once all inputs are set up."""
        try:
            return "start" in self.internal_file.read_text(errors="replace")
        except FileNotFoundError:
            return False

    def stop(self) -> None:
        """Stop rsyslogd (SIGTERM, then SIGKILL) and wait for it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same ports, appending to the same output file."""
        self.stop()
        with contextlib.suppress(FileNotFoundError):
            self.internal_file.unlink()
        self.start()

    def messages(self) -> list[dict[str, Any]]:
        """What rsyslog has written so far, one dict per message."""
        try:
            text = self.out_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        # rsyslog may be in the middle of writing a line: read complete lines only (the
        # template escapes newlines inside values, so a line is one whole message)
        complete = text[: text.rfind("\n") + 1]
        for line in complete.split("\n"):
            if not line.strip():
                continue
            m = json.loads(line)
            parsed = m.get("sd_parsed")
            m["sd_parsed"] = json.loads(parsed) if parsed else {}
            out.append(m)
        return out

    def wait_for(self, predicate: Any, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """The messages matching ``predicate`` once there are ``count`` of them.

        Returns what matched when the timeout passes (the caller's assert then shows it).
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages() if predicate(m)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def diagnostics(self) -> str:
        parts = []
        for f in (self.workdir / "rsyslogd.stderr", self.internal_file):
            with contextlib.suppress(FileNotFoundError):
                parts.append(f"{f.name}: {f.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts) or "(no output)"


def _tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files of the test PKI."""

    ca_file: Path  # the CA rsyslog's certificate chains to
    cert_file: Path  # rsyslog's certificate (127.0.0.1, localhost)
    key_file: Path
    client_cert_file: Path  # a client certificate from the same CA (mTLS)
    client_key_file: Path
    other_ca_file: Path  # a CA that signed nothing here (the "wrong CA")


def make_tls_files(folder: Path) -> TlsFiles:
    """Write a trustme CA, server and client certificates, and an unrelated CA."""
    import trustme

    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("falconet-client.test")
    other = trustme.CA()
    files = TlsFiles(
        folder / "ca.pem",
        folder / "server.pem",
        folder / "server.key",
        folder / "client.pem",
        folder / "client.key",
        folder / "other-ca.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca_file))
    files.cert_file.write_bytes(b"".join(b.bytes() for b in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(files.key_file))
    files.client_cert_file.write_bytes(b"".join(b.bytes() for b in client.cert_chain_pems))
    client.private_key_pem.write_to_path(str(files.client_key_file))
    other.cert_pem.write_to_path(str(files.other_ca_file))
    return files


def start_rsyslogd(folder: Path, tls: TlsFiles) -> Rsyslogd:
    """An started :class:`Rsyslogd` working in ``folder``."""
    require_rsyslogd()
    folder.mkdir(parents=True, exist_ok=True)
    server = Rsyslogd(folder, tls.ca_file, tls.cert_file, tls.key_file)
    server.start()
    return server

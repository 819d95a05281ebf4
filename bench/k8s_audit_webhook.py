"""Throughput of one Kubernetes audit webhook process, TLS and bearer token, to Kafka.

    .venv/bin/python bench/k8s_audit_webhook.py [--seconds 8] [--clients 4] [--batch 400]

Starts `falconet sensor k8s-audit` (HTTPS on loopback, a throw-away CA) against the broker
of FALCONET_KAFKA_BOOTSTRAP or one started for the run, then posts `EventList` bodies of
real API-server audit events from several client threads, as API servers do with the
webhook backend's batching. Every 200 means the batch was acknowledged by Kafka, so the
figure is events accepted end to end. Prints events/s, requests/s and the status codes.
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests/fixtures/k8s_audit/webhook/apiserver_batch.json"
TOKEN = "bench-token"


def body_of(batch: int) -> bytes:
    items = json.loads(FIXTURE.read_text())["items"]
    events = []
    for i in range(batch):
        e = copy.deepcopy(items[i % len(items)])
        e["auditID"] = str(uuid.uuid4())
        events.append(e)
    doc = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": events}
    return json.dumps(doc, separators=(",", ":")).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the webhook exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit("the webhook did not start listening")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=400, help="events per EventList")
    args = ap.parse_args()

    import trustme

    from falconet.broker import acquire

    body = body_of(args.batch)
    with acquire() as info, tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        pem = Path(tmp) / "server.pem"
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
        port = free_port()
        env = {**os.environ, "FALCONET_KAFKA_BOOTSTRAP": info.bootstrap,
               "FALCONET_KAFKA_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}.",
               "FALCONET_K8S_AUDIT_TOKEN": TOKEN}  # fmt: skip
        cmd = [sys.executable, "-m", "falconet", "sensor", "k8s-audit", "--listen", "127.0.0.1",
               "--port", str(port), "--tls-cert", str(pem), "--cluster", "bench",
               "--log-level", "warn"]  # fmt: skip
        subprocess.run([sys.executable, "-m", "falconet", "topics", "create"], env=env, check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
        log = open(Path(tmp) / "webhook.log", "wb")
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_listening(port, proc)
            ctx = ssl.create_default_context()
            ca.configure_trust(ctx)
            counts = [0] * args.clients
            codes: dict[int, int] = {}
            lock = threading.Lock()
            stop_at = time.monotonic() + args.seconds

            def client(k: int) -> None:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
                headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
                while time.monotonic() < stop_at:
                    conn.request("POST", "/k8s-audit", body=body, headers=headers)
                    r = conn.getresponse()
                    r.read()
                    with lock:
                        codes[r.status] = codes.get(r.status, 0) + 1
                    if r.status == 200:
                        counts[k] += args.batch

            t0 = time.monotonic()
            threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - t0
        finally:
            proc.send_signal(signal.SIGTERM)
            status = proc.wait(60)
        print(f"command: {' '.join(sys.argv)}")
        print(f"body: {len(body):,} bytes ({args.batch} events), clients: {args.clients}")
        print(f"accepted: {sum(counts):,} events in {elapsed:.1f} s = "
              f"{sum(counts) / elapsed:,.0f} events/s, "
              f"{sum(codes.values()) / elapsed:,.1f} requests/s, statuses {codes}, "
              f"webhook exit {status}")  # fmt: skip


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Detections/s delivered end to end: Kafka → `falconet sink` → a local receiver.

N detections are produced to detections.v1 on one broker (FALCONET_KAFKA_BOOTSTRAP, or one
started for the benchmark); then one `falconet sink` process with a single sink of the
chosen type drains them into its local receiver. Reported: detections/s from the first
delivered detection to the last (the steady rate, without process start and group join),
and the total time from process start.

Receivers plug in by type: `--sink file` writes a JSON-lines file; any other type uses
``bench_target(tmp)`` of ``tests/sinks/receivers/<module>.py``, the module of the type's
destination in sinks/registry.py (splunk -> splunk, elasticsearch and opensearch -> elastic,
sentinel -> sentinel, syslog -> syslog, webhook -> webhook): a context manager yielding
``(sink options without name, delivered() -> int)``. A hook that takes a ``kind`` keyword
is told the type (one module serves several), one that takes ``variant`` gets what follows
a colon in ``--sink TYPE:VARIANT`` (``splunk:ack`` indexer acknowledgement on;
``syslog:tls``, the default, or ``syslog:tcp``).

    python bench/sink_throughput.py [--sink webhook] [--detections 20000] [--batch-events 500]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from falconet.config import Config  # noqa: E402
from falconet.kafka import KafkaSettings  # noqa: E402
from falconet.sinks import registry  # noqa: E402
from falconet.streams import topics as T  # noqa: E402
from tests.sinks.receivers.webhook import detection_json  # noqa: E402

Target = Iterator[tuple[dict[str, Any], Callable[[], int]]]


@contextlib.contextmanager
def file_target(tmp: Path) -> Target:
    path = tmp / "detections.jsonl"

    def delivered() -> int:
        try:
            with open(path, "rb") as f:
                return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        except FileNotFoundError:
            return 0

    yield {"type": "file", "path": str(path)}, delivered


def target(sink: str, tmp: Path) -> contextlib.AbstractContextManager[Any]:
    kind, _, variant = sink.partition(":")
    if kind not in registry.DESTINATIONS:
        raise SystemExit(
            f"unknown sink type {kind!r}; known: {', '.join(sorted(registry.DESTINATIONS))}"
        )
    try:
        registry.destination(kind)
    except ImportError as exc:
        raise SystemExit(f"sink type {kind!r} is not available yet: {exc}") from None
    if kind == "file":
        if variant:
            raise SystemExit(f"the file sink has no variants (got {sink!r})")
        return file_target(tmp)
    module = registry.DESTINATIONS[kind].partition(":")[0].rsplit(".", 1)[1]
    try:
        receiver = importlib.import_module(f"tests.sinks.receivers.{module}")
    except ModuleNotFoundError:
        raise SystemExit(f"no receiver for {kind!r}: tests/sinks/receivers/{module}.py") from None
    hook = getattr(receiver, "bench_target", None)
    if hook is None:
        raise SystemExit(f"tests/sinks/receivers/{module}.py has no bench_target(tmp) hook")
    params = inspect.signature(hook).parameters
    extra: dict[str, str] = {"kind": kind} if "kind" in params else {}
    if variant and "variant" not in params:
        raise SystemExit(f"the {kind} receiver has no variants (got {sink!r})")
    if "variant" in params:
        extra["variant"] = variant
    return hook(tmp, **extra)


def produce(settings: KafkaSettings, n: int) -> None:
    from confluent_kafka import Producer

    p = Producer(settings.confluent(**{"acks": "all", "linger.ms": 20, "compression.type": "lz4"}))
    topic = settings.topic(T.DETECTIONS)
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=detection_json(i))
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    if p.flush(60):
        raise SystemExit("could not produce the detections")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sink", default="webhook", help="sink type, or TYPE:VARIANT (default: webhook)"
    )
    ap.add_argument("--detections", type=int, default=20_000)
    ap.add_argument("--batch-events", type=int, default=500)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()

    from falconet.broker import acquire, die_with_parent

    prefix = f"bench{int(time.time())}."
    env = dict(os.environ, FALCONET_TOPICS_PARTITIONS=str(args.partitions),
               FALCONET_KAFKA_TOPIC_PREFIX=prefix)  # fmt: skip
    with acquire() as info, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        env["FALCONET_KAFKA_BOOTSTRAP"] = info.bootstrap
        cfg = Config.load(env=env)
        settings = KafkaSettings.from_config(cfg)
        T.create(settings, T.specs(cfg), 1)
        t0 = time.perf_counter()
        produce(settings, args.detections)
        print(f"produced {args.detections} detections in {time.perf_counter() - t0:.1f}s")
        with target(args.sink, tmp) as (options, delivered):
            sink = {"name": "bench", **options, "batch_events": args.batch_events, "batch_ms": 100,
                    "max_buffered": max(10_000, 4 * args.batch_events)}  # fmt: skip
            conf = tmp / "sink.yaml"
            conf.write_text(yaml.safe_dump({"sinks": [sink]}))
            cmd = [sys.executable, "-m", "falconet", "--config", str(conf), "sink"]
            log = open(tmp / "sink.log", "wb")  # noqa: SIM115 - the process owns it
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                    preexec_fn=die_with_parent())  # fmt: skip
            first = None
            try:
                while True:
                    n = delivered()
                    now = time.perf_counter()
                    if n and first is None:
                        first = (now, n)
                    if n >= args.detections:
                        break
                    if proc.poll() is not None or now - started > args.timeout:
                        print((tmp / "sink.log").read_text(errors="replace")[-3000:])
                        raise SystemExit(f"stopped at {n}/{args.detections} delivered")
                    time.sleep(0.05)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
            assert first is not None
            steady = (args.detections - first[1]) / max(now - first[0], 1e-9)
            summary = [ln for ln in (tmp / "sink.log").read_text().splitlines() if "bench:" in ln]
        print(f"sink={args.sink} detections={args.detections} batch_events={args.batch_events} "
              f"partitions={args.partitions}")  # fmt: skip
        print(f"  steady rate: {steady:,.0f} detections/s (first to last delivery)")
        print(f"  end to end:  {args.detections / (now - started):,.0f} detections/s "
              f"({now - started:.1f}s from process start, incl. start-up and group join)")  # fmt: skip
        for line in summary:
            print(f"  {line}")
        print("command: python bench/sink_throughput.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()

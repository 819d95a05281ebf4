#!/usr/bin/env python3
"""Throughput and latency of the Kafka pipeline: broker → worker → detections.

In one run, on one broker (FALCONET_KAFKA_BOOTSTRAP, or one started for the benchmark):

1. **raw consume**: N events of the realistic syscall mix of `rules_throughput.py`, published
   in batches of 500, are consumed back with confluent-kafka, doing nothing with them;
2. **worker throughput**: one `falconet worker` process with the stable Falco rules drains
   that backlog; a sentinel event at the end of every partition makes a detection, so the
   backlog is done when every sentinel's detection arrived. events/s = N / time from the
   worker holding its partitions to the last sentinel;
3. **latency**: events are published at a fixed rate while the worker runs; 1 % of them
   are probes a bench rule detects; latency = detection consumed − event time (the event's
   `ts`, set when it is published), reported as p50/p99.

    python bench/pipeline_throughput.py [--events 600000] [--rate 30000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from rules_throughput import syscall_events  # noqa: E402

from falconet.config import Config  # noqa: E402
from falconet.kafka import KafkaSettings  # noqa: E402
from falconet.sensors.publisher import Publisher  # noqa: E402
from falconet.streams import topics as T  # noqa: E402

PARTITIONS = 6
BENCH_RULES = """
- rule: Bench sentinel
  desc: marks the end of a partition's backlog
  condition: evt.type=execve and proc.name=falconet-sentin
  output: "sentinel %proc.pid"
  priority: DEBUG
  tags: [bench]
- rule: Bench latency probe
  desc: a probe event whose detection time is measured
  condition: evt.type=execve and proc.name=falconet-probe
  output: "probe %proc.pid"
  priority: DEBUG
  tags: [bench]
"""


def special(name: str, pid: int, ts: int, host: str) -> dict:
    return {"v": 1, "source": "syscall", "type": "execve", "ts": ts, "host": host, "id": f"{name}-{pid}",
            "event": {"args": {}, "res": 0, "proc": {"pid": pid, "name": name, "args": []},
                      "container": {"id": "host"}}}  # fmt: skip


def wire_events(n: int) -> tuple[list[bytes], list[tuple[str, str, dict]]]:
    """The syscall mix without inline enrichment, and the metadata records to join it."""
    lines, meta, seen = [], [], set()
    for line in syscall_events(n):
        ev = orjson.loads(line)
        enr = ev.pop("enrichment", None)
        if enr and enr["container"]["id"] not in seen:
            c, k8s = enr["container"], enr["k8s"]
            seen.add(c["id"])
            uid = f"uid-{c['id']}"
            meta += [("containers", c["id"], {**c, "pod_uid": uid}),
                     ("pods", uid, {"uid": uid, "name": k8s["pod"]["name"], "namespace": k8s["ns"]["name"]}),
                     ("namespaces", k8s["ns"]["name"], {"name": k8s["ns"]["name"]})]  # fmt: skip
        lines.append(orjson.dumps(ev))
    return lines, meta


def partition_of(settings: KafkaSettings, topic: str, key: bytes) -> int:
    """The partition librdkafka's default partitioner picks for ``key`` (murmur2)."""
    from confluent_kafka import Producer

    delivered: list[int] = []
    p = Producer(settings.confluent())
    p.produce(topic, key=key, value=b"[]", on_delivery=lambda e, m: delivered.append(m.partition()))
    p.flush(10)
    return delivered[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=600_000)
    ap.add_argument("--rate", type=int, default=30_000, help="events/s published in the latency phase")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the latency phase")
    ap.add_argument("--compression", default="lz4", help="publisher compression (lz4, zstd, none, ...)")
    ap.add_argument("--corpus", default=os.environ.get("FALCONET_CORPUS", str(ROOT.parent / "shared" / "corpus")))
    args = ap.parse_args()
    stable = Path(args.corpus) / "falco/falcosecurity-rules/rules/falco_rules.yaml"
    if not stable.is_file():
        raise SystemExit(f"rule file not found: {stable} (set --corpus or FALCONET_CORPUS)")

    from falconet.broker import acquire, die_with_parent

    prefix = f"bench{int(time.time())}."
    env = dict(os.environ, FALCONET_TOPICS_PARTITIONS=str(PARTITIONS), FALCONET_KAFKA_TOPIC_PREFIX=prefix)
    with acquire() as info, tempfile.TemporaryDirectory() as tmp:
        env["FALCONET_KAFKA_BOOTSTRAP"] = info.bootstrap
        env["FALCONET_WORKER_DATA_DIR"] = tmp
        cfg = Config.load(env=env)
        settings = KafkaSettings.from_config(cfg)
        T.create(settings, T.specs(cfg), 1)
        topic = settings.topic(T.events_topic("syscall"))
        rules = Path(tmp) / "bench.yaml"
        rules.write_text(BENCH_RULES)

        # -- the backlog ----------------------------------------------------------------------
        # On the wire, sensors send events without container metadata: the worker joins it
        # from its tables (published here on the meta topics, as the metadata publishers do).
        lines, meta = wire_events(args.events)
        from confluent_kafka import Producer

        mp = Producer(settings.confluent())
        for table, key, value in meta:
            mp.produce(settings.topic(T.meta_topic(table)), key=key.encode(), value=orjson.dumps(value))
        mp.flush(30)
        hosts = [f"node-{i:02d}" for i in range(24)]
        t = time.perf_counter()
        with Publisher(settings, batch_events=500, batch_ms=1000, compression=args.compression,
                       client_id="bench") as pub:  # fmt: skip
            for i, line in enumerate(lines):
                pub.publish(topic, line.replace(b'"host":"node-a"', f'"host":"{hosts[i % 24]}"'.encode(), 1),
                            hosts[i % 24])  # fmt: skip
            sentinels = {}
            for h in hosts:
                sentinels.setdefault(partition_of(settings, topic, h.encode()), h)
            pub.flush()
            for n, (_part, h) in enumerate(sorted(sentinels.items())):
                pub.publish(topic, orjson.dumps(special("falconet-sentin", n, time.time_ns(), h)), h)
        produce_s = time.perf_counter() - t
        print(f"published {args.events} events in {produce_s:.1f}s ({args.events / produce_s:,.0f}/s); "
              f"sentinels on partitions {sorted(sentinels)} of {PARTITIONS}")  # fmt: skip
        if len(sentinels) < PARTITIONS:
            print("note: not every partition got events (too few hosts)")

        # -- raw consume ------------------------------------------------------------------------
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        c = Consumer(settings.confluent(**{"group.id": f"{prefix}raw", "enable.auto.commit": False,
                                           "enable.partition.eof": True, "fetch.queue.backoff.ms": 5}))  # fmt: skip
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        t, records, nbytes, eof = time.perf_counter(), 0, 0, set()
        while len(eof) < PARTITIONS:
            for m in c.consume(1000, 0.5):
                if m.error():
                    if m.error().code() == -191:
                        eof.add(m.partition())
                    continue
                records += 1
                nbytes += len(m.value())
        raw_s = time.perf_counter() - t
        c.close()
        raw_rate = (args.events + len(sentinels)) / raw_s
        print(f"raw consume: {records} records, {nbytes / 1e6:.0f} MB in {raw_s:.2f}s = {raw_rate:,.0f} events/s")

        # -- worker throughput -------------------------------------------------------------------
        det = Consumer(settings.confluent(**{"group.id": f"{prefix}det", "enable.auto.commit": False,
                                             "auto.offset.reset": "earliest"}))  # fmt: skip
        det.subscribe([settings.topic(T.DETECTIONS)])
        worker = subprocess.Popen(
            [sys.executable, "-m", "falconet", "worker", "--id", "bench", "--rules", str(stable), "--rules", str(rules)],
            env=env, stdout=open(Path(tmp) / "worker.log", "wb"), stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(),
        )  # fmt: skip
        from confluent_kafka.admin import AdminClient

        group = settings.topic("worker")
        while True:
            try:
                with AdminClient(settings.confluent()) as admin:
                    d = admin.describe_consumer_groups([group])[group].result(timeout=10)
                if any(m.assignment and m.assignment.topic_partitions for m in d.members):
                    break
            except Exception:
                pass
            if worker.poll() is not None:
                raise SystemExit(f"worker died: {(Path(tmp) / 'worker.log').read_text()[-2000:]}")
            time.sleep(0.02)
        t0 = time.perf_counter()
        if os.environ.get("BENCH_PROFILE"):
            subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-d", "4", "--gil", "-f", "raw",
                              "-o", os.environ["BENCH_PROFILE"], "-p", str(worker.pid)])  # fmt: skip
        got: set[str] = set()
        detections = 0
        while len(got) < len(sentinels):
            for m in det.consume(500, 0.02):
                if m.error():
                    continue
                detections += 1
                obj = orjson.loads(m.value())
                if obj["rule"] == "Bench sentinel":
                    got.add(obj["event_id"])
            if worker.poll() is not None:
                raise SystemExit("worker died during the backlog")
        drain_s = time.perf_counter() - t0
        rate = args.events / drain_s
        print(f"worker drained {args.events} events in {drain_s:.1f}s ({detections} detections)")

        # -- latency at a fixed rate --------------------------------------------------------------
        latencies: list[float] = []
        stop = threading.Event()

        def consume_latencies() -> None:
            while not stop.is_set():
                for m in det.consume(500, 0.2):
                    if m.error():
                        continue
                    obj = orjson.loads(m.value())
                    if obj["rule"] == "Bench latency probe":
                        latencies.append((time.time_ns() - obj["output_fields"]["evt.time"]) / 1e6)

        th = threading.Thread(target=consume_latencies, daemon=True)
        th.start()
        # The generator sends what a sensor sends: every 50 ms, per host, one batch record
        # (its first event a probe stamped with the send time). Building batches from
        # pre-encoded events keeps the generator's own CPU small on our 2-core machine.
        interval = 0.05
        per_tick = max(1, int(args.rate * interval))
        per_host = max(1, per_tick // 4)
        with Publisher(settings, compression=args.compression, client_id="bench-rate") as pub:
            sent, tick, t_start = 0, 0, time.perf_counter()
            total = int(args.rate * args.seconds)
            while sent < total:
                due = t_start + tick * interval
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                for k in range(4):
                    h = hosts[(tick * 4 + k) % 24]
                    probe = orjson.dumps(special("falconet-probe", sent, time.time_ns(), h))
                    body = [lines[(sent + j) % len(lines)] for j in range(per_host - 1)]
                    pub.produce(topic, b"[" + b",".join([probe, *body]) + b"]", h.encode())
                    sent += per_host
                tick += 1
            pub.flush()
            achieved = sent / (time.perf_counter() - t_start)
        time.sleep(3)
        stop.set()
        th.join()
        det.close()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        latencies.sort()
        p50 = statistics.median(latencies) if latencies else float("nan")
        p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan")
        print(f"latency at {achieved:,.0f} events/s: {len(latencies)} probes, p50 {p50:.0f} ms, p99 {p99:.0f} ms")
        print(f"pipeline events/s per worker: {rate:.0f} (raw consume: {raw_rate:.0f}); "
              f"latency p50 {p50:.0f} ms, p99 {p99:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()

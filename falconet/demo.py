"""`falconet demo`: the whole pipeline on a real broker, end to end, in under two minutes.

1. a Kafka broker: ``FALCONET_KAFKA_BOOTSTRAP`` if set, else one started for the demo;
2. the topics, under a prefix of their own (``falconet-demo-<time>.``) so nothing of an
   existing deployment is touched;
3. the scenario's metadata on the ``meta.*`` topics;
4. a stream worker (`falconet worker`, as its own process);
5. the bundled intrusion scenario replayed into the event topics, paced from its own
   timestamps (``speed`` times real time);
6. detections printed as they arrive on ``detections.v1``, until all the scenario's
   detections came or the worker went quiet;
7. everything it started is stopped, and on an existing cluster its topics are deleted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from .cli_common import bundled_rules_dir, bundled_scenario_dir
from .config import Config
from .detection import Detection
from .errors import FalconetError


class DemoError(FalconetError):
    """The demo could not run (with what to do about it)."""


def scenario_inputs() -> list[str]:
    scenario = bundled_scenario_dir()
    return sorted(str(p) for p in scenario.iterdir() if p.is_file() and p.suffix in (".jsonl", ".json", ".gz"))


def expected_detections(cfg: Config) -> int:
    """How many detections the scenario gives (the offline engine on the same files)."""
    from .inputs import RecordDecoder
    from .rules.engine import Engine
    from .run import run_files

    engine = Engine(cfg.engine_config())
    if not engine.load([bundled_rules_dir()]).ok:
        raise DemoError("the bundled rules do not load")
    stats = run_files(engine, scenario_inputs(), lambda d: None, lambda m: None, RecordDecoder(host="demo"))
    return stats.detections


def publish_metadata(settings: Any) -> int:
    """Publish the scenario's metadata files (meta/<table>.jsonl) to the meta topics."""
    from confluent_kafka import Producer

    from .streams.topics import meta_topic

    producer = Producer(settings.confluent(**{"acks": "all", "log_level": 3}))
    n = 0
    for path in sorted((bundled_scenario_dir() / "meta").glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            if not line.strip():
                continue
            obj = orjson.loads(line)
            producer.produce(
                settings.topic(meta_topic(path.stem)),
                key=str(obj["key"]).encode(),
                value=orjson.dumps(obj["value"]),
            )
            n += 1
    if producer.flush(30):
        raise DemoError("could not publish the scenario metadata")
    return n


@contextlib.contextmanager
def worker_process(settings: Any, rule_matching: str, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`falconet worker` for the demo's topics; SIGTERM (then SIGKILL) on the way out."""
    env = dict(os.environ)
    env.update(
        {
            "FALCONET_KAFKA_BOOTSTRAP": settings.bootstrap,
            "FALCONET_KAFKA_TOPIC_PREFIX": settings.topic_prefix,
            "FALCONET_RULES_MATCHING": rule_matching,
            "FALCONET_TOPICS_PARTITIONS": "3",
            "FALCONET_WORKER_DATA_DIR": str(log_path.parent / "worker-data"),
        }
    )
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    from .broker import die_with_parent

    proc = subprocess.Popen(
        [sys.executable, "-m", "falconet", "worker", "--id", "demo-worker", "--rules", str(bundled_rules_dir())],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent(),  # a killed demo takes its worker with it
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_demo(cfg: Config, console: Any, rule_matching: str = "all", speed: float = 60.0,
             timeout: float = 90.0) -> int:  # fmt: skip
    """Run the demo; returns the exit status."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from . import broker
    from .cli import print_counts, print_detection
    from .inputs import RecordDecoder
    from .kafka import KafkaSettings
    from .sensors.publisher import Publisher
    from .sensors.replay import replay
    from .streams import topics as T

    def step(message: str) -> None:
        console.print(f"[bold cyan]>[/] {message}")

    started = time.monotonic()
    prefix = f"falconet-demo-{int(time.time())}."
    expected = expected_detections(dataclasses.replace(cfg, values={**cfg.values, "rules.matching": rule_matching}))
    step(f"scenario: {len(scenario_inputs())} recordings, {expected} detections expected")
    with tempfile.TemporaryDirectory(prefix="falconet-demo-") as tmp, broker.acquire(
        progress=lambda m: console.print(f"  [dim]{m}[/]")
    ) as info:
        external = info.kind == "external"
        step(f"Kafka at {info.bootstrap} ({'existing cluster' if external else 'started for the demo'})")
        settings = dataclasses.replace(KafkaSettings.from_config(cfg, bootstrap=info.bootstrap), topic_prefix=prefix)
        demo_cfg = dataclasses.replace(cfg, values={**cfg.values, "topics.partitions": 3})
        wanted = T.specs(demo_cfg)
        states = T.create(settings, wanted, demo_cfg["topics.replication"])
        bad = [s for s in states if s.status == "error"]
        if bad:
            raise DemoError(f"topic creation failed: {bad[0].name}: {bad[0].detail}")
        step(f"{len(states)} topics created under the prefix {prefix}")
        try:
            step(f"{publish_metadata(settings)} metadata records published (nodes, accounts, identities)")
            log_path = Path(tmp) / "worker.log"
            with worker_process(settings, rule_matching, log_path) as worker:
                step(f"stream worker started (pid {worker.pid}); replaying the scenario at {speed:g}x")
                consumer = Consumer(settings.confluent(**{"group.id": f"{prefix}viewer", "enable.auto.commit": False}))
                topic = settings.topic(T.DETECTIONS)
                meta = consumer.list_topics(topic, timeout=10).topics[topic]
                consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
                replay_done = threading.Event()
                finished = threading.Event()
                replay_error: list[BaseException] = []

                def do_replay() -> None:
                    try:
                        with Publisher(settings, batch_ms=50, client_id="falconet-demo",
                                       extra={"log_level": 3}) as pub:  # fmt: skip
                            replay(scenario_inputs(), pub, lambda s: settings.topic(T.events_topic(s)),
                                   speed=speed, decoder=RecordDecoder(host="demo-collector", cluster="shop-eu-1"),
                                   cancelled=finished.is_set)  # fmt: skip
                    except BaseException as exc:  # reported by the main thread
                        replay_error.append(exc)
                    finally:
                        replay_done.set()

                replayer = threading.Thread(target=do_replay, name="falconet-demo-replay", daemon=True)
                replayer.start()
                seen: list[Detection] = []
                ids: set[str] = set()
                last_arrival = time.monotonic()
                deadline = time.monotonic() + timeout
                console.rule("detections arriving from detections.v1")
                while len(ids) < expected and time.monotonic() < deadline:
                    if worker.poll() is not None:
                        raise DemoError(f"the worker stopped (exit {worker.returncode}):\n{_tail(log_path)}")
                    msg = consumer.poll(0.5)
                    if msg is None or msg.error():
                        if replay_done.is_set() and time.monotonic() - last_arrival > 20:
                            break  # nothing more is coming
                        continue
                    d = Detection.from_json_obj(orjson.loads(msg.value()))
                    last_arrival = time.monotonic()
                    if d.id in ids:
                        continue  # a redelivery (at-least-once): same detection id
                    ids.add(d.id)
                    seen.append(d)
                    print_detection(console, d)
                consumer.close()
                finished.set()  # every detection is in: the benign tail need not be replayed
                replayer.join(timeout=30)
                if replay_error:
                    raise DemoError(f"replay failed: {replay_error[0]}")
                console.rule()
                if seen:
                    print_counts(console, seen)
                elapsed = time.monotonic() - started
                ok = len(ids) == expected
                step(f"{len(ids)}/{expected} detections in {elapsed:.1f}s; stopping the worker"
                     + ("" if external else " and the broker"))  # fmt: skip
                if not ok:
                    console.print(f"[red]missing detections[/]; worker log:\n{_tail(log_path)}")
        finally:
            if external:
                _delete_topics(settings, wanted)
    return 0 if ok else 1


def _delete_topics(settings: Any, wanted: list[Any]) -> None:
    """Delete the demo's topics, the worker's own (changelogs …) included."""
    from confluent_kafka.admin import AdminClient

    with AdminClient(settings.confluent()) as admin:
        names = {settings.topic(s.name) for s in wanted}
        names |= {t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)}
        futures = admin.delete_topics(sorted(names), operation_timeout=30)
        for fut in futures.values():
            with contextlib.suppress(Exception):
                fut.result()

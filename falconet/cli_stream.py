"""Commands of the Kafka pipeline: topics, worker, rules push/status, record, replay, dlq."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
import orjson

from .cli_common import err, load_config
from .config import Config
from .errors import FalconetError
from .stopping import stop_on_signals


def kafka_settings(cfg: Config) -> Any:
    from .kafka import KafkaSettings

    try:
        return KafkaSettings.from_config(cfg)
    except FalconetError as exc:
        err(f"falconet: {exc}")
        sys.exit(2)


def _fail(exc: Exception) -> None:
    err(f"falconet: {exc}")
    sys.exit(1)


# -- topics -------------------------------------------------------------------------------------
@click.group()
def topics() -> None:
    """Create and describe falconet's Kafka topics."""


@topics.command("create")
@click.pass_context
def topics_create(ctx: click.Context) -> None:
    """Create every falconet topic that does not exist yet (idempotent).

    Partitions, replication and retention come from the configuration (topics.*); a topic
    that exists with another partition count is reported, never changed.
    """
    from falconet.streams import topics as T

    cfg = load_config(ctx)
    settings = kafka_settings(cfg)
    try:
        states = T.create(settings, T.specs(cfg), cfg["topics.replication"])
    except FalconetError as exc:
        _fail(exc)
    bad = False
    for s in states:
        bad |= s.status in ("error", "mismatch")
        click.echo(f"{s.status:8} {s.name}" + (f" ({s.detail})" if s.detail else ""))
    sys.exit(1 if bad else 0)


@topics.command("describe")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per topic.")
@click.pass_context
def topics_describe(ctx: click.Context, as_json: bool) -> None:
    """Partitions, cleanup policy, retention and record counts of each falconet topic."""
    from rich.console import Console
    from rich.table import Table

    from falconet.streams import topics as T

    cfg = load_config(ctx)
    try:
        rows = T.describe(kafka_settings(cfg), T.specs(cfg))
    except FalconetError as exc:
        _fail(exc)
    if as_json:
        for r in rows:
            click.echo(orjson.dumps(r).decode())
        return
    table = Table(expand=True)
    table.add_column("topic", no_wrap=True)
    for col in ("partitions", "policy", "retention ms", "records"):
        table.add_column(col, no_wrap=True)
    table.add_column("purpose", ratio=1)
    for r in rows:
        if not r["exists"]:
            table.add_row(r["topic"], "-", "-", "-", "-", "[red]missing[/red] " + r["purpose"])
        else:
            table.add_row(r["topic"], str(r["partitions"]), r["cleanup.policy"], r["retention.ms"],
                          str(r["records"]), r["purpose"])  # fmt: skip
    Console().print(table)
    sys.exit(0 if all(r["exists"] for r in rows) else 1)


# -- worker -------------------------------------------------------------------------------------
@click.command()
@click.option("--rules", "-r", "rules", multiple=True, metavar="PATH",
              help="Rules to start with when rules.v1 holds no rule set (default: falconet's own).")  # fmt: skip
@click.option("--id", "worker_id", default="", help="Worker name in `falconet rules status`.")
@click.option("--log-level", type=click.Choice(["crit", "error", "warn", "info", "debug"]),
              default="warn", show_default=True)  # fmt: skip
@click.pass_context
def worker(ctx: click.Context, rules: tuple[str, ...], worker_id: str, log_level: str) -> None:
    """Run a stream worker: consume the event topics, enrich, evaluate, produce detections.

    Several workers share the partitions (one consumer group). The worker follows
    rules.v1 and swaps rule sets without restarting; SIGTERM stops it cleanly.
    """
    import logging

    from falconet.streams.app import run_worker

    logging.basicConfig(
        level=getattr(logging, log_level.upper().replace("CRIT", "CRITICAL").replace("WARN", "WARNING")),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    cfg = load_config(ctx)
    try:
        sys.exit(run_worker(cfg, kafka_settings(cfg), list(rules), worker_id, log_level))
    except FalconetError as exc:
        _fail(exc)


# -- rules push / status ------------------------------------------------------------------------
@click.command("push")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--name", default="default", show_default=True, help="Rule set name (the record key).")
@click.option("--watch", is_flag=True,
              help="Keep running: push again whenever the files' content changes (a mounted "
                   "ConfigMap); an invalid change is reported and not pushed.")  # fmt: skip
@click.option("--interval", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              metavar="SECONDS", help="With --watch: how often the files are read again.")  # fmt: skip
@click.pass_context
def rules_push(ctx: click.Context, paths: tuple[str, ...], name: str, watch: bool, interval: float) -> None:
    """Validate rule files and publish them to rules.v1; every worker swaps to them.

    Files load in the order given, as with `falconet run --rules`; policy files (lists of
    `- policy:` items, docs/policy.md) travel in the same set. An invalid set is not
    published (the errors are printed with their positions, exit status 1).

    With --watch the command pushes the files, then reads them again every --interval
    seconds and pushes them when their names or contents changed (Kubernetes swaps a
    ConfigMap volume's files at once, through a symlink). A set that does not load, or a
    push Kafka refused, is reported and the watch goes on (a refused push is retried);
    workers keep the last set that was pushed. SIGTERM or Ctrl-C stops it.
    """
    cfg = load_config(ctx)
    if not watch:
        status = _push_files(cfg, list(paths), name)
        if status != "pushed":
            sys.exit(1)
        return
    settings = kafka_settings(cfg)
    last: str | None = None  # version of the last set pushed or found invalid: not tried again
    with stop_on_signals() as stopping:  # a push under way completes first
        while not stopping.is_set():
            version = _files_version(list(paths), name)
            if version != last:
                status = _push_files(cfg, list(paths), name, settings)
                if status in ("pushed", "invalid"):
                    last = version
            stopping.wait(interval)


def _files_version(paths: list[str], name: str) -> str:
    """The version the files would be pushed as (sha256 of names and contents); "" unreadable."""
    from falconet.streams.rulesets import Ruleset

    try:
        return Ruleset.from_files(paths, name).version
    except FalconetError:
        return ""


def _push_files(cfg: Config, paths: list[str], name: str, settings: Any = None) -> str:
    """Validate and push once: "pushed", "invalid" (not pushed) or "failed" (Kafka, I/O)."""
    from falconet.streams.rulesets import Ruleset, compile_ruleset, push

    try:
        ruleset = Ruleset.from_files(paths, name)
    except FalconetError as exc:
        err(f"falconet: not pushed: {exc}")
        return "failed"
    compiled, result = compile_ruleset(ruleset.files, cfg.engine_config())  # rules and policies
    engine = compiled.engine
    for m in result.messages:
        err(m.format())
    if not result.ok:
        err(f"falconet: not pushed: the rules do not load ({result.summary()})")
        return "invalid"
    try:
        push(settings if settings is not None else kafka_settings(cfg), ruleset)
    except FalconetError as exc:
        err(f"falconet: {exc}")
        return "failed"
    policies = f"{len(compiled.policy)} policies, " if len(compiled.policy) else ""
    click.echo(f"pushed rule set '{name}' version {ruleset.version} ({len(engine.rules)} rules, "
               f"{policies}{len(ruleset.files)} files)")  # fmt: skip
    return "pushed"


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="The status records as JSON lines.")
@click.pass_context
def rules_status(ctx: click.Context, as_json: bool) -> None:
    """Which rule set each worker runs, and whether it refused the latest push."""
    from falconet.streams.rulesets import Ruleset, read_compacted
    from falconet.streams.topics import RULES, STATUS

    cfg = load_config(ctx)
    settings = kafka_settings(cfg)
    try:
        statuses = read_compacted(settings, settings.topic(STATUS))
        pushed = read_compacted(settings, settings.topic(RULES))
    except FalconetError as exc:
        _fail(exc)
    records = [orjson.loads(v) for v in statuses.values()]
    if as_json:
        for r in records:
            click.echo(orjson.dumps(r).decode())
        return
    for name, value in sorted(pushed.items()):
        try:
            rs = Ruleset.decode(value)
            click.echo(f"pushed rule set '{name}': version {rs.version} by {rs.pushed_by} "
                       f"({len(rs.files)} files)")  # fmt: skip
        except FalconetError as exc:
            click.echo(f"pushed rule set '{name}': unreadable ({exc})")
    if not pushed:
        click.echo("no rule set pushed yet: workers run the rules they were started with")
    now = time.time_ns()
    if not records:
        click.echo("no worker has reported yet")
    for r in sorted(records, key=lambda r: r.get("worker", "")):
        rules = r.get("rules", {})
        counters = r.get("counters", {})
        age = (now - int(r.get("updated_at", 0))) / 1e9
        line = (
            f"{r.get('worker', '?')}: {r.get('state', '?')}, rules {rules.get('version') or '-'} "
            f"({rules.get('origin', '')}, {rules.get('rules', 0)} rules, "
            f"{rules.get('policies', 0)} policies), "
            f"{counters.get('events', 0)} events, {counters.get('detections', 0)} detections, "
            f"{counters.get('dead_letters', 0)} dead letters, "
            f"lag {sum(r.get('lag', {}).values())} records, updated {age:.0f}s ago"
        )
        if rules.get("refused_version"):
            line += f"; REFUSED {rules['refused_version']}"
        click.echo(line)
    for r in records:
        for e in r.get("rules", {}).get("refused_errors", []):
            err(f"{r.get('worker')}: refused: {e}")


# -- record / replay / dlq ------------------------------------------------------------------------
@click.command()
@click.option("--topic", required=True, help="Topic to record (full name, or a falconet topic without prefix).")
@click.option("--out", required=True, type=click.Path(), help="Output file (JSON lines; .gz compresses; - is stdout).")
@click.option("--from-beginning/--from-end", default=True, show_default=True)
@click.option("--follow", is_flag=True, help="Keep recording until interrupted (default: stop at the end).")
@click.option("--max", "max_records", type=int, default=0, help="Stop after this many records.")
@click.pass_context
def record(ctx: click.Context, topic: str, out: str, from_beginning: bool, follow: bool, max_records: int) -> None:
    """Record a topic to a file that `falconet replay` plays back (timestamps kept)."""
    from falconet.sensors.record import record as do_record

    cfg = load_config(ctx)
    settings = kafka_settings(cfg)
    full = topic if topic.startswith(settings.topic_prefix) else settings.topic(topic)
    try:
        stats = do_record(settings, full, out, from_beginning=from_beginning, follow=follow,
                          max_records=max_records,
                          progress=lambda s: err(f"recorded {s.records} records ({s.bytes} bytes)"))  # fmt: skip
    except FalconetError as exc:
        _fail(exc)
    err(f"falconet record: {stats.records} records from {full} to {out}")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--topic", default=None, help="Target topic (default: the events topic of each event's source, "
              "or a recorded record's own topic).")  # fmt: skip
@click.option("--speed", type=float, default=None, help="Replay at this multiple of real time (1 = real time).")
@click.option("--as-fast-as-possible", "fast", is_flag=True, help="No pacing (the default).")
@click.pass_context
def replay(ctx: click.Context, files: tuple[str, ...], topic: str | None, speed: float | None, fast: bool) -> None:
    """Replay recorded events or records into Kafka.

    FILES are event files (what `falconet run --input` reads: falconet JSON lines,
    CloudTrail logs, Kubernetes audit logs, .scap captures) or files written by
    `falconet record`.
    """
    from falconet.inputs import RecordDecoder
    from falconet.sensors.publisher import Publisher
    from falconet.sensors.replay import replay as do_replay
    from falconet.streams.topics import events_topic

    if speed is not None and fast:
        err("falconet: --speed and --as-fast-as-possible exclude each other")
        sys.exit(2)
    if speed is not None and speed <= 0:
        err("falconet: --speed must be positive")
        sys.exit(2)
    cfg = load_config(ctx)
    settings = kafka_settings(cfg)
    target = None if topic is None else (topic if topic.startswith(settings.topic_prefix) else settings.topic(topic))
    try:
        with Publisher.from_config(cfg, settings, client_id="falconet-replay") as pub:
            stats = do_replay(
                list(files), pub, lambda s: settings.topic(events_topic(s)), topic=target,
                speed=speed, decoder=RecordDecoder(cluster=cfg["input.cluster"]),
                on_problem=lambda p: err(f"skipped record: {p}"),
                progress=lambda s: err(f"replayed {s.events} events, {s.records} records"),
            )  # fmt: skip
            failed = pub.stats.failed
    except FalconetError as exc:
        _fail(exc)
    err(f"falconet replay: {stats.events} events in {stats.records} records, "
        f"{stats.problems} skipped, {failed} undelivered")  # fmt: skip
    sys.exit(1 if failed else 0)


@click.command()
@click.option("--max", "max_records", type=int, default=20, show_default=True, help="How many to show.")
@click.option("--json", "as_json", is_flag=True, help="The records as JSON lines (originals included).")
@click.pass_context
def dlq(ctx: click.Context, max_records: int, as_json: bool) -> None:
    """Show the latest dead-letter records: stage, reason and origin of each."""
    from falconet.sensors.record import record as do_record

    cfg = load_config(ctx)
    settings = kafka_settings(cfg)
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".jsonl") as tmp:
        try:
            do_record(settings, settings.topic("dlq.v1"), tmp.name)
        except FalconetError as exc:
            _fail(exc)
        lines = [orjson.loads(x) for x in open(tmp.name, "rb") if x.strip()]
    lines.sort(key=lambda r: (r.get("value") or {}).get("ts", 0))
    for rec in lines[-max_records:]:
        v = rec.get("value") or {}
        if as_json:
            click.echo(orjson.dumps(v).decode())
            continue
        where = f"{v.get('topic')}[{v.get('partition')}]@{v.get('offset')}"
        if v.get("index") is not None:
            where += f" item {v['index']}"
        click.echo(f"{v.get('stage', '?'):9} {where}: {v.get('reason')}")
    if not lines:
        click.echo("the DLQ is empty")

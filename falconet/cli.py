"""The ``falconet`` command line."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from . import __version__
from .cli_common import (
    PRIORITY_NAMES,
    bundled_rules_dir,
    bundled_scenario_dir,
)
from .cli_common import err as _err
from .cli_common import load_config as _config
from .cli_common import load_engine as _load_engine
from .detection import Detection
from .errors import FalconetError
from .priority import Priority


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="falconet")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="FALCONET_CONFIG",
    help="YAML configuration file (settings: docs/configuration.md).",
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """falconet: Falco-compatible runtime detection for syscalls, CloudTrail and
    Kubernetes audit events.

    Start with `falconet demo`, check rule files with `falconet rules validate`, and
    evaluate recorded events with `falconet run`.
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


@main.command()
@click.option(
    "--rules",
    "-r",
    "rules",
    multiple=True,
    required=True,
    metavar="PATH",
    help="Rules file or directory (all *.yaml in name order); repeat to load several, in order.",
)
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    required=True,
    metavar="PATH",
    help="Events file: JSON lines, CloudTrail log (.json/.json.gz), Kubernetes audit log, "
    "libscap capture (.scap, from Falco or sysdig); '-' for stdin. Repeatable.",
)
@click.option(
    "--rule-matching",
    type=click.Choice(["first", "all"]),
    default=None,
    help="first: only the first matching rule fires per event (Falco's default); all: every one.",
)
@click.option(
    "--min-priority",
    type=click.Choice(PRIORITY_NAMES, case_sensitive=False),
    default=None,
    help="Skip rules less severe than this.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "text", "table"]),
    default="json",
    show_default=True,
    help="json: Falco JSON alerts, one per line; text: Falco's alert lines; table: a summary table.",
)
@click.option("--cluster", default=None, help="Cluster name for Kubernetes audit events read here.")
@click.option("--quiet-warnings", is_flag=True, help="Do not print rule load warnings.")
@click.option(
    "--policy",
    "policies",
    multiple=True,
    metavar="PATH",
    help="Policy file or directory (docs/policy.md): scopes that disable rules, change "
    "priorities, add exceptions and route detections; adds owner, environment and score. "
    "Repeatable, applied in order.",
)
@click.pass_context
def run(
    ctx: click.Context,
    rules: tuple[str, ...],
    inputs: tuple[str, ...],
    rule_matching: str | None,
    min_priority: str | None,
    fmt: str,
    cluster: str | None,
    quiet_warnings: bool,
    policies: tuple[str, ...],
) -> None:
    """Evaluate recorded events against rule files, offline.

    Detections go to stdout (one Falco JSON alert per line by default); problems and a
    one-line summary go to stderr. A malformed record is reported with its file and line
    and skipped. Exit status: 0 on success, 1 if the rules fail to load or an input
    cannot be read.
    """
    from .inputs import RecordDecoder
    from .run import run_files

    config = _config(
        ctx,
        **{
            "rules.matching": rule_matching,
            "rules.min_priority": min_priority,
            "input.cluster": cluster,
        },
    )
    engine, _ = _load_engine(rules, config, quiet_warnings=quiet_warnings)
    evaluator: Any = engine
    if policies:
        from falconet.rules.policy import PolicedEngine, load_policy_paths

        policy, presult = load_policy_paths(policies, engine)
        for msg in presult.messages:
            if msg.is_error or not quiet_warnings:
                _err(msg.format())
        if not presult.ok:
            _err(f"falconet: policies failed to load ({presult.summary()})")
            sys.exit(1)
        evaluator = PolicedEngine(engine, policy)
    collected: list[Detection] = []
    out = sys.stdout.buffer

    def emit(d: Detection) -> None:
        if fmt == "json":
            out.write(d.to_json() + b"\n")
        elif fmt == "text":
            out.write(d.output.encode("utf-8", "replace") + b"\n")
        else:
            collected.append(d)

    status = 0
    stats = None
    try:
        stats = run_files(
            evaluator,
            inputs,
            emit,
            _err,
            RecordDecoder(
                cluster=config["input.cluster"],
                k8s_max_event_bytes=config["input.k8s_audit_max_event_bytes"],
            ),
            config["input.max_record_bytes"],
        )
    except FalconetError as exc:
        _err(f"falconet: {exc}")
        status = 1
    out.flush()
    if fmt == "table":
        print_table(collected)
    if stats is not None:
        _err(f"falconet run: {stats.summary()}")
    if policies and evaluator.policy.suppressed:
        dropped = sorted(evaluator.policy.suppressed.items())
        _err("falconet run: suppressed by policy: " + ", ".join(
            f"{n} {rule!r} ({reason} by {pol})" for (pol, rule, reason), n in dropped))  # fmt: skip
    sys.exit(status)


_COLORS = {
    Priority.EMERGENCY: "bold red",
    Priority.ALERT: "bold red",
    Priority.CRITICAL: "bold red",
    Priority.ERROR: "red",
    Priority.WARNING: "yellow",
    Priority.NOTICE: "cyan",
    Priority.INFORMATIONAL: "green",
    Priority.DEBUG: "dim",
}


def print_detection(console: Any, d: Detection) -> None:
    """One detection for a human: a heading line (time, priority, source, rule) and the
    alert text wrapped below it. Readable at any width; no markup is interpreted."""
    from rich.padding import Padding
    from rich.text import Text

    from falconet import timefmt

    console.print(
        Text.assemble(
            (timefmt.iso8601_z(d.ts)[11:23], "dim"),
            " ",
            (f"{d.priority.title:<13}", _COLORS[d.priority]),
            " ",
            (f"{d.source:<14}", "magenta"),
            " ",
            (d.rule, "bold"),
        )
    )
    details = d.output.split(f"{d.priority.title} ", 1)[-1]
    console.print(Padding(Text(details), (0, 0, 1, 4)))


def print_counts(console: Any, detections: Sequence[Detection]) -> None:
    """The number of detections per rule, most severe first."""
    from collections import Counter

    from rich.table import Table
    from rich.text import Text

    counts = Counter((d.source, d.rule, d.priority) for d in detections)
    table = Table(title="detections per rule", show_edge=False)
    for col in ("count", "priority", "source", "rule"):
        table.add_column(col, overflow="fold")
    for (source, rule, prio), n in sorted(counts.items(), key=lambda kv: (kv[0][2], -kv[1])):
        table.add_row(str(n), Text(prio.title, _COLORS[prio]), source, Text(rule))
    console.print(table)


def print_table(detections: Sequence[Detection]) -> None:
    """Every detection (see :func:`print_detection`), then the count per rule."""
    from rich.console import Console

    console = Console(highlight=False)
    console.rule(f"{len(detections)} detections")
    for d in detections:
        print_detection(console, d)
    if detections:
        print_counts(console, detections)


@main.group()
def rules() -> None:
    """Check and inspect rule files."""


@rules.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def rules_validate(paths: tuple[str, ...], as_json: bool) -> None:
    """Load rule files in the order given (as Falco's -r) and report counts, warnings and
    errors with file:line:column. Policy files among them (docs/policy.md) are checked
    after the rules, against them. Exit status 1 on any error."""
    from falconet.rules.engine import Engine, expand_rule_files
    from falconet.rules.policy import is_policy_text, load_policy

    rule_paths: list[str] = []
    policy_files: list[tuple[str, str]] = []
    for path in expand_rule_files(paths) if paths else []:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            rule_paths.append(str(path))  # the loader reports it with its position
            continue
        if is_policy_text(text):
            policy_files.append((str(path), text))
        else:
            rule_paths.append(str(path))
    engine = Engine()
    result = engine.load(rule_paths or list(paths))
    policies = 0
    if result.ok and policy_files:
        policy_set, result = load_policy(policy_files, engine, result)
        policies = len(policy_set.policies)
    if as_json:
        import orjson

        click.echo(
            orjson.dumps(
                {
                    "ok": result.ok,
                    "files": [
                        {"path": f.path, "rules": f.rules, "macros": f.macros, "lists": f.lists}
                        for f in result.files
                    ],
                    "messages": [m.to_json_obj() for m in result.messages],
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
    else:
        for f in result.files:
            click.echo(f"{f.path}: {f.rules} rules, {f.macros} macros, {f.lists} lists")
        if result.ok and len(result.files) > 1:
            rules_n, macros_n, lists_n = engine.definition_counts()
            click.echo(
                f"together: {rules_n} rules, {macros_n} macros, {lists_n} lists (unique names)"
            )
        if policy_files:
            click.echo(f"policies: {policies} in {len(policy_files)} file(s)")
        for m in result.messages:
            click.echo(m.format())
        click.echo(("OK: " if result.ok else "FAILED: ") + result.summary())
    sys.exit(0 if result.ok else 1)


@rules.command("list")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--source", default=None, help="Only rules of this source.")
def rules_list(paths: tuple[str, ...], source: str | None) -> None:
    """List the rules of rule files (default: falconet's bundled rules) in match order."""
    from rich.console import Console
    from rich.table import Table

    from falconet.rules.engine import Engine

    engine = Engine()
    result = engine.load(list(paths) or [str(bundled_rules_dir())])
    for m in result.errors:
        _err(m.format())
    if not result.ok:
        sys.exit(1)
    table = Table(expand=True)
    for col in ("rule", "source", "priority", "enabled", "tags"):
        table.add_column(col)
    shown = 0
    for r in engine.rules:
        if source and r.source != source:
            continue
        shown += 1
        table.add_row(
            r.name, r.source, r.priority.title, "yes" if r.enabled else "no", ", ".join(r.tags)
        )
    table.title = f"{shown} rules"
    Console().print(table)


@main.command()
@click.option("--source", default="syscall", show_default=True, help="Event source.")
def fields(source: str) -> None:
    """List the fields rule conditions and outputs may use for a source."""
    from falconet.rules.fields import KNOWN_SOURCES, registry_for

    reg = registry_for(source)
    if reg is None:
        _err(f"falconet: unknown source {source!r} (known: {', '.join(KNOWN_SOURCES)})")
        sys.exit(2)
    for f in sorted(reg, key=lambda f: f.name):
        extra = []
        if f.is_list:
            extra.append("list")
        if f.arg.value != "none":
            extra.append(f"arg {f.arg.value}")
        if f.deprecated:
            extra.append("deprecated")
        tail = f" [{', '.join(extra)}]" if extra else ""
        click.echo(f"{f.name:<40} {f.type.value:<8} {f.desc}{tail}")


@main.command()
@click.option(
    "--rule-matching", type=click.Choice(["first", "all"]), default="all", show_default=True
)
@click.option(
    "--offline", is_flag=True, help="Evaluate the scenario files directly, without Kafka."
)
@click.option("--speed", type=float, default=60.0, show_default=True,
              help="Replay speed, as a multiple of the scenario's real time.")  # fmt: skip
@click.pass_context
def demo(ctx: click.Context, rule_matching: str, offline: bool, speed: float) -> None:
    """Run falconet on the bundled intrusion scenario and show the detections.

    The scenario (shell in a container, credential read, outbound connection, CloudTrail
    StopLogging/CreateAccessKey, privileged pod) ships with the package; see
    falconet/scenarios/intrusion/README.md. By default the whole pipeline runs: a Kafka
    broker (FALCONET_KAFKA_BOOTSTRAP, or one started for the demo), the topics, a stream
    worker, the scenario replayed into Kafka, detections shown live from detections.v1;
    everything started is stopped at the end. --offline evaluates the files directly.
    """
    config = _config(ctx, **{"rules.matching": rule_matching})
    if offline:
        _demo_offline(config)
        return
    from rich.console import Console

    from .demo import run_demo

    try:
        sys.exit(run_demo(config, Console(highlight=False), rule_matching, speed))
    except FalconetError as exc:
        _err(f"falconet demo: {exc}")
        sys.exit(1)


def _demo_offline(config: Any) -> None:
    from .inputs import RecordDecoder
    from .run import run_files

    scenario = bundled_scenario_dir()
    inputs = sorted(str(p) for p in scenario.iterdir() if p.suffix in (".jsonl", ".json", ".gz"))
    rules_dir = bundled_rules_dir()
    click.echo(f"rules:  {rules_dir}")
    for p in inputs:
        click.echo(f"events: {p}")
    engine, _ = _load_engine([str(rules_dir)], config)
    found: list[Detection] = []
    stats = run_files(
        engine, inputs, found.append, _err, RecordDecoder(host="demo-collector", cluster="demo")
    )
    found.sort(key=lambda d: d.ts)
    print_table(found)
    click.echo(
        f"falconet demo: {stats.events} events, {stats.detections} detections, "
        f"{stats.input_errors} input errors, {stats.eval_errors} evaluation errors "
        f"in {stats.seconds:.2f}s"
    )
    if stats.input_errors or stats.eval_errors or not found:
        sys.exit(1)


def _register() -> None:
    from . import cli_stream

    main.add_command(cli_stream.topics)
    main.add_command(cli_stream.worker)
    main.add_command(cli_stream.record)
    main.add_command(cli_stream.replay)
    main.add_command(cli_stream.dlq)
    from .cli_sensors import sensor

    main.add_command(sensor)
    from falconet.sinks.cli import sink

    main.add_command(sink)
    rules.add_command(cli_stream.rules_push)
    rules.add_command(cli_stream.rules_status)
    try:
        from .broker_cli import kafka
    except ImportError:  # pragma: no cover - the launcher ships with the package
        return
    main.add_command(kafka)


_register()


def entry() -> None:
    """The installed ``falconet`` command (and ``python -m falconet``).

    SIGPIPE keeps Python's disposition (ignored): a long-running command that writes to a
    socket whose peer has gone must get an error it can retry, not be killed. A closed
    stdout (``falconet ... | head``) still ends quietly: click turns the EPIPE into a
    silent exit.
    """
    main(prog_name="falconet")


if __name__ == "__main__":  # pragma: no cover
    entry()

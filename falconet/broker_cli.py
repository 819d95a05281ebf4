"""``falconet kafka up|down|status``: a local Apache Kafka broker that outlives the command.

``up`` starts the broker of :class:`falconet.broker.LocalKafka` detached and records it in
a state file under the user's cache dir; tools find it there when
``FALCONET_KAFKA_BOOTSTRAP`` is unset. ``down`` stops it, ``status`` reports on it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import NoReturn

import click

from . import broker
from .errors import FalconetError


def _progress(message: str) -> None:
    click.echo(f"falconet kafka: {message}", err=True)


def _fail(message: str, status: int = 1) -> NoReturn:
    click.echo(f"falconet kafka: {message}", err=True)
    sys.exit(status)


def _external() -> str:
    return os.environ.get(broker.BOOTSTRAP_ENV, "").strip()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def kafka() -> None:
    """A local Apache Kafka broker for falconet's tools, tests and demo.

    `falconet kafka up` starts Apache Kafka in KRaft mode (one node, loopback only) with
    this machine's Java 17+, from the official jars that Maven downloads once into
    $XDG_CACHE_HOME/falconet/kafka (default ~/.cache). It prints the bootstrap address;
    falconet commands use that broker whenever FALCONET_KAFKA_BOOTSTRAP is unset.
    `falconet kafka down` stops it; `falconet kafka status` reports on it.

    Needs Java 17+ and Maven; on Debian/Ubuntu:

    \b
        apt-get install -y openjdk-17-jre-headless maven

    To use an existing cluster instead, set FALCONET_KAFKA_BOOTSTRAP=host:port.
    """


@kafka.command()
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds to wait for the broker to answer (not counting the one-time download).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Client port on 127.0.0.1 (default: a free port).",
)
@click.option(
    "--heap", default=broker.DEFAULT_HEAP, show_default=True, help="Java heap limit (-Xmx)."
)
def up(timeout: float, port: int | None, heap: str) -> None:
    """Start a local Kafka broker that keeps running after this command.

    Prints the bootstrap address (host:port) on stdout and progress on stderr, so this
    works:

    \b
        export FALCONET_KAFKA_BOOTSTRAP=$(falconet kafka up)

    The broker listens on 127.0.0.1 only; its data and log live in a temporary folder
    that `falconet kafka down` deletes. If a broker started by `up` is already running, says so and prints its
    address. If FALCONET_KAFKA_BOOTSTRAP is set, nothing is started: the command checks
    that cluster answers and prints it. The first run downloads Kafka (about a minute).
    """
    external = _external()
    if external:
        _progress(f"{broker.BOOTSTRAP_ENV} is set; not starting a broker")
        try:
            broker.wait_ready(external, min(timeout, 30.0), what=broker.BOOTSTRAP_ENV)
        except FalconetError as exc:
            _fail(str(exc))
        click.echo(external)
        return
    try:
        with broker.up_lock(_progress):
            state = broker.read_state()
            if state is not None:
                if state.running():
                    try:
                        broker.wait_ready(state.bootstrap, 10.0)
                    except FalconetError:
                        _fail(
                            f"the broker started by `falconet kafka up` (pid {state.pid}) runs "
                            f"but does not answer at {state.bootstrap}; see {state.log_file}, "
                            "or stop it with `falconet kafka down`"
                        )
                    _progress(
                        f"a broker started by `falconet kafka up` is already running "
                        f"(pid {state.pid}, {state.bootstrap})"
                    )
                    click.echo(state.bootstrap)
                    return
                _progress(f"the broker recorded earlier (pid {state.pid}) is gone; starting a new one")
                shutil.rmtree(state.data_dir, ignore_errors=True)
                broker.clear_state()
            local = broker.LocalKafka(progress=_progress, port=port, heap=heap, detached=True)
            info = local.start(timeout)
            assert local.port is not None and local.controller_port is not None
            broker.write_state(
                broker.UpState(
                    pid=info.pid or 0,
                    bootstrap=info.bootstrap,
                    port=local.port,
                    controller_port=local.controller_port,
                    data_dir=info.data_dir or "",
                    log_file=info.log_file or "",
                    kafka_version=broker.KAFKA_VERSION,
                    started_at=time.time(),
                )
            )
            _progress(f"log: {info.log_file}; stop it with `falconet kafka down`")
            click.echo(info.bootstrap)
    except FalconetError as exc:
        _fail(str(exc))


@kafka.command()
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for a clean shutdown before killing the broker.",
)
def down(timeout: float) -> None:
    """Stop the broker `falconet kafka up` started and delete its data.

    Sends SIGTERM (Kafka shuts down cleanly), waits, then SIGKILL. Does nothing, and
    succeeds, when no such broker runs. Never touches a cluster named by
    FALCONET_KAFKA_BOOTSTRAP.
    """
    try:
        with broker.up_lock(_progress):
            state = broker.read_state()
            if state is None:
                _progress("no broker started by `falconet kafka up` is running")
                return
            if state.running():
                broker.terminate(state.pid, timeout)
                _progress(f"stopped the Kafka broker pid {state.pid} ({state.bootstrap})")
            else:
                _progress(f"the broker pid {state.pid} had already exited; cleaned up")
            shutil.rmtree(state.data_dir, ignore_errors=True)
            broker.clear_state()
    except FalconetError as exc:
        _fail(str(exc))


@kafka.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.5),
    default=5.0,
    show_default=True,
    help="Seconds to wait for the broker to answer.",
)
def status(as_json: bool, timeout: float) -> None:
    """Report on the broker falconet commands would use.

    That is the cluster in FALCONET_KAFKA_BOOTSTRAP if set, else the broker `falconet kafka
    up` started. Shows whether it answers, its bootstrap address, pid, and broker and topic
    counts (internal topics not counted). Exit status 1 when it is not running or does not
    answer.
    """
    external = _external()
    state = None if external else broker.read_state()
    report: dict[str, object] = {
        "running": False,
        "kind": "external" if external else "local",
        "bootstrap": external or (state.bootstrap if state else None),
        "pid": None,
        "data_dir": None,
        "log_file": None,
        "kafka_version": None,
        "brokers": None,
        "topics": None,
        "error": None,
    }
    if state is not None:
        report.update(
            pid=state.pid,
            data_dir=state.data_dir,
            log_file=state.log_file,
            kafka_version=state.kafka_version,
        )
    bootstrap = report["bootstrap"]
    if external or (state is not None and state.running()):
        try:
            summary = broker.wait_ready(
                str(bootstrap), timeout, what=broker.BOOTSTRAP_ENV if external else None
            )
        except FalconetError as exc:
            report["error"] = str(exc)
        else:
            report.update(running=True, brokers=summary.brokers, topics=summary.topics)
    elif state is not None:
        report["error"] = f"the broker pid {state.pid} has exited (see {state.log_file})"
    else:
        report["error"] = "no broker started by `falconet kafka up` (and FALCONET_KAFKA_BOOTSTRAP unset)"
    if as_json:
        click.echo(json.dumps(report))
    else:
        click.echo(f"{'running:':<14} {'yes' if report['running'] else 'no'}")
        if external:
            click.echo(f"{'cluster:':<14} from {broker.BOOTSTRAP_ENV}")
        for key in ("bootstrap", "pid", "brokers", "topics", "kafka_version", "data_dir", "log_file"):
            if report[key] is not None:
                click.echo(f"{key.replace('_', ' ') + ':':<14} {report[key]}")
        if report["error"]:
            click.echo(f"falconet kafka: {report['error']}", err=True)
    sys.exit(0 if report["running"] else 1)

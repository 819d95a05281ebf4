"""`falconet sensor k8s-meta`: publish a cluster's pods, containers, namespaces and nodes."""

from __future__ import annotations

import sys

import click

from falconet.cli_common import err, load_config, log_level_option, setup_logging
from falconet.cli_stream import kafka_settings
from falconet.errors import FalconetError


@click.command("k8s-meta")
@click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False),
              help="kubeconfig file (default: the in-cluster service account in a pod, else "
                   "$KUBECONFIG or ~/.kube/config).")  # fmt: skip
@click.option("--context", default=None, help="kubeconfig context (default: its current-context).")
@click.option("--cluster", default=None, help="Cluster name written in every record.")
@click.option("--publish-containers/--no-publish-containers", default=None,
              help="Also publish each pod's containers to meta.containers.v1 (default: on).")  # fmt: skip
@click.option("--metrics-port", default=None, type=int,
              help="Serve Prometheus /metrics on this port (0: off).")  # fmt: skip
@log_level_option("info")
@click.pass_context
def command(
    ctx: click.Context,
    kubeconfig: str | None,
    context: str | None,
    cluster: str | None,
    publish_containers: bool | None,
    metrics_port: int | None,
    log_level: str,
) -> None:
    """Watch the Kubernetes API and publish pods (by uid and, with --publish-containers, by
    container id), namespaces and nodes to the compacted meta.*.v1 topics the workers join
    events with.

    One instance per cluster (a Deployment with one replica). It needs only list and watch
    on pods, namespaces, nodes, replicasets.apps and jobs.batch (docs/sensors/k8s-meta.md
    has the ClusterRole). A record is published when its value changes; deleted objects get
    tombstones, also those deleted while the watch was down (found by the relist after
    410 Gone).

    Exit status: 0 stopped, 1 a failure while running (Kafka), 2 a configuration problem
    at start (kubeconfig, CA, token file).
    """
    from falconet.sensors.base import run_sensor_command

    from .metrics import register
    from .sensor import K8sMetaSensor
    from .settings import K8sMetaSettings

    setup_logging(log_level, ("aiohttp",))
    cfg = load_config(ctx)
    try:
        settings = K8sMetaSettings.load(cfg, overrides={
            "k8s_meta.kubeconfig": kubeconfig, "k8s_meta.context": context,
            "k8s_meta.cluster": cluster, "k8s_meta.publish_containers": publish_containers,
            "k8s_meta.metrics_port": metrics_port,
        })  # fmt: skip
        kafka = kafka_settings(cfg)
        sensor = K8sMetaSensor(settings)
        sensor.setup()
    except FalconetError as exc:
        err(f"falconet: {exc}")
        sys.exit(2)
    if settings.metrics_port:
        register(sensor.kstats)
    run_sensor_command(
        sensor,
        cfg,
        settings=kafka,
        metrics_port=settings.metrics_port,
        interrupted="the next start lists everything again",
    )
    k = sensor.kstats
    err(
        f"falconet sensor k8s-meta: {sum(k.published.values())} records, "
        f"{sum(k.tombstones.values())} tombstones, {sum(k.relists.values())} relists, "
        f"{k.total_errors} API errors"
    )

"""``falconet sensor k8s-audit``: run the Kubernetes audit webhook."""

from __future__ import annotations

import sys

import click

from falconet.cli_common import err, load_config, log_level_option, setup_logging
from falconet.errors import ConfigError, FalconetError


@click.command("k8s-audit")
@click.option("--listen", "listen_address", default=None, metavar="ADDR",
              help="Address to listen on (k8s_audit.listen_address, default 0.0.0.0).")  # fmt: skip
@click.option(
    "--port", type=int, default=None, help="Port (k8s_audit.port, default 9765; 0: any free port)."
)
@click.option(
    "--path", default=None, help="URL path of the webhook (k8s_audit.path, default /k8s-audit)."
)
@click.option(
    "--cluster",
    default=None,
    help="Cluster name for the envelopes and the Kafka key (k8s_audit.cluster).",
)
@click.option("--tls-cert", "tls_cert_file", default=None, metavar="FILE",
              help="Server certificate, PEM (k8s_audit.tls_cert_file).")  # fmt: skip
@click.option("--tls-key", "tls_key_file", default=None, metavar="FILE",
              help="Server key, PEM (k8s_audit.tls_key_file; default: the certificate file).")  # fmt: skip
@click.option("--client-ca", "client_ca_file", default=None, metavar="FILE",
              help="Require client certificates signed by this CA (k8s_audit.client_ca_file).")  # fmt: skip
@click.option("--token-file", default=None, metavar="FILE",
              help="File holding the bearer token (k8s_audit.token_file; or FALCONET_K8S_AUDIT_TOKEN).")  # fmt: skip
@click.option("--insecure-http", is_flag=True, default=False,
              help="Serve plain HTTP (development only: events and tokens unencrypted).")  # fmt: skip
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Prometheus /metrics port (k8s_audit.metrics_port).",
)
@log_level_option("info")
@click.pass_context
def command(
    ctx: click.Context,
    listen_address: str | None,
    port: int | None,
    path: str | None,
    cluster: str | None,
    tls_cert_file: str | None,
    tls_key_file: str | None,
    client_ca_file: str | None,
    token_file: str | None,
    insecure_http: bool,
    metrics_port: int | None,
    log_level: str,
) -> None:
    """Run the Kubernetes audit webhook: an HTTPS endpoint for kube-apiserver's audit
    webhook backend (--audit-webhook-config-file).

    Every POSTed EventList is published to events.k8s_audit.v1 before the answer: 200 once
    Kafka acknowledged it, 503 with Retry-After otherwise (the API server retries). Bodies
    that are not audit events get 400 and go to the DLQ. Authentication: a bearer token
    (FALCONET_K8S_AUDIT_TOKEN or --token-file), client certificates (--client-ca), or both.
    SIGTERM stops accepting, finishes the requests in flight and flushes.
    See docs/sensors/k8s-audit.md.
    """
    setup_logging(log_level)
    cfg = load_config(
        ctx,
        **{
            "k8s_audit.listen_address": listen_address,
            "k8s_audit.port": port,
            "k8s_audit.path": path,
            "k8s_audit.cluster": cluster,
            "k8s_audit.tls_cert_file": tls_cert_file,
            "k8s_audit.tls_key_file": tls_key_file,
            "k8s_audit.client_ca_file": client_ca_file,
            "k8s_audit.token_file": token_file,
            "k8s_audit.insecure_http": True if insecure_http else None,
            "k8s_audit.metrics_port": metrics_port,
        },
    )
    from falconet.kafka import KafkaSettings
    from falconet.sensors.base import run_sensor

    from .sensor import K8sAuditSensor
    from .settings import WebhookSettings

    try:
        settings = WebhookSettings.from_config(cfg)
        kafka = KafkaSettings.from_config(cfg)
        sensor = K8sAuditSensor(settings, token=str(cfg["k8s_audit.token"]))
        run_sensor(sensor, cfg, settings=kafka, metrics_port=settings.metrics_port)
    except ConfigError as exc:
        err(f"falconet: {exc}")
        sys.exit(2)
    except FalconetError as exc:
        err(f"falconet: {exc}")
        sys.exit(1)

"""Configuration: one YAML file, every key overridable by a ``FALCONET_*`` variable.

Precedence, lowest first: built-in defaults, the YAML file (``--config`` or
``FALCONET_CONFIG``), environment variables, command-line options. Every setting is
declared once in :data:`SETTINGS`; ``docs/configuration.md`` shows the same table
(a test keeps the two in step).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .priority import Priority


@dataclass(frozen=True, slots=True)
class Setting:
    key: str  # dotted YAML path
    default: Any
    kind: type
    doc: str
    secret: bool = False  # only from the environment (or a file setting), never from YAML

    @property
    def env(self) -> str:
        return env_name(self.key)


def env_name(key: str) -> str:
    """The environment variable that overrides a dotted setting key."""
    return "FALCONET_" + key.upper().replace(".", "_")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "rules.matching",
        "first",
        str,
        "`first`: only the first matching rule fires per event (Falco's default); "
        "`all`: every matching rule fires.",
    ),
    Setting(
        "rules.min_priority",
        "debug",
        str,
        "Rules less severe than this are not evaluated (emergency … debug).",
    ),
    Setting(
        "rules.sources",
        "",
        str,
        "Comma-separated event sources whose rules are loaded (like the plugins a Falco "
        'configuration loads); rules of other sources are skipped with an "Unknown source" '
        "warning. Empty: every source falconet knows.",
    ),
    Setting(
        "output.suggested_fields",
        True,
        bool,
        "Append the container fields Falco suggests (`container_id=…`, `k8s_ns_name=…`) "
        "to every syscall alert text.",
    ),
    Setting(
        "output.time_iso8601",
        False,
        bool,
        "Start alert text with the ISO 8601 UTC time instead of the local clock.",
    ),
    Setting(
        "input.max_record_bytes",
        16 * 1024 * 1024,
        int,
        "Largest input record (a line, or a whole JSON document) read; larger ones are "
        "reported and skipped.",
    ),
    Setting(
        "input.k8s_audit_max_event_bytes",
        262_144,
        int,
        "Kubernetes audit events larger than this (compact JSON) are reported and skipped, "
        "as the k8saudit plugin's `maxEventSize` does; 0 for no limit.",
    ),
    Setting(
        "input.cluster",
        "",
        str,
        "Cluster name stored in the envelope of Kubernetes audit events read from files.",
    ),
    # -- Kafka ---------------------------------------------------------------------------
    Setting(
        "kafka.bootstrap",
        "",
        str,
        "Kafka bootstrap servers (`host:port,...`). Empty: the local broker `falconet kafka up` "
        "started (tools), or one the command starts itself (demo, tests).",
    ),
    Setting("kafka.topic_prefix", "falconet.", str, "Prefix of every falconet topic name."),
    Setting(
        "kafka.security_protocol",
        "PLAINTEXT",
        str,
        "`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`, for every client.",
    ),
    Setting(
        "kafka.sasl_mechanism",
        "",
        str,
        "`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER` (with SASL_* protocols).",
    ),
    Setting("kafka.sasl_username", "", str, "SASL user name."),
    Setting(
        "kafka.sasl_password",
        "",
        str,
        "SASL password; environment only (or `kafka.sasl_password_file`).",
        secret=True,
    ),
    Setting("kafka.sasl_password_file", "", str, "File holding the SASL password."),
    Setting(
        "kafka.oauth_token_endpoint",
        "",
        str,
        "OAUTHBEARER: the OIDC token endpoint (client credentials from `kafka.sasl_username` "
        "and the password).",
    ),
    Setting("kafka.ssl_ca_file", "", str, "CA bundle to verify the brokers (TLS)."),
    Setting("kafka.ssl_cert_file", "", str, "Client certificate for mutual TLS."),
    Setting("kafka.ssl_key_file", "", str, "Private key of the client certificate."),
    Setting(
        "kafka.ssl_verify_hostname",
        True,
        bool,
        "Check that the broker certificate matches its host name.",
    ),
    # -- topics ---------------------------------------------------------------------------
    Setting("topics.partitions", 6, int, "Partitions of the event, detection and DLQ topics."),
    Setting("topics.meta_partitions", 3, int, "Partitions of the compacted `meta.*` topics."),
    Setting("topics.replication", 1, int, "Replication factor of every topic."),
    Setting(
        "topics.retention_ms",
        7 * 24 * 3600 * 1000,
        int,
        "Retention of the event, detection and DLQ topics (ms; -1 keeps forever).",
    ),
    # -- publisher (sensors and tools) ------------------------------------------------------
    Setting(
        "publisher.batch_events",
        500,
        int,
        "Most events in one Kafka record (a batch is sent when full or when "
        "`publisher.batch_ms` has passed).",
    ),
    Setting("publisher.batch_bytes", 512 * 1024, int, "Most bytes of events in one record."),
    Setting("publisher.batch_ms", 100, int, "Longest an event waits in a batch (ms)."),
    Setting(
        "publisher.compression",
        "lz4",
        str,
        "Compression of produced records: `lz4`, `zstd`, `snappy`, `gzip` or `none`.",
    ),
    # -- worker -------------------------------------------------------------------------------
    Setting(
        "worker.id",
        "",
        str,
        "Name this worker reports in `falconet rules status` (default: host name and pid).",
    ),
    Setting(
        "worker.max_record_bytes",
        4 * 1024 * 1024,
        int,
        "Event records larger than this go to the DLQ undecoded.",
    ),
    Setting(
        "worker.metrics_port",
        0,
        int,
        "Port of the Prometheus `/metrics` endpoint of a worker (0: off).",
    ),
    Setting(
        "worker.data_dir",
        "",
        str,
        "Where the worker keeps local state (default: a folder under the user's cache dir).",
    ),
    # -- enrich (late-arriving container metadata in the workers) ----------------------------
    Setting(
        "enrich.wait_ms",
        2000,
        int,
        "Longest a syscall record waits for the metadata of a container the containers table does not hold yet, then goes on without it (0: never wait).",
    ),
    Setting(
        "enrich.max_pending",
        10000,
        int,
        "Most events held at once waiting for container metadata; a record that would pass it goes on at once.",
    ),
    # -- end enrich
    # -- sensor.syscall (the eBPF sensor) ---------------------------------------------------
    Setting(
        "syscall.host",
        "",
        str,
        "Node name put in each syscall event (`host`, the Kafka key). Default: the host name; "
        "in Kubernetes pass the node name (`spec.nodeName`).",
    ),
    Setting(
        "syscall.rules",
        "",
        str,
        "Comma-separated rule files or folders: the kernel reports only the event types their "
        "rules can match. Empty: every event type the sensor supports.",
    ),
    Setting(
        "syscall.ring_mb",
        64,
        int,
        "Size of the BPF ring buffer in MiB (a power of two); about 130,000 records per 64 MiB.",
    ),
    Setting(
        "syscall.poll_ms",
        50,
        int,
        "Interval between two reads of the ring buffer (ms, 1-1000) when it holds no backlog: "
        "the longest an event waits in the kernel. Under load the sensor reads back to back.",
    ),
    Setting(
        "syscall.env",
        True,
        bool,
        "Send the environment of executed processes (`proc.env` of execve events).",
    ),
    Setting(
        "syscall.share_context",
        True,
        bool,
        "Write a thread's context (`proc`, `ancestors`, `user`, `group`, `container`) once "
        "per batch record and refer to it from the thread's later events in the record "
        "(`event.ctx`, docs/events.md); `false` makes every envelope self-contained, at "
        "several times the bytes.",
    ),
    Setting(
        "syscall.metrics_port",
        0,
        int,
        "Port of the sensor's Prometheus `/metrics` endpoint (0: off).",
    ),
    Setting(
        "syscall.object",
        "",
        str,
        "Path of the compiled BPF object to load. Default: the one shipped with falconet.",
    ),
    # -- end sensor.syscall
    # -- sensor.cloudtrail (the CloudTrail collector) ---------------------------------------
    Setting(
        "cloudtrail.sqs_queue_url",
        "",
        str,
        "SQS queue of the S3 notifications (direct or via SNS) announcing new log files; one "
        "source of three (or `cloudtrail.bucket`, or `cloudtrail.directory`).",
    ),
    Setting(
        "cloudtrail.bucket",
        "",
        str,
        "Bucket whose log files are found by listing it every `cloudtrail.poll_seconds`.",
    ),
    Setting(
        "cloudtrail.prefix",
        "",
        str,
        "With `cloudtrail.bucket`: only keys under this prefix (e.g. `AWSLogs/` or "
        "`AWSLogs/o-abc/123456789012/`).",
    ),
    Setting("cloudtrail.directory", "", str, "Local directory of log files to follow."),
    Setting(
        "cloudtrail.region",
        "",
        str,
        "AWS region of the queue and bucket (default: the standard AWS chain, else the "
        "queue URL's). Credentials always come from the standard AWS chain.",
    ),
    Setting(
        "cloudtrail.endpoint_url",
        "",
        str,
        "Endpoint override for S3 and SQS (MinIO, LocalStack, a VPC endpoint).",
    ),
    Setting(
        "cloudtrail.checkpoint_file",
        "",
        str,
        "Where the collector records the log files it published (default: "
        "`~/.local/state/falconet/cloudtrail-checkpoint.jsonl`); one per collector.",
    ),
    Setting(
        "cloudtrail.poll_seconds",
        60,
        int,
        "Seconds between two listings of the bucket or scans of the directory.",
    ),
    Setting(
        "cloudtrail.since",
        "",
        str,
        "With `cloudtrail.bucket`: a date (`YYYY-MM-DD`); older day folders are not read on "
        "the first run. Empty: everything.",
    ),
    Setting(
        "cloudtrail.max_in_flight",
        4,
        int,
        "Most log files being read or awaiting Kafka's acknowledgement at once.",
    ),
    Setting(
        "cloudtrail.sqs_wait_seconds",
        20,
        int,
        "Long-poll wait of one SQS receive (0–20 s).",
    ),
    Setting(
        "cloudtrail.visibility_seconds",
        300,
        int,
        "SQS visibility timeout of received messages; extended while their log files are "
        "in flight.",
    ),
    Setting(
        "cloudtrail.metrics_port",
        0,
        int,
        "Port of the collector's Prometheus `/metrics` endpoint (0: off).",
    ),
    # -- end sensor.cloudtrail
    # -- sensor.k8s_audit (the audit webhook) -----------------------------------------------
    Setting(
        "k8s_audit.listen_address",
        "0.0.0.0",
        str,
        "Address the audit webhook listens on (`::` for IPv6 and IPv4).",
    ),
    Setting(
        "k8s_audit.port", 9765, int, "Port of the audit webhook (the Falco k8saudit plugin's)."
    ),
    Setting(
        "k8s_audit.path", "/k8s-audit", str, "URL path the API server posts its audit batches to."
    ),
    Setting(
        "k8s_audit.tls_cert_file",
        "",
        str,
        "Server certificate (PEM, chain included); required unless `k8s_audit.insecure_http`. "
        "Reloaded when the file changes.",
    ),
    Setting(
        "k8s_audit.tls_key_file",
        "",
        str,
        "Private key of the server certificate (default: `k8s_audit.tls_cert_file`, a combined "
        "PEM like Falco's `falco.pem`).",
    ),
    Setting(
        "k8s_audit.client_ca_file",
        "",
        str,
        "CA bundle for client certificates: when set, every webhook request needs a client "
        "certificate this CA signed; one from another CA fails the TLS handshake.",
    ),
    Setting(
        "k8s_audit.allowed_cns",
        "",
        str,
        "Comma-separated subject common names a client certificate may carry (empty: any the "
        "CA signed); others get 403.",
    ),
    Setting(
        "k8s_audit.token",
        "",
        str,
        "Bearer token every webhook request must carry; environment only (or "
        "`k8s_audit.token_file`).",
        secret=True,
    ),
    Setting(
        "k8s_audit.token_file",
        "",
        str,
        "File holding the bearer token (read again when it changes).",
    ),
    Setting(
        "k8s_audit.insecure_http",
        False,
        bool,
        "Serve plain HTTP instead of HTTPS: development only (`--insecure-http`).",
    ),
    Setting(
        "k8s_audit.max_request_bytes",
        12 * 1024 * 1024,
        int,
        "Largest request body; a larger one gets 413 without being read (the API server's "
        "batches are at most `--audit-webhook-truncate-max-batch-size`, 10 MiB, when it truncates).",
    ),
    Setting(
        "k8s_audit.cluster",
        "",
        str,
        "Cluster name stored in every envelope and used as the Kafka key (empty: no `cluster`, "
        "and the webhook's host name as the key).",
    ),
    Setting(
        "k8s_audit.publish_timeout_ms",
        10_000,
        int,
        "How long a request waits for Kafka to acknowledge its events before it gets 503 (stay "
        "well under the API server's 30 s webhook timeout).",
    ),
    Setting(
        "k8s_audit.retry_after",
        5,
        int,
        "Seconds in the `Retry-After` header of 503 and 429 answers (the API server retries a "
        "503 only when it carries one).",
    ),
    Setting(
        "k8s_audit.max_inflight",
        16,
        int,
        "Requests handled at once; more get 429 with `Retry-After`, which the API server retries.",
    ),
    Setting(
        "k8s_audit.metrics_port",
        0,
        int,
        "Port of the Prometheus `/metrics` endpoint of the webhook (0: off).",
    ),
    # -- end sensor.k8s_audit
    # -- sensor.cloud_meta (cloud and identity metadata publisher) ---------------------------
    Setting(
        "cloud_meta.imds",
        False,
        bool,
        "Node mode: publish this node's EC2 instance identity (IMDSv2) to `meta.instances.v1`.",
    ),
    Setting(
        "cloud_meta.node_name",
        "",
        str,
        "Key of the node's record: the node name the syscall sensor puts in `host`. "
        "Default: `syscall.host`, else the host name; in Kubernetes pass `spec.nodeName`.",
    ),
    Setting(
        "cloud_meta.imds_endpoint",
        "",
        str,
        "IMDS base URL. Default: `http://169.254.169.254` (or `http://[fd00:ec2::254]` with "
        "`cloud_meta.imds_ipv6`).",
    ),
    Setting(
        "cloud_meta.imds_ipv6",
        False,
        bool,
        "Use the IPv6 IMDS endpoint (Nitro instances with the IPv6 endpoint enabled).",
    ),
    Setting("cloud_meta.imds_timeout_seconds", 2, int, "Timeout of one IMDS request."),
    Setting(
        "cloud_meta.imds_refresh_seconds",
        300,
        int,
        "Seconds between two reads of the instance identity and tags (republished only on change).",
    ),
    Setting(
        "cloud_meta.accounts",
        False,
        bool,
        "Publish the accounts inventory (Organizations and/or `cloud_meta.accounts_file`) to `meta.accounts.v1`.",
    ),
    Setting(
        "cloud_meta.organizations",
        True,
        bool,
        "With `cloud_meta.accounts`: list the organisation's accounts and their tags "
        "(run with credentials of the management or a delegated administrator account).",
    ),
    Setting(
        "cloud_meta.accounts_file",
        "",
        str,
        "YAML inventory of accounts (id → name, environment, criticality, owner, tags); "
        "its fields override Organizations'.",
    ),
    Setting(
        "cloud_meta.identities",
        False,
        bool,
        "Publish IAM users and roles with their owner tags to `meta.identities.v1`.",
    ),
    Setting(
        "cloud_meta.assume_roles",
        "",
        str,
        "Comma-separated role ARNs to assume, one per account whose IAM users and roles "
        "are published. Empty: the account of the current credentials.",
    ),
    Setting(
        "cloud_meta.refresh_seconds",
        900,
        int,
        "Seconds between two listings of accounts and identities (changes and deletions "
        "are published after each).",
    ),
    Setting(
        "cloud_meta.tags_environment",
        "environment,env",
        str,
        "Tag keys holding an account's environment, first present wins (case-insensitive).",
    ),
    Setting(
        "cloud_meta.tags_criticality",
        "criticality",
        str,
        "Tag keys holding an account's criticality.",
    ),
    Setting(
        "cloud_meta.tags_owner",
        "owner",
        str,
        "Tag keys holding the owner of an account, user or role.",
    ),
    Setting("cloud_meta.tags_team", "team", str, "Tag keys holding the team of a user or role."),
    Setting(
        "cloud_meta.region",
        "",
        str,
        "AWS region of the API calls (default: the standard chain, else us-east-1).",
    ),
    Setting(
        "cloud_meta.endpoint_url",
        "",
        str,
        "Endpoint override of the Organizations, IAM and STS APIs (a VPC endpoint, moto).",
    ),
    Setting(
        "cloud_meta.publisher_id",
        "cloud-meta",
        str,
        "Name this publisher puts in its records; it deletes only records carrying it. "
        "Give each publisher of the same table its own.",
    ),
    Setting(
        "cloud_meta.metrics_port", 0, int, "Port of the Prometheus `/metrics` endpoint (0: off)."
    ),
    # -- end sensor.cloud_meta
    # -- sensor.k8s_meta (Kubernetes metadata publisher) ------------------------------------
    Setting(
        "k8s_meta.kubeconfig",
        "",
        str,
        "kubeconfig file to use; empty: the in-cluster service account when in a pod, else $KUBECONFIG or ~/.kube/config.",
    ),
    Setting("k8s_meta.context", "", str, "kubeconfig context; empty: its current-context."),
    Setting("k8s_meta.cluster", "", str, "Cluster name written in every record (`cluster`)."),
    Setting(
        "k8s_meta.publish_containers",
        True,
        bool,
        "Also publish each pod's containers to `meta.containers.v1` (key: container id); turn off where the container runtime publisher runs on every node.",
    ),
    Setting(
        "k8s_meta.annotation_max_bytes",
        1024,
        int,
        "Annotations with longer values are left out; 0 publishes no annotations.",
    ),
    Setting(
        "k8s_meta.annotation_excludes",
        "kubectl.kubernetes.io/last-applied-configuration",
        str,
        "Comma-separated annotation keys never published.",
    ),
    Setting("k8s_meta.page_size", 500, int, "Objects per list page (limit/continue)."),
    Setting(
        "k8s_meta.watch_timeout_seconds",
        300,
        int,
        "Each watch asks the server to end it after between this and twice this many seconds (then it resumes from its resourceVersion).",
    ),
    Setting(
        "k8s_meta.backoff_initial_ms",
        500,
        int,
        "First retry delay after an API error (doubles, with jitter).",
    ),
    Setting("k8s_meta.backoff_max_ms", 30000, int, "Longest retry delay after API errors."),
    Setting(
        "k8s_meta.owner_sync_timeout_seconds",
        30,
        int,
        "At start, how long pods wait for the ReplicaSet and Job lists (so their first records name the Deployment/CronJob).",
    ),
    Setting(
        "k8s_meta.metrics_port",
        0,
        int,
        "Port of the publisher's Prometheus `/metrics` endpoint (0: off).",
    ),
    # -- end sensor.k8s_meta
    # -- sensor.runtime_meta (container runtime metadata publisher) -------------------------
    Setting(
        "runtime_meta.runtime",
        "auto",
        str,
        "docker, containerd, cri-o, or auto: the first runtime that answers on its default socket (CRI-O, containerd, then Docker).",
    ),
    Setting("runtime_meta.socket", "", str, "The runtime's unix socket; empty: its default path."),
    Setting(
        "runtime_meta.node",
        "",
        str,
        "Node name written in every record (`node`); empty: $NODE_NAME, else the host name.",
    ),
    Setting(
        "runtime_meta.poll_seconds",
        2,
        int,
        "With a CRI runtime that has no event stream (containerd before 1.7): how often the container list is compared.",
    ),
    Setting(
        "runtime_meta.resync_seconds",
        300,
        int,
        "Every so often every container is inspected again and the records compared (0: only at start and after a broken stream).",
    ),
    Setting("runtime_meta.request_timeout_seconds", 10, int, "Time limit of one runtime API call."),
    Setting(
        "runtime_meta.backoff_initial_ms",
        500,
        int,
        "First retry delay after a runtime error (doubles, with jitter).",
    ),
    Setting("runtime_meta.backoff_max_ms", 30000, int, "Longest retry delay after runtime errors."),
    Setting(
        "runtime_meta.metrics_port",
        0,
        int,
        "Port of the publisher's Prometheus `/metrics` endpoint (0: off).",
    ),
    # -- end sensor.runtime_meta
)

_BY_KEY = {s.key: s for s in SETTINGS}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def section(prefix: str) -> tuple[Setting, ...]:
    """The settings whose keys start with ``prefix`` (e.g. ``"k8s_meta."``), in order."""
    return tuple(s for s in SETTINGS if s.key.startswith(prefix))


def _convert(setting: Setting, value: Any, origin: str) -> Any:
    if setting.kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{origin}: {setting.key} must be true or false, not {value!r}")
    if setting.kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{origin}: {setting.key} must be an integer")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{origin}: {setting.key} must be an integer, not {value!r}"
            ) from None
    if not isinstance(value, (str, int, float)):
        raise ConfigError(f"{origin}: {setting.key} must be a string")
    return str(value)


def resolve(
    prefix: str,
    cfg: Config | None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Every setting whose key starts with ``prefix`` (``"k8s_meta."``), converted to its
    kind, for a command that resolves its own group: the command line (``overrides``, None
    meaning not given), else its ``FALCONET_*`` variable, else ``cfg`` (the file), else the
    default."""
    env = os.environ if env is None else env
    overrides = overrides or {}
    values: dict[str, Any] = {}
    for s in SETTINGS:
        if not s.key.startswith(prefix):
            continue
        given = overrides.get(s.key)
        if given is not None:
            values[s.key] = _convert(s, given, "command line")
        elif s.env in env:
            values[s.key] = _convert(s, env[s.env], s.env)
        elif cfg is not None and s.key in cfg.values:
            values[s.key] = _convert(s, cfg.values[s.key], "configuration")
        else:
            values[s.key] = s.default
    return values


def in_range(key: str, value: int, low: int, high: int) -> int:
    """``value`` if ``low <= value <= high``; a ConfigError naming ``key`` otherwise."""
    if not low <= value <= high:
        raise ConfigError(f"{key} must be between {low} and {high}, not {value}")
    return value


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


@dataclass(frozen=True, slots=True)
class Config:
    """Resolved settings, by dotted key; ``sinks`` is the raw ``sinks:`` list of the file
    (each sink a mapping, resolved by :func:`falconet.sinks.settings.load_sinks`)."""

    values: Mapping[str, Any]
    sinks: tuple[Mapping[str, Any], ...] = ()

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def min_priority(self) -> Priority:
        try:
            return Priority.parse(self.values["rules.min_priority"])
        except ValueError as exc:
            raise ConfigError(f"rules.min_priority: {exc}") from None

    def secret(self, key: str) -> str:
        """A secret setting: its environment value, else the content of ``<key>_file``."""
        value = str(self.values.get(key) or "")
        if value:
            return value
        path = str(self.values.get(key + "_file") or "")
        if not path:
            return ""
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {key}_file {path}: {exc.strerror or exc}") from None

    def public_values(self) -> dict[str, Any]:
        """Every setting, with secrets masked (for logs and `falconet config`)."""
        return {k: ("***" if _BY_KEY[k].secret and v else v) for k, v in self.values.items()}

    def engine_config(self) -> Any:
        """The rules engine's settings (an ``EngineConfig``) from ``rules.*``/``output.*``."""
        from falconet.rules.engine import EngineConfig

        return EngineConfig(
            rule_matching=self.values["rules.matching"],
            min_priority=self.min_priority,
            suggested_output=self.values["output.suggested_fields"],
            time_iso8601=self.values["output.time_iso8601"],
            sources=self.sources,
        )

    @property
    def sources(self) -> tuple[str, ...] | None:
        text = str(self.values["rules.sources"]).strip()
        if not text:
            return None
        return tuple(s.strip() for s in text.split(",") if s.strip())

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Config:
        env = os.environ if env is None else env
        values = {s.key: s.default for s in SETTINGS}
        sinks: list[Any] = []
        path = path or env.get("FALCONET_CONFIG") or None
        if path:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"cannot read config file {path}: {exc.strerror or exc}"
                ) from None
            try:
                data = yaml.safe_load(text) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
            if not isinstance(data, Mapping):
                raise ConfigError(f"config file {path} must hold a mapping of settings")
            data = dict(data)
            sinks = data.pop("sinks", None) or []
            if not isinstance(sinks, list):
                raise ConfigError(f"config file {path}: `sinks:` must be a list of sinks")
            for key, value in _flatten(data).items():
                setting = _BY_KEY.get(key)
                if setting is not None and setting.secret:
                    raise ConfigError(
                        f"config file {path}: '{key}' is a secret: set {setting.env} or "
                        f"'{key}_file' instead of writing it in the file"
                    )
                if setting is None:
                    raise ConfigError(
                        f"config file {path}: unknown setting '{key}' "
                        f"(known: {', '.join(sorted(_BY_KEY))})"
                    )
                values[key] = _convert(setting, value, str(path))
        for setting in SETTINGS:
            if setting.env in env:
                values[setting.key] = _convert(setting, env[setting.env], setting.env)
        for key, value in (overrides or {}).items():
            if value is not None:
                values[key] = _convert(_BY_KEY[key], value, "command line")
        cfg = cls(values, tuple(sinks))
        _ = cfg.min_priority  # validate now, not at first use
        if values["rules.matching"] not in ("first", "all"):
            raise ConfigError("rules.matching must be 'first' or 'all'")
        return cfg

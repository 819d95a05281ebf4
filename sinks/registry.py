"""The destinations falconet knows, by the ``type:`` of a sink, imported on first use."""

from __future__ import annotations

import importlib

from falconet.errors import ConfigError

from .base import BatchingSink

#: type -> "module:class" (one module per destination)
DESTINATIONS: dict[str, str] = {
    "sentinel": "falconet.sinks.sentinel:SentinelSink",
    "splunk": "falconet.sinks.splunk:SplunkSink",
    "elasticsearch": "falconet.sinks.elastic:ElasticSink",
    "opensearch": "falconet.sinks.elastic:OpenSearchSink",
    "syslog": "falconet.sinks.syslog:SyslogSink",
    "webhook": "falconet.sinks.webhook:WebhookSink",
    "kafka": "falconet.sinks.kafka:KafkaSink",
    "file": "falconet.sinks.file:FileSink",
}


def destination(kind: str) -> type[BatchingSink]:
    """The class of sink type ``kind``; ConfigError naming the known types otherwise."""
    target = DESTINATIONS.get(kind)
    if target is None:
        raise ConfigError(f"unknown sink type {kind!r}; known: {', '.join(sorted(DESTINATIONS))}")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)

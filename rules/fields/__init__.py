"""Per-source field registries.

Each source module exposes ``FIELDS`` (its own fields) and the registry of a source is
the generic ``evt.*`` fields plus the source's fields (plus ``json.*``/``jevt.*`` for the
plugin-style sources, as Falco's json extractor plugin is compatible with all of them).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from falconet.fields import FieldRegistry

from . import cloudtrail, common, gcpaudit, github, jsonfields, k8saudit, okta, syscall
from . import falconet as falconet_fields

#: Source name -> (module providing FIELDS, plugin name whose `evt.plugininfo` applies)
_SOURCES = {
    "syscall": syscall,
    "aws_cloudtrail": cloudtrail,
    "k8s_audit": k8saudit,
    "okta": okta,
    "github": github,
    "gcp_auditlog": gcpaudit,
}

#: The sources falconet can load rules for (the others give "Unknown source" warnings).
KNOWN_SOURCES: tuple[str, ...] = tuple(_SOURCES)

#: Sources falconet has event decoders for (rules for the others load and validate).
EVALUATED_SOURCES: tuple[str, ...] = ("syscall", "aws_cloudtrail", "k8s_audit")


@cache
def registry_for(source: str) -> FieldRegistry | None:
    """The field registry of ``source``, or ``None`` when the source is unknown."""
    module = _SOURCES.get(source)
    if module is None:
        return None
    reg = FieldRegistry(source, common.GENERIC_FIELDS)
    reg.add(*module.FIELDS)
    reg.add(*falconet_fields.fields_for(source))  # falconet.* context fields (enrichment)
    if source != "syscall":
        reg.add(*common.plugin_event_fields(module.PLUGIN, module.plugin_info))
        reg.add(*jsonfields.FIELDS)
    return reg


def plugin_versions(sources: Iterable[str] | None = None) -> dict[str, str]:
    """The Falco plugins whose fields falconet provides, with the version it matches.

    Rule files declare ``required_plugin_versions``; a requirement is met when the
    plugin is listed here with a compatible version (same major, not older). With
    ``sources``, only the plugins of those sources count as loaded (the json plugin
    always does), as in a Falco configuration that loads only some plugins.
    """
    enabled = set(_SOURCES) if sources is None else set(sources)
    versions = {"json": jsonfields.PLUGIN_VERSION}
    if "syscall" in enabled:
        versions["container"] = syscall.CONTAINER_PLUGIN_VERSION
    for source, module in _SOURCES.items():
        if source != "syscall" and source in enabled:
            versions.update(module.PLUGIN_VERSIONS)
    return versions

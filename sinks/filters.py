"""Per-sink filters: policy routes, minimum priority, sources, tags (any of), rule names
(shell globs).

A detection a policy routed (non-empty ``routes``, docs/policy.md) goes only to the sinks
it names; routes narrow delivery, the sink's own filters still apply. A filter that is
empty lets everything through; a record must pass every filter that is set. Filtered
records count as done at once (their offsets may be committed).
"""

from __future__ import annotations

from .base import SinkRecord
from .settings import Common

__all__ = ["accepts"]


def accepts(common: Common, record: SinkRecord, sink_name: str = "") -> bool:
    """True when ``record`` is for the sink ``sink_name``."""
    d = record.detection
    if d.routes and sink_name not in d.routes:
        return False
    if d.priority > common.min_priority:  # a larger number is less severe
        return False
    if common.sources and d.source not in common.sources:
        return False
    if common.tags and common.tags.isdisjoint(d.tags):
        return False
    return not common.rules or common.rule_matches(d.rule)

"""The compiled form of context-aware policies, and how each part matches.

Everything here is built once, when a policy file loads (:mod:`.policy_loader`), and only
read afterwards; matching is plain attribute and dict access, so applying policies costs
little next to evaluating the rules. The YAML reference is ``docs/policy.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from falconet.fields import BoundField
from falconet.priority import Priority

from .operators import PathPrefixes, glob_to_regex
from .result import Position

_GLOB_CHARS = frozenset("*?[")


def is_glob(text: str) -> bool:
    return any(c in _GLOB_CHARS for c in text)


@dataclass(frozen=True, slots=True)
class Names:
    """Names and globs (``lab``, ``lab-*``): matches a value equal to a name or matching a
    glob (fnmatch, ``*`` and ``?`` also match ``/``; case-sensitive)."""

    exact: frozenset[str]
    globs: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def of(cls, items: list[str]) -> Names:
        return cls(
            frozenset(i for i in items if not is_glob(i)),
            tuple(glob_to_regex(i) for i in items if is_glob(i)),
        )

    def match(self, value: str | None) -> bool:
        if value is None:
            return False
        if value in self.exact:
            return True
        return any(g.fullmatch(value) is not None for g in self.globs)


# -- label selectors (Kubernetes semantics) ---------------------------------------------------
IN, NOT_IN, EXISTS, DOES_NOT_EXIST = "In", "NotIn", "Exists", "DoesNotExist"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One requirement of a label selector: ``key`` with ``In``/``NotIn``/``Exists``/
    ``DoesNotExist`` (``key=v`` is ``In [v]``, ``key!=v`` is ``NotIn [v]``)."""

    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def match(self, labels: Mapping[str, Any]) -> bool:
        present = self.key in labels
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        value = labels.get(self.key)
        if self.operator == IN:
            return present and _label_text(value) in self.values
        # NotIn: as in Kubernetes, a missing label satisfies it
        return not present or _label_text(value) not in self.values


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """Every requirement must hold (an empty selector matches everything)."""

    requirements: tuple[Requirement, ...]

    def match(self, labels: Mapping[str, Any] | None) -> bool:
        lab: Mapping[str, Any] = labels if isinstance(labels, Mapping) else {}
        return all(r.match(lab) for r in self.requirements)


# -- priorities -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PriorityMatch:
    """The priorities a scope selects (a set of :class:`Priority`)."""

    allowed: frozenset[Priority]

    def match(self, p: Priority) -> bool:
        return p in self.allowed


@dataclass(frozen=True, slots=True)
class PriorityChange:
    """``raise N`` (more severe), ``lower N`` (less severe) or ``set P``; clamped to the
    range emergency … debug."""

    kind: str  # "raise", "lower", "set"
    amount: int = 0
    value: Priority | None = None

    def apply(self, p: Priority) -> Priority:
        if self.kind == "set":
            assert self.value is not None
            return self.value
        step = -self.amount if self.kind == "raise" else self.amount
        return Priority(min(max(int(p) + step, int(Priority.EMERGENCY)), int(Priority.DEBUG)))


# -- exceptions -----------------------------------------------------------------------------
COMPS = ("=", "!=", "in", "startswith", "endswith", "contains", "glob", "pmatch")


@dataclass(frozen=True, slots=True)
class Comparison:
    """One field compared to one value of an exception tuple."""

    field_name: str
    comp: str
    value: Any  # str; frozenset[str] for ``in``; compiled pattern for glob; PathPrefixes
    bound: Mapping[str, BoundField | None] = field(default_factory=dict)  # per source

    def match(self, ev: Any) -> bool:
        bound = self.bound.get(ev.source)
        if bound is None:
            return False
        try:
            raw = bound.extract(ev)
        except Exception:  # malformed event data: the exception does not apply
            return False
        if raw is None:
            return False
        values = raw if isinstance(raw, list | tuple | set | frozenset) else (raw,)
        return any(self._one(_label_text(v)) for v in values if v is not None)

    def _one(self, text: str) -> bool:
        c, v = self.comp, self.value
        if c == "=":
            return text == v
        if c == "!=":
            return text != v
        if c == "in":
            return text in v
        if c == "startswith":
            return text.startswith(v)
        if c == "endswith":
            return text.endswith(v)
        if c == "contains":
            return v in text
        if c == "glob":
            return v.fullmatch(text) is not None
        if c == "pmatch":
            assert isinstance(v, PathPrefixes)
            return v.match(text)
        return False  # pragma: no cover - the loader accepts only COMPS


@dataclass(frozen=True, slots=True)
class ExceptionSpec:
    """Like a Falco rule exception: ``fields`` compared with ``comps`` to each tuple of
    ``values``; a detection whose event matches every comparison of one tuple is dropped."""

    name: str
    fields: tuple[str, ...]
    tuples: tuple[tuple[Comparison, ...], ...]

    def match(self, ev: Any) -> bool:
        return any(all(c.match(ev) for c in tup) for tup in self.tuples)


# -- scopes and policies --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Scope:
    """What a policy applies to; every criterion given must hold (``None``: not given).

    Within one criterion a list means any of its items.
    """

    cluster: Names | None = None
    namespace: Names | None = None
    pod: Names | None = None
    pod_labels: LabelSelector | None = None
    namespace_labels: LabelSelector | None = None
    node: Names | None = None
    node_labels: LabelSelector | None = None
    account: Names | None = None
    account_environment: Names | None = None
    account_criticality: Names | None = None
    environment: Names | None = None
    owner: Names | None = None
    source: Names | None = None
    rules: Names | None = None
    tags: frozenset[str] | None = None
    priority: PriorityMatch | None = None


@dataclass(frozen=True, slots=True)
class RuleFilter:
    """``disable:`` — rule names and globs, and ``tag:<tag>`` items."""

    names: Names
    tags: frozenset[str]

    def match(self, rule: str, tags: tuple[str, ...]) -> bool:
        return self.names.match(rule) or any(t in self.tags for t in tags)


@dataclass(frozen=True, slots=True)
class Policy:
    """One ``- policy:`` item."""

    name: str
    position: Position
    scope: Scope = field(default_factory=Scope)
    disable: RuleFilter | None = None
    priority: PriorityChange | None = None
    exceptions: tuple[ExceptionSpec, ...] = ()
    route: tuple[str, ...] = ()
    set_environment: str | None = None
    set_owner: str | None = None
    enabled: bool = True


#: Default label/tag keys (see ``policy_settings`` in docs/policy.md).
DEFAULT_OWNER_KEYS = ("owner", "team")
DEFAULT_ENVIRONMENT_KEYS = ("environment", "env")
DEFAULT_INTERNET_FACING_KEYS = ("falconet.io/internet-facing", "internet-facing")


@dataclass(frozen=True, slots=True)
class Settings:
    """``- policy_settings:``: which label and tag keys name an owner, an environment, and
    an internet-facing workload."""

    owner_keys: tuple[str, ...] = DEFAULT_OWNER_KEYS
    environment_keys: tuple[str, ...] = DEFAULT_ENVIRONMENT_KEYS
    internet_facing_keys: tuple[str, ...] = DEFAULT_INTERNET_FACING_KEYS

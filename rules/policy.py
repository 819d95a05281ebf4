"""Context-aware policy: scopes that disable rules, change priorities, add exceptions and
route detections, and the owner, environment and ``falconet.score`` of every detection.

Policies are YAML files (``docs/policy.md``) that travel with the rules: in a rule set on
``rules.v1`` (``falconet rules push rules/ policy.yaml``), loaded by :func:`load_policy`
next to the rules and swapped in with them; or ``falconet run --policy FILE`` offline.

How a detection goes through the policies (:meth:`PolicySet.apply`):

1. Its context is read from the event (:func:`.policy_context.context_of`): cluster,
   namespace, pod and its labels, namespace labels, node, account, and the owner and
   environment the metadata names.
2. Every enabled policy whose scope matches is applied, **in file order** (files in the
   order of the rule set). A scope sees the detection as earlier policies left it (its
   priority, environment and owner).
3. ``disable`` naming the rule, or an ``exceptions`` entry matching the event, **drops**
   the detection at once: nothing a later policy does can bring it back (disable wins).
   Each drop is counted in ``falconet_policy_suppressed_total{policy,rule,reason}`` and
   in :attr:`PolicySet.suppressed`; nothing is dropped silently.
4. Priority changes compose in order (``raise 1`` then ``lower 2`` is ``lower 1``), each
   clamped to emergency … debug; ``set`` replaces. ``route`` lists add up (in order, no
   duplicates); ``set.environment`` / ``set.owner`` replace (the last matching wins).
5. The score is computed from the final priority and environment.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from falconet.detection import Detection
from falconet.event import Event
from falconet.priority import Priority

from . import result as R
from .engine import Engine, EvaluationError, expand_rule_files
from .policy_context import Context, context_of, score
from .policy_loader import LOAD_ERR_POLICY, LOAD_POLICY_UNKNOWN_RULE, is_policy_text, read_policies
from .policy_model import Policy, Scope, Settings

__all__ = [
    "LOAD_ERR_POLICY",
    "LOAD_POLICY_UNKNOWN_RULE",
    "PolicedEngine",
    "PolicySet",
    "is_policy_text",
    "load_policy",
    "load_policy_paths",
    "split_policy_files",
]

log = logging.getLogger("falconet.policy")

DISABLED = "disabled"
EXCEPTION = "exception"


def _metric() -> Callable[[str, str, str], None]:
    """``falconet_policy_suppressed_total`` when prometheus_client is there (it is a
    dependency of the worker); a no-op otherwise."""
    try:
        from prometheus_client import Counter as PromCounter
    except ImportError:  # pragma: no cover
        return lambda policy, rule, reason: None
    counter = PromCounter(
        "falconet_policy_suppressed_total",
        "Detections dropped by a policy (disable or exception)",
        ["policy", "rule", "reason"],
    )
    return lambda policy, rule, reason: counter.labels(policy, rule, reason).inc()


_count_suppressed = _metric()


def _scope_matches(s: Scope, ctx: Context, d: Detection, prio: Priority, env: str,
                   owner: str) -> bool:  # fmt: skip
    """Every criterion given must hold; see docs/policy.md for each."""
    if s.source is not None and not s.source.match(d.source):
        return False
    if s.rules is not None and not s.rules.match(d.rule):
        return False
    if s.tags is not None and not any(t in s.tags for t in d.tags):
        return False
    if s.priority is not None and not s.priority.match(prio):
        return False
    if s.cluster is not None and not s.cluster.match(ctx.cluster):
        return False
    if s.namespace is not None and not s.namespace.match(ctx.namespace):
        return False
    if s.pod is not None and not s.pod.match(ctx.pod):
        return False
    if s.pod_labels is not None and not s.pod_labels.match(ctx.pod_labels):
        return False
    if s.namespace_labels is not None and not s.namespace_labels.match(ctx.namespace_labels):
        return False
    if s.node is not None and not s.node.match(ctx.node):
        return False
    if s.node_labels is not None and not s.node_labels.match(ctx.node_labels):
        return False
    if s.account is not None and not s.account.match(ctx.account):
        return False
    if s.account_environment is not None and not s.account_environment.match(
        ctx.account_environment
    ):
        return False
    if s.account_criticality is not None and not s.account_criticality.match(
        ctx.account_criticality
    ):
        return False
    if s.environment is not None and not s.environment.match(env or None):
        return False
    return s.owner is None or s.owner.match(owner or None)


def _retitle(output: str, old: Priority, new: Priority) -> str:
    """The alert text with its priority word changed (``<time>: Warning …``)."""
    stamp, sep, rest = output.partition(" ")
    word = old.title + " "
    if sep and stamp.endswith(":") and rest.startswith(word):
        return f"{stamp} {new.title} {rest[len(word) :]}"
    return output


@dataclass(slots=True)
class PolicySet:
    """The policies of one rule set, in order, and their settings."""

    policies: tuple[Policy, ...] = ()
    settings: Settings = field(default_factory=Settings)
    #: Detections dropped so far: (policy, rule, reason) → count.
    suppressed: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __len__(self) -> int:
        return len(self.policies)

    def apply(self, ev: Event, detections: Sequence[Detection]) -> list[Detection]:
        """The detections of ``ev`` after the policies: some dropped, the others with their
        priority, routes, owner, environment and score."""
        if not detections:
            return []
        try:
            ctx = context_of(ev, self.settings)
            out: list[Detection] = []
            for d in detections:
                kept = self._one(ev, ctx, d)
                if kept is not None:
                    out.append(kept)
            return out
        except Exception:  # a policy bug must never lose detections nor stop the stream
            log.exception("applying the policies failed on event %s; detections kept as is", ev.id)
            return list(detections)

    def _one(self, ev: Event, ctx: Context, d: Detection) -> Detection | None:
        prio, env, owner = d.priority, ctx.environment, ctx.owner
        routes: list[str] = []
        for p in self.policies:
            if not p.enabled or not _scope_matches(p.scope, ctx, d, prio, env, owner):
                continue
            if p.disable is not None and p.disable.match(d.rule, d.tags):
                self._drop(p, d, DISABLED)
                return None
            for ex in p.exceptions:
                if ex.match(ev):
                    self._drop(p, d, EXCEPTION, ex.name)
                    return None
            if p.priority is not None:
                prio = p.priority.apply(prio)
            for r in p.route:
                if r not in routes:
                    routes.append(r)
            if p.set_environment is not None:
                env = p.set_environment
            if p.set_owner is not None:
                owner = p.set_owner
        output = d.output if prio == d.priority else _retitle(d.output, d.priority, prio)
        return replace(d, priority=prio, output=output, owner=owner, environment=env,
                       score=score(prio, env, ctx), routes=tuple(routes))  # fmt: skip

    def _drop(self, p: Policy, d: Detection, reason: str, exception: str = "") -> None:
        with self._lock:
            self.suppressed[(p.name, d.rule, reason)] += 1
        _count_suppressed(p.name, d.rule, reason)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("detection suppressed policy=%s rule=%s reason=%s%s id=%s", p.name, d.rule,
                      reason, f" exception={exception}" if exception else "", d.id)  # fmt: skip


def load_policy(files: Sequence[tuple[str, str]], engine: Engine | None = None,
                res: R.LoadResult | None = None) -> tuple[PolicySet, R.LoadResult]:  # fmt: skip
    """Read policy files ``(name, text)``; with ``engine``, policies naming rules or tags
    that it does not have get warnings. The set is usable only when ``res.ok``."""
    res = res if res is not None else R.LoadResult()
    names: Iterable[str] | None = None
    tags: Iterable[str] | None = None
    if engine is not None:
        names = [r.name for r in engine.rules]
        tags = {t for r in engine.rules for t in r.tags}
    loaded = read_policies(files, res, names, tags)
    return PolicySet(tuple(loaded.policies), loaded.settings), res


def load_policy_paths(paths: Sequence[str | Path], engine: Engine | None = None,
                      ) -> tuple[PolicySet, R.LoadResult]:  # fmt: skip
    """:func:`load_policy` for files and directories (their ``*.yaml``/``*.yml`` in name
    order), as ``falconet run --policy`` takes them."""
    res = R.LoadResult()
    files: list[tuple[str, str]] = []
    for path in expand_rule_files(paths):
        try:
            files.append((str(path), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            res.add(R.LoadMessage(R.ERROR, R.LOAD_ERR_FILE_READ,
                                  f"cannot read policy file: {exc}", R.Position(str(path))))  # fmt: skip
    if not res.ok:
        return PolicySet(), res
    return load_policy(files, engine, res)


def split_policy_files(
    files: Sequence[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Rule files and policy files of a rule set, each in their order."""
    rules: list[tuple[str, str]] = []
    policies: list[tuple[str, str]] = []
    for name, text in files:
        (policies if is_policy_text(text) else rules).append((name, text))
    return rules, policies


class PolicedEngine:
    """An engine whose detections go through a policy set (``falconet run --policy``)."""

    def __init__(self, engine: Engine, policy: PolicySet) -> None:
        self.engine = engine
        self.policy = policy

    def process(self, ev: Event) -> list[Detection]:
        try:
            found = self.engine.process(ev)
        except EvaluationError as exc:
            exc.detections = self.policy.apply(ev, exc.detections)
            raise
        return self.policy.apply(ev, found) if found else found

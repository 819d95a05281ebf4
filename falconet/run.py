"""The offline loop of ``falconet run``: read recorded events, evaluate, emit detections.

It is the same decode → evaluate path a stream worker runs, without Kafka, so rules can
be tested and benchmarked alone.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from falconet.rules.engine import Engine, EvaluationError

from .detection import Detection
from .inputs import DEFAULT_MAX_RECORD_BYTES, Problem, RecordDecoder, read_events


@dataclass(slots=True)
class RunStats:
    """Counters of one run, printed as the one-line summary."""

    events: int = 0
    detections: int = 0
    input_errors: int = 0
    eval_errors: int = 0
    per_rule: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        rules = ", ".join(f"{name}: {n}" for name, n in self.per_rule.most_common())
        return (
            f"{self.events} events, {self.detections} detections"
            + (f" ({rules})" if rules else "")
            + f", {self.input_errors} input errors, {self.eval_errors} evaluation errors"
            + f" in {self.seconds:.2f}s"
        )


def run_files(
    engine: Engine,
    paths: Iterable[str],
    emit: Callable[[Detection], None],
    report: Callable[[str], None],
    decoder: RecordDecoder | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> RunStats:
    """Evaluate every event of ``paths``; ``report`` receives one line per problem."""
    stats = RunStats()
    decoder = decoder or RecordDecoder()
    numbers: dict[str, int] = {}
    per_rule = stats.per_rule
    process = engine.process
    events = detections = eval_errors = 0
    start = time.perf_counter()

    def problem(p: Problem) -> None:
        stats.input_errors += 1
        report(f"skipped record: {p}")

    for path in paths:
        for ev in read_events(path, decoder, problem, max_record_bytes):
            events += 1
            if not ev.num:  # Falco numbers events from 1 per source stream
                ev.num = numbers[ev.source] = numbers.get(ev.source, 0) + 1
            try:
                found = process(ev)
            except EvaluationError as exc:
                eval_errors += 1
                report(f"evaluation error on event {ev.id} ({ev.source}/{ev.type}): {exc}")
                found = exc.detections
            for d in found:
                detections += 1
                per_rule[d.rule] += 1
                emit(d)
    stats.events, stats.detections, stats.eval_errors = events, detections, eval_errors
    stats.seconds = time.perf_counter() - start
    return stats

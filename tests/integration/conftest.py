"""The Kafka broker of the integration tests: one per session, from :func:`falconet.broker.acquire`.

``FALCONET_KAFKA_BOOTSTRAP`` points the tests at an existing cluster; otherwise a broker
is started (Docker with testcontainers, else the local jars with Java 17+) and stopped at
the end of the session. A missing prerequisite (Java, Maven, Maven Central) FAILS the
tests that need Kafka with the launcher's message — CI must not skip them silently —
unless ``FALCONET_SKIP_KAFKA=1``, which turns that failure into a skip with the same reason.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from falconet.broker import (
    BrokerError,
    BrokerInfo,
    MissingPrerequisite,
    acquire,
    check_prerequisites,
    resolve_jars,
)


def _progress(config: pytest.Config):
    """Progress lines of the launcher, shown live (a first run downloads for a minute)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def emit(message: str) -> None:
        line = f"[kafka] {message}"
        if reporter is None:  # pragma: no cover - pytest without its terminal
            print(line, file=sys.__stderr__, flush=True)
            return
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line(line)

    return emit


@pytest.fixture(scope="session")
def kafka(request: pytest.FixtureRequest) -> Iterator[BrokerInfo]:
    """The session's Kafka broker (a :class:`falconet.broker.BrokerInfo`)."""
    with contextlib.ExitStack() as stack:
        problem: BrokerError | None = None
        try:
            info = stack.enter_context(acquire(_progress(request.config)))
        except BrokerError as exc:  # a missing prerequisite, a dead broker, a silent cluster
            problem = exc
        if problem is not None:
            _fail_or_skip(problem)
        yield info


def _fail_or_skip(problem: BrokerError) -> NoReturn:
    if isinstance(problem, MissingPrerequisite) and os.environ.get("FALCONET_SKIP_KAFKA") == "1":
        pytest.skip(f"FALCONET_SKIP_KAFKA=1: {problem}")
    pytest.fail(str(problem), pytrace=False)


@pytest.fixture(scope="session")
def kafka_jars(request: pytest.FixtureRequest) -> Path:
    """The resolved Kafka jars, for tests of the local launcher itself (even when the
    session's broker is an external cluster); same fail/skip policy as ``kafka``."""
    problem: BrokerError | None = None
    try:
        check_prerequisites()
        return resolve_jars(_progress(request.config))
    except BrokerError as exc:
        problem = exc
    _fail_or_skip(problem)


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test (or earlier run against the same cluster) uses: ``t<hex>.``."""
    return f"t{secrets.token_hex(5)}."


@pytest.fixture()
def stack(kafka: BrokerInfo, topic_prefix: str, tmp_path: Path) -> Iterator[Any]:
    """A falconet stack on the session broker with topics of its own (harness.Stack); the
    workers it started are killed at the end."""
    from .harness import make_stack

    s = make_stack(kafka.bootstrap, topic_prefix, tmp_path)
    yield s
    for w in s.workers:
        s.stop(w, signal.SIGKILL)

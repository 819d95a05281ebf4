"""What the publisher needs from a container runtime, whatever its API.

A :class:`Source` lists the containers it runs (cheap), describes one container
(:class:`~.records.ContainerRecord`, or None once it is gone), and, where the runtime has
one, opens a stream of :class:`Change` notices. :mod:`.docker` and :mod:`.cri` implement it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from .records import ContainerRecord


@dataclass(frozen=True, slots=True)
class Change:
    """A runtime event about one container: ``upsert`` (describe it again), ``delete``
    (it was removed), or ``other`` (seen and counted, nothing to do)."""

    kind: str
    full_id: str
    action: str = ""  # the runtime's own name of the event (start, destroy, ...)


class Source(Protocol):
    runtime: str  # docker | containerd | cri-o
    path: str  # the socket

    async def __aenter__(self) -> Source: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def probe(self) -> str:
        """Check the API answers; returns the runtime's name and version for the log."""
        ...

    async def list_ids(self) -> dict[str, str]:
        """Full ids of the containers present (running or stopped) → their pod sandbox id."""
        ...

    async def describe(self, full_id: str, sandbox_id: str = "") -> ContainerRecord | None:
        """The record of one container; None when it no longer exists."""
        ...

    async def changes(self) -> AsyncIterator[Change] | None:
        """Open the runtime's event stream (None: it has none, poll instead). The stream is
        open once this returns, so nothing that happens afterwards is missed."""
        ...

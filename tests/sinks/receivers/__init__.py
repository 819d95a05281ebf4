"""Local receivers standing in for the services the sinks deliver to.

Each checks what its service checks (its docstring names the spec); they share only how an
aiohttp application is served on a free loopback port, and how a receiver runs on an event
loop of its own thread for synchronous callers (bench/sink_throughput.py, whose sink is a
subprocess).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")
R = TypeVar("R")


async def serve(
    app: web.Application, ssl_context: ssl.SSLContext | None
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on 127.0.0.1 at a free port (TLS when ``ssl_context``)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    server = site._server
    assert server is not None and server.sockets  # type: ignore[union-attr]
    return runner, server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


@contextlib.contextmanager
def in_thread(
    receiver: contextlib.AbstractAsyncContextManager[T], timeout: float = 30.0
) -> Iterator[tuple[T, Callable[[Callable[[], R]], R]]]:
    """Enter the async context manager ``receiver`` on a new event loop in a daemon thread.

    Yields what it enters as, and ``call(fn)``: runs ``fn()`` on that loop and returns its
    result, so a synchronous caller reads the receiver's state between two requests, never
    in the middle of one. The receiver is exited and the loop closed on the way out.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="receiver-loop", daemon=True)
    thread.start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    async def on_loop(fn: Callable[[], R]) -> R:
        return fn()

    def call(fn: Callable[[], R]) -> R:
        return run(on_loop(fn))

    try:
        value = run(receiver.__aenter__())
        try:
            yield value, call
        finally:
            run(receiver.__aexit__(None, None, None))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        loop.close()


def distinct(
    since: Callable[[int], Sequence[Any]], key: Callable[[Any], Hashable]
) -> Callable[[], int]:
    """A ``delivered()`` for the benchmark: distinct ``key``s among a growing list of items.

    ``since(n)`` returns the items from position ``n`` on; each call looks at the new ones
    only, so a redelivered detection (a retry) is not counted twice.
    """
    seen: set[Hashable] = set()
    done = 0

    def delivered() -> int:
        nonlocal done
        new = since(done)
        done += len(new)
        seen.update(key(item) for item in new)
        return len(seen)

    return delivered


def server_tls(tmp: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for ``127.0.0.1``/``localhost`` from a fresh ``trustme`` CA, and the
    CA's PEM written to ``tmp`` (for a sink's ``ca_file`` in another process)."""
    import trustme

    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    ca_file = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return ctx, ca_file

"""Local receivers standing in for the services the sinks deliver to.

Each checks what its service checks (its docstring names the spec); they share only how an
aiohttp application is served on a free loopback port.
"""

from __future__ import annotations

import ssl

from aiohttp import web


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

"""The scheduler's own HTTP endpoint: ``/healthz`` and ``/metrics`` (Prometheus text)."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


def make_app(registries: list[CollectorRegistry]) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics(_: web.Request) -> web.Response:
        body = b"".join(generate_latest(r) for r in [*registries, REGISTRY])
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", healthz)
    app.router.add_get("/readyz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


@contextlib.asynccontextmanager
async def serving(registries: list[CollectorRegistry], host: str, port: int) -> AsyncIterator[int]:
    """Serve while inside the block; yields the bound port (0 = don't serve, yields 0)."""
    if port < 0:
        yield 0
        return
    runner = web.AppRunner(make_app(registries), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    try:
        sock = site._server.sockets[0] if site._server and site._server.sockets else None  # type: ignore[union-attr]
        yield int(sock.getsockname()[1]) if sock else port
    finally:
        await runner.cleanup()

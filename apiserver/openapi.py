"""OpenAPI documents kubectl asks for (placeholder: an empty /openapi/v2, see kubectl-wire.md §2)."""

from __future__ import annotations

from aiohttp import web


async def _openapi_v2(request: web.Request) -> web.Response:
    return web.Response(body=b"", content_type="application/octet-stream")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi/v2", _openapi_v2)

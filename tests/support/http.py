"""A tiny aiohttp-based HTTP helper for tests that talk to a real apiserver (JSON in, JSON out)."""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass
from typing import Any, AsyncIterator

import aiohttp


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class Api:
    """``async with Api(url) as api: await api.post(path, obj)`` — raw requests, nothing hidden."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "Api":
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session is not None
        await self.session.close()

    async def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                      headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> Reply:
        assert self.session is not None
        data: bytes | io.BytesIO | None
        if body is None:
            data = None
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        else:
            data = json.dumps(body).encode()
        if data is not None and len(data) > 1 << 20:
            data = io.BytesIO(data)       # aiohttp warns about large raw bodies
        hdrs = {"Content-Type": content_type, **(headers or {})}
        async with self.session.request(method, self.base_url + path, data=data, headers=hdrs, params=params) as r:
            raw = await r.read()
            try:
                parsed: Any = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode(errors="replace")
            return Reply(r.status, parsed, dict(r.headers))

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> Reply:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any, **kw: Any) -> Reply:
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path: str, body: Any, patch_type: str = "application/merge-patch+json", **kw: Any) -> Reply:
        return await self.request("PATCH", path, body, content_type=patch_type, **kw)

    async def delete(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.request("DELETE", path, body, **kw)

    async def watch(self, path: str, params: dict[str, str] | None = None,
                    headers: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """Yield watch events (parsed JSON lines) until the server ends the stream."""
        assert self.session is not None
        q = {"watch": "true", **(params or {})}
        async with self.session.get(self.base_url + path, params=q, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=None, sock_read=60)) as r:
            assert r.status == 200, await r.text()
            async for line in r.content:
                if line.strip():
                    yield json.loads(line)


async def collect(events: AsyncIterator[dict[str, Any]], n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The first ``n`` events (fewer if the stream ends), failing after ``timeout`` seconds."""
    out: list[dict[str, Any]] = []

    async def take() -> None:
        async for ev in events:
            out.append(ev)
            if len(out) >= n:
                return
    await asyncio.wait_for(take(), timeout)
    return out


def pod(name: str, labels: dict[str, str] | None = None, node: str | None = None, **spec: Any) -> dict[str, Any]:
    """A minimal valid Pod manifest."""
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}], **spec}}
    if labels:
        body["metadata"]["labels"] = labels
    if node:
        body["spec"]["nodeName"] = node
    return body

"""HTTP/1.1 connection upgrades that aiohttp does not know (``Upgrade: SPDY/3.1``), both ends.

Server side, :func:`accept` answers an aiohttp request with ``101 Switching Protocols`` and hands back the
raw connection as a :class:`RawConnection` (the bytes that follow are the new protocol's). aiohttp only
switches its parser for WebSocket and TCP upgrades, so this installs a byte-passing payload parser on the
request's protocol before the 101 goes out (the client sends nothing more until it has read the 101).
Client side, :func:`dial` sends a request with an ``Upgrade`` header over a plain TCP connection and returns
the status, headers and body of a refusal, or the raw connection after a 101.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

READ_LIMIT = 1 << 20


class _Feed:
    """The payload parser aiohttp's server protocol feeds once the connection is ours."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(b"")


class RawConnection:
    """The bytes of an upgraded connection: :meth:`read` (``b""`` at EOF), :meth:`write`, :meth:`close`."""

    def __init__(self, read: Any, write: Any, close: Any) -> None:
        self._read, self._write, self._close = read, write, close

    async def read(self) -> bytes:
        return bytes(await self._read())

    async def write(self, data: bytes) -> None:
        await self._write(data)

    def close(self) -> None:
        self._close()


async def accept(request: web.Request, headers: Mapping[str, str]) -> tuple[web.StreamResponse, RawConnection]:
    """Switch ``request``'s connection to the protocol named in ``headers`` (101; ``Connection: Upgrade`` is
    added). The handler must keep running while the connection is used and return the response after."""
    protocol, transport = request.protocol, request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("connection lost before the upgrade")
    feed = _Feed()
    protocol.set_parser(feed)            # type: ignore[arg-type]  # any object with feed_data/feed_eof
    protocol.keep_alive(False)
    resp = web.StreamResponse(status=101, reason="Switching Protocols", headers={"Connection": "Upgrade", **headers})
    resp.force_close()
    await resp.prepare(request)

    async def write(data: bytes) -> None:
        if transport.is_closing():
            raise ConnectionResetError("the client went away")
        transport.write(data)
        if transport.get_write_buffer_size() > READ_LIMIT:
            await protocol._drain_helper()      # as aiohttp's own WebSocket writer waits for the peer

    return resp, RawConnection(feed.queue.get, write, transport.close)


@dataclass
class Refusal:
    """A non-101 answer to :func:`dial`."""
    status: int
    headers: dict[str, str]
    body: bytes


async def dial(host: str, port: int, method: str, target: str, headers: Iterable[tuple[str, str]],
               timeout: float = 10) -> tuple[int, dict[str, list[str]], RawConnection | Refusal]:
    """Send ``method target`` with ``headers`` (which carry the ``Upgrade``) to ``host:port``.

    Returns (status, response headers by lower-cased name, the raw connection after a 101 or the refusal)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=READ_LIMIT), timeout)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Content-Length: 0"]
    lines += [f"{k}: {v}" for k, v in headers]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
        writer.close()
        raise ConnectionError(f"no HTTP answer from {host}:{port}") from None
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    got: dict[str, list[str]] = {}
    for line in header_lines:
        if ":" in line:
            k, v = line.split(":", 1)
            got.setdefault(k.strip().lower(), []).append(v.strip())
    if status != 101:
        length = int((got.get("content-length") or ["0"])[0])
        body = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
        writer.close()
        return status, got, Refusal(status, {k: v[0] for k, v in got.items()}, body)

    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    def close() -> None:
        writer.close()
    return status, got, RawConnection(lambda: reader.read(65536), write, close)

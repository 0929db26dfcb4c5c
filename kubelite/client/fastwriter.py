"""A lean HTTP/1.1 transport for hot writes (POSTs), such as the scheduler's bindings and Events.

Each scheduled pod costs one ``pods/binding`` POST and one Event POST; through aiohttp's client
each request spends more CPU in Python than the scheduling cycle itself. :class:`Http1Connection` is
one keep-alive connection that sends pre-encoded requests (also what ``bench/api.py`` drives creates
with). :class:`FastWriter` keeps
a pool of keep-alive connections (one request at a time on each, as many as are in flight) and
does for a POST only what the apiserver needs: one ``write`` of the request line, headers and body,
then a parse of the status line, ``Content-Length`` (or chunked) body. Requests are built and
answers decoded by ``kubelite.client``'s own ``_rest`` functions, so paths, bodies and the
:class:`~kubelite.api.errors.ApiError` raised are the regular client's. Every other verb, and
anything unusual (a proxy, a redirect), goes to the wrapped :class:`~kubelite.client.Client`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from kubelite import kubeconfig
from kubelite.api import codec
from kubelite.api.errors import ServiceUnavailable
from kubelite.client import _rest
from kubelite.client._rest import Request, Resource, resolve

logger = logging.getLogger(__name__)

IDLE_CLOSE = 30.0          # seconds: a connection idle longer is closed, not reused (server keep-alive is 75 s)
MAX_IDLE = 64              # idle connections kept


class Http1Connection(asyncio.Protocol):
    """One keep-alive connection; :meth:`request` sends one request and waits for its response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, str, bytes]] | None = None
        self.closed = False
        self.keep_alive = True
        self.last_used = time.monotonic()
        self.received = False
        self.deadline = 0.0

    @classmethod
    async def open(cls, host: str, port: int, ssl: Any = None) -> "Http1Connection":
        """A connected instance."""
        _, conn = await asyncio.get_running_loop().create_connection(cls, host, port, ssl=ssl)
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError(str(exc) if exc else "connection closed"))

    def data_received(self, data: bytes) -> None:
        self.received = True
        self.buf += data
        if self.waiter is not None and not self.waiter.done():
            try:
                parsed = self._parse()
            except ValueError as exc:
                self.waiter.set_exception(exc)
                self.close()
                return
            if parsed is not None:
                self.waiter.set_result(parsed)

    def _parse(self) -> tuple[int, str, bytes] | None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[:end]).decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x response: {head[0]!r}")
        status = int(parts[1])
        length = -1
        chunked = False
        content_type = ""
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "content-type":
                content_type = value
            elif name == "connection":
                self.keep_alive = value.lower() != "close"
        if parts[0] == "HTTP/1.0":
            self.keep_alive = False
        start = end + 4
        if chunked:
            body = bytearray()
            pos = start
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
                if size == 0:
                    trailer_end = buf.find(b"\r\n\r\n", eol)
                    if trailer_end < 0:
                        return None
                    del buf[:trailer_end + 4]
                    return status, content_type, bytes(body)
                if len(buf) < eol + 2 + size + 2:
                    return None
                body += buf[eol + 2:eol + 2 + size]
                pos = eol + 2 + size + 2
        if length < 0:
            if status in (204, 304) or 100 <= status < 200:
                length = 0
            else:
                raise ValueError("a response without Content-Length or chunked encoding")
        if len(buf) < start + length:
            return None
        body_bytes = bytes(buf[start:start + length])
        del buf[:start + length]
        return status, content_type, body_bytes

    async def request(self, data: bytes, deadline: float) -> tuple[int, str, bytes]:
        """Send ``data``; the response. Past ``deadline`` (monotonic) :meth:`expire` fails it."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.deadline = deadline
        self.received = False
        self.transport.write(data)
        try:
            return await self.waiter
        finally:
            self.waiter = None
            self.last_used = time.monotonic()

    def expire(self, now: float) -> bool:
        """Fail a request past its deadline (and drop the connection); True if it did."""
        if self.waiter is not None and not self.waiter.done() and now > self.deadline:
            self.waiter.set_exception(TimeoutError("no response in time"))
            self.close()
            return True
        return False

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class FastWriter:
    """Wraps a :class:`~kubelite.client.Client`: ``create``, ``create_subresource`` and ``patch`` go through
    the lean pool; every other attribute is the client's."""

    def __init__(self, client: Any, timeout: float | None = None) -> None:
        self._client = client
        cfg = client.config
        url = urlsplit(cfg.server)
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._prefix = url.path.rstrip("/")
        self._ssl = kubeconfig.ssl_context(cfg) if cfg.is_https else None
        self._timeout = timeout if timeout is not None else getattr(client, "timeout", 60.0)
        host_header = url.netloc.rpartition("@")[2]
        headers = {"Host": host_header, **getattr(client, "_headers", {})}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._idle: list[Http1Connection] = []
        self._busy: set[Http1Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None    # one timer for every request's deadline
        self.namespace = client.namespace

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def _connect(self) -> Http1Connection:
        return await Http1Connection.open(self._host, self._port, self._ssl)

    def _take(self) -> Http1Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and not conn.buf and now - conn.last_used < IDLE_CLOSE:
                return conn
            conn.close()
        return None

    def _give_back(self, conn: Http1Connection) -> None:
        if conn.closed or not conn.keep_alive or conn.buf or len(self._idle) >= MAX_IDLE:
            conn.close()
        else:
            self._idle.append(conn)

    async def send(self, req: Request) -> Any:
        """Send one request with a JSON body; the decoded answer, or its ApiError."""
        body = req.body if req.body is None or isinstance(req.body, bytes) else codec.dumps(req.body)
        body = body or b""
        headers = "".join(f"{k}: {v}\r\n" for k, v in req.headers.items())
        data = (f"{req.method} {self._prefix}{req.path} HTTP/1.1\r\n{self._head}{headers}"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
        for attempt in (1, 2):
            conn = self._take()
            reused = conn is not None
            try:
                if conn is None:
                    conn = await self._connect()
                self._busy.add(conn)
                if self._sweeper is None:
                    self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)
                try:
                    status, content_type, payload = await conn.request(data, time.monotonic() + self._timeout)
                finally:
                    self._busy.discard(conn)
            except (OSError, ValueError, TimeoutError) as exc:
                if conn is not None:
                    conn.close()
                # a kept-alive connection the server closed meanwhile: once more on a fresh one
                if (attempt == 1 and reused and conn is not None and not conn.received and isinstance(exc, OSError)
                        and not isinstance(exc, TimeoutError)):
                    continue
                raise ServiceUnavailable(f"{req.method} {self._client.config.server}{req.path.split('?')[0]}: "
                                         f"{type(exc).__name__}: {exc}") from None
            self._give_back(conn)
            return _rest.decode(status, content_type, payload, req, codec.loads)
        raise AssertionError("unreachable")

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self._busy):
            conn.expire(now)
        self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep) if self._busy else None

    async def create(self, res: Resource, obj: dict[str, Any], namespace: str | None = None, **kw: Any) -> Any:
        return await self.send(_rest.create(resolve(res), obj, namespace, self.namespace, **kw))

    async def create_subresource(self, res: Resource, name: str, sub: str, body: dict[str, Any],
                                 namespace: str | None = None) -> Any:
        return await self.send(_rest.create_subresource(resolve(res), name, sub, body, namespace, self.namespace))

    async def patch(self, res: Resource, name: str, body: Any, namespace: str | None = None,
                    patch_type: Any = "merge", subresource: str | None = None, **kw: Any) -> Any:
        return await self.send(_rest.patch(resolve(res), name, body, namespace, self.namespace,
                                           patch_type=patch_type, subresource=subresource, **kw))

    async def close(self) -> None:
        """Close the pooled connections (the wrapped client is closed by its owner)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in self._idle:
            conn.close()
        self._idle.clear()

"""A lean HTTP/1.1 server protocol for the plain REST verbs, in front of the aiohttp application.

aiohttp's request/response machinery (parser callbacks, ``web.Request``, router, ``StreamWriter``)
costs more CPU per request than a pod create's own work. A connection therefore starts on
:class:`LeanProtocol`, which serves what the catch-all API routes serve — get, list, create, update,
patch and delete of objects and their ``status``/``scale``/``binding``/``eviction``/``finalize``
subresources (:func:`apiserver.handlers.dispatch.route`) — itself: it parses the request head,
runs the application's middlewares (``Status`` errors, ``apiserver_request_total`` and the other
request metrics) and the same handlers with a :class:`LeanRequest`, and writes the
``web.Response`` they return. Keep-alive, pipelined requests are answered in order.

Anything else — a watch, exec/attach/port-forward/log/proxy, discovery, OpenAPI, metrics, a body
without ``Content-Length`` or over the size limit, ``Expect``, ``Upgrade``, ``Connection: close``,
HTTP/1.0, a head that is not plain ASCII ``name: value`` lines, a percent-encoded path — hands the
connection, with the bytes not yet answered, to aiohttp's own protocol for the rest of its life, so
those keep aiohttp's exact behaviour.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import time
from typing import Any, Awaitable, Callable, cast
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from apiserver.handlers.common import MAX_BODY, status_response
from apiserver.handlers.dispatch import Handler, Target, parse, route
from apiserver.handlers.watch import handle_watch
from kubelite.api import errors

logger = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024                # a longer head goes to aiohttp (which answers 431/400)
COPY_LIMIT = 64 * 1024              # a larger body is written beside its head, not copied behind it
IDLE_TIMEOUT = 75.0                 # seconds an idle keep-alive connection is kept (aiohttp's default)
LEAN_METHODS = frozenset(("GET", "POST", "PUT", "PATCH", "DELETE"))
_EMPTY_QUERY: MultiDictProxy[str] = MultiDictProxy(MultiDict())


class LeanRequest:
    """The part of ``web.Request`` the middlewares and REST handlers use: method, path, query,
    headers, body, app. (A request that needs more, e.g. a streamed body, is aiohttp's.)"""

    __slots__ = ("method", "path", "query_string", "_query", "headers", "body", "app", "target", "handler")

    def __init__(self, method: str, path: str, query_string: str, headers: CIMultiDictProxy[str], body: bytes,
                 app: web.Application, target: Target, handler: Handler) -> None:
        self.method, self.path, self.query_string, self.headers = method, path, query_string, headers
        self.body, self.app, self.target, self.handler = body, app, target, handler
        self._query: MultiDictProxy[str] | None = None

    @property
    def query(self) -> MultiDictProxy[str]:
        if self._query is None:
            self._query = parse_query(self.query_string)
        return self._query

    @property
    def content_length(self) -> int:
        return len(self.body)

    @property
    def can_read_body(self) -> bool:
        return bool(self.body)

    async def read(self) -> bytes:
        return self.body


def parse_query(query_string: str) -> MultiDictProxy[str]:
    """A query string as aiohttp's ``request.query`` gives it."""
    if not query_string:
        return _EMPTY_QUERY
    return MultiDictProxy(MultiDict(parse_qsl(query_string, keep_blank_values=True)))


@functools.lru_cache(maxsize=4096)
def _target(path: str) -> Target | None:
    """The REST target of an API path the catch-all routes serve, or None."""
    if path.startswith("/api/v1/"):
        group, version, tail = "", "v1", path[8:]
    elif path.startswith("/apis/"):
        parts = path[6:].split("/", 2)
        if len(parts) < 3:
            return None
        group, version, tail = parts
    else:
        return None
    try:
        return parse(group, version, tail)
    except errors.ApiError:
        return None


class LeanServer:
    """Serves an aiohttp application's REST verbs on :class:`LeanProtocol` connections; hands the
    others to ``aiohttp_server`` (the runner's ``web.Server``, whose protocol takes them over)."""

    def __init__(self, app: web.Application, aiohttp_server: Callable[[], asyncio.Protocol]) -> None:
        self.app = app
        self.aiohttp_server = aiohttp_server
        self.connections: set[LeanProtocol] = set()
        handler: Callable[[Any], Awaitable[web.StreamResponse]] = _call_handler
        for mw in reversed(tuple(app.middlewares)):      # as aiohttp chains them: the first is outermost
            handler = functools.partial(mw, handler=handler)
        self.handle = handler
        self._date = ""
        self._date_at = 0
        self._sweeper: asyncio.TimerHandle | None = None
        self.stopping = False

    def __call__(self) -> LeanProtocol:
        if self._sweeper is None and not self.stopping:
            self._sweeper = asyncio.get_running_loop().call_later(IDLE_TIMEOUT / 3, self._sweep)
        return LeanProtocol(self)

    def date(self) -> str:
        now = int(time.time())
        if now != self._date_at:
            self._date, self._date_at = email.utils.formatdate(now, usegmt=True), now
        return self._date

    def _sweep(self) -> None:
        """Close keep-alive connections idle for longer than :data:`IDLE_TIMEOUT` (checked every 25 s)."""
        deadline = time.monotonic() - IDLE_TIMEOUT
        for conn in [c for c in self.connections if c.task is None and c.last_active < deadline]:
            conn.close()
        self._sweeper = asyncio.get_running_loop().call_later(IDLE_TIMEOUT / 3, self._sweep)

    async def shutdown(self, timeout: float) -> None:
        """Close idle connections, let requests in flight finish (up to ``timeout``), then close the rest."""
        self.stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections):
            if conn.task is None:
                conn.close()
        busy = [c.task for c in self.connections if c.task is not None]
        if busy:
            await asyncio.wait(busy, timeout=timeout)
        for conn in list(self.connections):
            if conn.task is not None:
                conn.task.cancel()
            conn.close()


async def _call_handler(request: LeanRequest) -> web.StreamResponse:
    return await request.handler(cast(web.Request, request), request.target)


class LeanProtocol(asyncio.Protocol):
    """One client connection: serves lean requests one at a time, in order, until it hands over."""

    def __init__(self, server: LeanServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.buf = bytearray()
        self.task: asyncio.Task[None] | None = None
        self.closing = False
        self.paused = False
        self.last_active = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.loop = asyncio.get_running_loop()
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None           # a request in flight finishes (as aiohttp's); its answer is dropped
        if self.task is None:           # (else shutdown still waits for it; _serve lets go of it)
            self.server.connections.discard(self)

    def eof_received(self) -> bool:
        self.closing = True
        return self.task is not None    # keep the transport open to answer the request in flight

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.task is None:
            self._next()
        elif len(self.buf) > MAX_BODY + MAX_HEAD and not self.paused and self.transport is not None:
            self.paused = True          # a client pipelining more than one large body ahead: wait
            self.transport.pause_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.task is None:
            self.server.connections.discard(self)

    def _next(self) -> None:
        """Start the next complete request in the buffer, or hand the connection to aiohttp."""
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                self._hand_over()
            elif self.closing and self.transport is not None:
                self.close()
            return
        parsed = self._parse_head(bytes(buf[:end]))
        if parsed is None:
            self._hand_over()
            return
        method, path, query_string, headers, length = parsed
        total = end + 4 + length
        if len(buf) < total:
            return                      # the body is still arriving
        target = _target(path)
        watch_query = "watch=" in query_string and parse_query(query_string).get("watch") in ("true", "1")
        handler = route(method, target, watch_query) if target is not None else None
        if target is None or handler is None or handler is handle_watch:
            self._hand_over()
            return
        body = bytes(buf[end + 4:total])
        del buf[:total]
        request = LeanRequest(method, path, query_string, headers, body, self.server.app, target, handler)
        task = asyncio.Task(self._serve(request), loop=self.loop, eager_start=True)  # type: ignore[call-arg]
        if not task.done():             # (done: answered at once, and _serve went on with the next)
            self.task = task

    @staticmethod
    def _parse_head(head: bytes) -> tuple[str, str, str, CIMultiDictProxy[str], int] | None:
        """(method, path, query, headers, body length) of a plain HTTP/1.1 keep-alive request head,
        or None for anything aiohttp should judge."""
        if not head.isascii():
            return None
        lines = head.decode("ascii").split("\r\n")
        request_line = lines[0].split(" ")
        if len(request_line) != 3 or request_line[2] != "HTTP/1.1" or request_line[0] not in LEAN_METHODS:
            return None
        method, uri = request_line[0], request_line[1]
        path, _, query_string = uri.partition("?")
        if not path.startswith("/") or "%" in path or "#" in uri:
            return None
        pairs = []
        length = -1
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name[-1] in " \t" or line[0] in " \t":
                return None
            value = value.strip(" \t")
            lname = name.lower()
            if lname == "content-length":
                if length >= 0 or not value.isdigit():
                    return None
                length = int(value)
            elif lname in ("transfer-encoding", "expect", "upgrade") or (
                    lname == "connection" and "close" in value.lower()):
                return None
            pairs.append((name, value))
        if length > MAX_BODY:
            return None
        return method, path, query_string, CIMultiDictProxy(CIMultiDict(pairs)), max(length, 0)

    async def _serve(self, request: LeanRequest) -> None:
        try:
            try:
                response = await self.server.handle(request)
            except Exception:  # noqa: BLE001 - the loop boundary of a request (the middleware answers most)
                logger.exception("%s %s failed", request.method, request.path)
                response = status_response(errors.InternalError(
                    "an error on the server has prevented the request from succeeding"))
            if self.transport is not None:
                head, body = self._encode(response)
                if len(body) > COPY_LIMIT:         # a list: no copy of megabytes to prepend the head
                    self.transport.writelines((head, body))
                else:
                    self.transport.write(head + body)
        finally:
            self.task = None
            self.last_active = time.monotonic()
        if self.transport is None or self.server.stopping:
            self.close()
            return
        if self.paused:
            self.paused = False
            self.transport.resume_reading()
        self._next()

    def _encode(self, response: web.StreamResponse) -> tuple[bytes, bytes]:
        """The response's head and body."""
        body = cast(web.Response, response).body if isinstance(response, web.Response) else None
        if not isinstance(body, bytes) and body is not None:
            logger.error("a REST handler answered a %s body; this server writes bytes only", type(body).__name__)
            return self._encode(status_response(errors.InternalError("unexpected response body")))
        body = body or b""
        head = [f"HTTP/1.1 {response.status} {response.reason}\r\n"]
        for name, value in response.headers.items():
            if name != "Content-Length":
                head.append(f"{name}: {value}\r\n")
        head.append(f"Content-Length: {len(body)}\r\nDate: {self.server.date()}\r\nServer: {SERVER_SOFTWARE}\r\n\r\n")
        return "".join(head).encode("latin-1"), body

    def _hand_over(self) -> None:
        """From here on this connection is aiohttp's: its protocol gets the transport and the bytes
        not yet answered."""
        transport = self.transport
        self.server.connections.discard(self)
        if transport is None:
            return
        self.transport = None
        protocol = self.server.aiohttp_server()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        data, self.buf = bytes(self.buf), bytearray()
        if data:
            protocol.data_received(data)
        if self.closing:
            protocol.eof_received()
        if self.paused:
            transport.resume_reading()

"""SPDY/3.1 framing and a small asyncio session: what Kubernetes' streaming (moby/spdystream) speaks.

kubectl's ``port-forward`` multiplexes its connections as SPDY streams. Since kubectl 1.31 (1.30 with
``KUBECTL_PORT_FORWARD_WEBSOCKETS=true``) the SPDY byte stream travels inside WebSocket binary messages
(subprotocol ``SPDY/3.1+portforward.k8s.io``, KEP-4006); older kubectl upgrades the HTTP connection to
raw SPDY. Either way the frames are the ones here (draft-mbelshe-httpbis-spdy-00 §2):

* control frame: ``1|version(15)=3|type(16)|flags(8)|length(24)|data``;
* data frame: ``0|stream-id(31)|flags(8)|length(24)|data``; flag FIN (0x01) half-closes a stream.

Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib-compressed with the SPDY/3 dictionary, one
compression context per direction for the whole session. Flow control (WINDOW_UPDATE) is accepted and
ignored, as spdystream does. The caller moves bytes: :meth:`Session.feed` what arrives, and the
session writes through the ``send`` coroutine it was given.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN, FLAG_UNIDIRECTIONAL = 0x01, 0x02
RST_PROTOCOL_ERROR, RST_REFUSED_STREAM, RST_CANCEL = 1, 3, 5
MAX_DATA = 32 * 1024

_WORDS = ("options head post put delete trace accept accept-charset accept-encoding accept-language "
          "accept-ranges age allow authorization cache-control connection content-base content-encoding "
          "content-language content-length content-location content-md5 content-range content-type date etag "
          "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
          "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
          "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
          "method get status").split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
                                           "keep-alive", "origin"]
_TAIL = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
         "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
         "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
         "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
         "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
         "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
# The SPDY/3 header compression dictionary (§2.6.10.1): length-prefixed names, then a raw tail.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class ProtocolError(Exception):
    """The peer sent bytes that are not SPDY/3."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. ``kind`` is a control type, or 0 for data."""
    kind: int
    flags: int
    stream_id: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    value: int = 0                  # RST_STREAM/GOAWAY status, PING id, WINDOW_UPDATE delta

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class Codec:
    """Frame bytes ↔ :class:`Frame`, with this session's two header compression contexts."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, zdict=DICTIONARY)
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Every complete frame in what has arrived so far."""
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                break
            head, body = bytes(self._buf[:8]), bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            frames.append(self._decode(head, body))
        return frames

    def _decode(self, head: bytes, body: bytes) -> Frame:
        word, flags = struct.unpack(">I", head[:4])[0], head[4]
        if not word & 0x80000000:
            return Frame(0, flags, word & 0x7FFFFFFF, data=body)
        version, kind = (word >> 16) & 0x7FFF, word & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"SPDY version {version} is not supported (only 3)")
        if kind == SYN_STREAM:
            return Frame(kind, flags, _u31(body, 0), self._headers(body[10:]))
        if kind in (SYN_REPLY, HEADERS):
            return Frame(kind, flags, _u31(body, 0), self._headers(body[4:]))
        if kind in (RST_STREAM, WINDOW_UPDATE, GOAWAY):
            return Frame(kind, flags, _u31(body, 0), value=struct.unpack(">I", body[4:8])[0])
        if kind == PING:
            return Frame(kind, flags, value=struct.unpack(">I", body[:4])[0])
        return Frame(kind, flags, data=body)        # SETTINGS and anything newer: no action needed

    def _headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as exc:
            raise ProtocolError(f"bad header block: {exc}") from None
        (count,), pos, out = struct.unpack(">I", raw[:4]), 4, {}
        for _ in range(count):
            (n,) = struct.unpack(">I", raw[pos:pos + 4])
            name = raw[pos + 4:pos + 4 + n].decode("latin-1").lower()
            pos += 4 + n
            (n,) = struct.unpack(">I", raw[pos:pos + 4])
            out[name] = raw[pos + 4:pos + 4 + n].decode("latin-1").split("\0")[0]
            pos += 4 + n
        return out

    def _header_block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.lower().encode() + struct.pack(">I", len(v.encode())) + v.encode()
            for k, v in headers.items())
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def _control(kind: int, flags: int, body: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(body)) + body

    def syn_stream(self, stream_id: int, headers: dict[str, str], flags: int = 0) -> bytes:
        return self._control(SYN_STREAM, flags, struct.pack(">IIH", stream_id, 0, 0) + self._header_block(headers))

    def syn_reply(self, stream_id: int, headers: dict[str, str], flags: int = 0) -> bytes:
        return self._control(SYN_REPLY, flags, struct.pack(">I", stream_id) + self._header_block(headers))

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream_id: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream_id, status))

    @staticmethod
    def data(stream_id: int, payload: bytes, flags: int = 0) -> bytes:
        return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload


def _u31(body: bytes, offset: int) -> int:
    return struct.unpack(">I", body[offset:offset + 4])[0] & 0x7FFFFFFF


class Stream:
    """One SPDY stream: read what the peer sends until its FIN, write, half-close, reset."""

    def __init__(self, session: Session, stream_id: int, headers: dict[str, str]) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.remote_closed = False
        self.local_closed = False
        self.replied = asyncio.Event()

    async def read(self) -> bytes:
        """The next chunk from the peer; ``b""`` once it half-closed (or reset) the stream."""
        if self.remote_closed and self._inbox.empty():
            return b""
        return await self._inbox.get()

    async def write(self, data: bytes) -> None:
        for i in range(0, len(data), MAX_DATA):
            await self.session.send_frame(Codec.data(self.id, data[i:i + MAX_DATA]))

    async def close(self) -> None:
        """Half-close: an empty DATA frame with FIN (the peer reads EOF)."""
        if not self.local_closed:
            self.local_closed = True
            await self.session.send_frame(Codec.data(self.id, b"", FLAG_FIN))

    async def reset(self, status: int = RST_CANCEL) -> None:
        self.local_closed = True
        self._remote_eof()
        await self.session.send_frame(self.session.codec.rst_stream(self.id, status))

    def _deliver(self, data: bytes, fin: bool) -> None:
        if data:
            self._inbox.put_nowait(data)
        if fin:
            self._remote_eof()

    def _remote_eof(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self._inbox.put_nowait(b"")


class Session:
    """One SPDY connection, either end.

    Args:
        send: writes bytes to the peer (one call per frame; a WebSocket tunnel sends each as a message).
        server: True for the end that accepts streams (even stream ids are the server's own).
        on_stream: called with each stream the peer opens, after the session replied to it.
    """

    def __init__(self, send: Callable[[bytes], Awaitable[None]], *, server: bool,
                 on_stream: Callable[[Stream], None] | None = None) -> None:
        self.codec = Codec()
        self._send = send
        self._lock = asyncio.Lock()         # compression order = send order
        self.server = server
        self._on_stream = on_stream
        self.streams: dict[int, Stream] = {}
        self._next_id = 2 if server else 1
        self.closed = asyncio.Event()

    async def send_frame(self, frame: bytes) -> None:
        async with self._lock:
            await self._send(frame)

    async def feed(self, data: bytes) -> None:
        """Handle bytes from the peer (raises :class:`ProtocolError` on garbage)."""
        for f in self.codec.feed(data):
            await self._handle(f)

    async def _handle(self, f: Frame) -> None:
        if f.kind == 0:
            s = self.streams.get(f.stream_id)
            if s is not None:
                s._deliver(f.data, f.fin)
        elif f.kind == SYN_STREAM:
            s = Stream(self, f.stream_id, f.headers)
            self.streams[f.stream_id] = s
            async with self._lock:
                await self._send(self.codec.syn_reply(f.stream_id, {}))
            s.replied.set()
            if f.fin:
                s._remote_eof()
            if self._on_stream is not None:
                self._on_stream(s)
        elif f.kind == SYN_REPLY:
            s = self.streams.get(f.stream_id)
            if s is not None:
                s.replied.set()
                if f.fin:
                    s._remote_eof()
        elif f.kind == RST_STREAM:
            s = self.streams.pop(f.stream_id, None)
            if s is not None:
                s.local_closed = True
                s.replied.set()
                s._remote_eof()
        elif f.kind == PING:
            if (f.value % 2 == 1) == self.server:      # the peer's ping: echo it
                await self.send_frame(self.codec.ping(f.value))
        elif f.kind == GOAWAY:
            self.close_streams()

    async def open(self, headers: dict[str, str], timeout: float = 30) -> Stream:
        """Open a stream and wait for the peer's SYN_REPLY."""
        async with self._lock:
            sid = self._next_id
            self._next_id += 2
            s = Stream(self, sid, headers)
            self.streams[sid] = s
            await self._send(self.codec.syn_stream(sid, headers))
        await asyncio.wait_for(s.replied.wait(), timeout)
        return s

    def forget(self, stream: Stream) -> None:
        self.streams.pop(stream.id, None)

    def close_streams(self) -> None:
        """The transport ended: every reader sees EOF."""
        for s in self.streams.values():
            s.replied.set()
            s._remote_eof()
        self.closed.set()


async def serve(read: Callable[[], Awaitable[bytes]], send: Callable[[bytes], Awaitable[None]],
                on_stream: Callable[[Stream], None]) -> Session:
    """Run the server end of a session over a byte transport until the peer closes it (``read`` gives
    ``b""``) or sends garbage; every stream then reads EOF. Returns the finished session."""
    session = Session(send, server=True, on_stream=on_stream)
    try:
        while data := await read():
            await session.feed(data)
    except ProtocolError as e:
        logger.info("SPDY session ended: %s", e)
    finally:
        session.close_streams()
    return session

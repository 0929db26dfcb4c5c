"""One cleartext HTTP/2 connection carrying gRPC streams, as an asyncio Protocol (used by :mod:`.h2grpc`).

RFC 9113 with prior knowledge and the gRPC-over-HTTP/2 framing: streams with their messages and
trailers, both directions of flow control, SETTINGS/PING/GOAWAY/RST_STREAM, CONTINUATION, writes
coalesced per turn of the loop, unary deadlines swept by one timer. Requests are laid out by hand
(static-table names, no Huffman); replies are decoded with ``hpack``: the connection announces a
header table size of 0, so header blocks are context-free and the few distinct ones (``:status
200``, the OK trailers) are decoded once and then looked up by their bytes. No TLS, compression or
server push (refused).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from urllib.parse import unquote

import hpack

logger = logging.getLogger(__name__)

OK, CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, OUT_OF_RANGE, INTERNAL, UNAVAILABLE = 0, 1, 2, 4, 11, 13, 14
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 5, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
RECV_WINDOW = 1 << 30            # our window, per stream and for the connection
OUR_MAX_FRAME = 1 << 20
LAST_STREAM_ID = (1 << 31) - 1
SWEEP_INTERVAL = 0.5
ACK_DELAY = 0.005                # longest a PING ack waits for a write to ride along with


class RpcError(Exception):
    """A call that ended with a non-OK gRPC status (``code``: the numeric status code)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"gRPC status {code}: {message}")
        self.code = code
        self.message = message


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload


def _hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out, value = bytearray((first | limit,)), value - limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _literal(name_index: int, value: str, name: str = "") -> bytes:
    """A literal header field without indexing (name from the static table, or a literal name)."""
    head = _hpack_int(name_index, 4, 0)
    if not name_index:
        head += _hpack_int(len(name), 7, 0) + name.encode()
    return head + _hpack_int(len(value.encode()), 7, 0) + value.encode()


def request_headers(authority: str, path: str) -> bytes:
    """The header block of a gRPC request (static table: 3 ``:method POST``, 6 ``:scheme http``,
    4 ``:path``, 1 ``:authority``, 31 ``content-type``)."""
    return (b"\x83\x86" + _literal(4, path) + _literal(1, authority) + _literal(31, "application/grpc")
            + _literal(0, "trailers", "te"))


class Stream:
    """One HTTP/2 stream: its received gRPC messages, final status, windows and waiter."""

    __slots__ = ("id", "buf", "messages", "waiter", "done", "status", "message", "send_window", "unacked",
                 "deadline", "refused")

    def __init__(self, stream_id: int, send_window: int) -> None:
        self.id = stream_id
        self.buf = bytearray()
        self.messages: collections.deque[bytes] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.done = False
        self.status = -1
        self.message = ""
        self.send_window = send_window
        self.unacked = 0
        self.deadline = 0.0
        self.refused = False           # the peer says it never processed this stream: safe to send again

    def wake(self) -> None:
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    def finish(self, status: int, message: str) -> None:
        if not self.done:
            self.done, self.status, self.message = True, status, message
        self.wake()


class Connection(asyncio.Protocol):
    """One HTTP/2 connection; use it through :class:`Channel`."""

    def __init__(self, authority: str) -> None:
        self.authority = authority
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.closed = False            # broken, or going away: open no new streams on it
        self.peer_window = 65535       # initial stream send window (peer's SETTINGS)
        self.peer_max_frame = 16384
        self.conn_window = 65535       # connection send window
        self.conn_unacked = 0
        self.blocked: collections.deque[tuple[Stream, bytes, bool]] = collections.deque()
        self.decoder = hpack.Decoder()
        self.decoded: dict[bytes, list[tuple[str, str]]] = {}
        self.sweeper: asyncio.TimerHandle | None = None
        self.hblock = bytearray()      # a header block continued in CONTINUATION frames
        self.hend = False              # ... whose HEADERS frame ended the stream
        self.out: list[bytes] = []     # frames to write at the end of this turn of the loop
        self.flush_soon = False        # a _flush is scheduled for this turn
        self.flush_timer: asyncio.TimerHandle | None = None     # ... or for ACK_DELAY from now

    # --- connection events ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        settings = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big")
                            for k, v in ((1, 0), (2, 0), (4, RECV_WINDOW), (5, OUR_MAX_FRAME)))
        self.transport.write(PREFACE + frame(SETTINGS, 0, 0, settings)
                             + frame(WINDOW_UPDATE, 0, 0, (RECV_WINDOW - 65535).to_bytes(4, "big")))
        self.sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self._sweep)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        for timer in (self.sweeper, self.flush_timer):
            if timer is not None:
                timer.cancel()
        why = f"connection to etcd lost: {exc}" if exc else "connection to etcd closed"
        for s in list(self.streams.values()):
            s.finish(UNAVAILABLE, why)
        self.streams.clear()
        self.blocked.clear()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _sweep(self) -> None:
        """Fail unary calls past their deadline (one timer for all of them)."""
        now = time.monotonic()
        for s in [s for s in self.streams.values() if s.deadline and s.deadline < now]:
            self.reset(s, DEADLINE_EXCEEDED, "deadline exceeded")
        if not self.closed or self.streams:
            self.sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL, self._sweep)

    # --- frames in --------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos, end = 0, len(buf)
        while end - pos >= 9:
            length = int.from_bytes(buf[pos:pos + 3], "big")
            if end - pos - 9 < length:
                break
            kind, flags = buf[pos + 3], buf[pos + 4]
            sid = int.from_bytes(buf[pos + 5:pos + 9], "big") & 0x7FFFFFFF
            payload = bytes(buf[pos + 9:pos + 9 + length])
            pos += 9 + length
            if kind == DATA:
                self._on_data(sid, flags, payload, length)
            elif kind == HEADERS or kind == CONTINUATION:
                self._on_headers(kind, sid, flags, payload)
            elif kind == SETTINGS:
                if not flags & ACK:
                    self._on_settings(payload)
            elif kind == WINDOW_UPDATE:
                self._on_window_update(sid, int.from_bytes(payload[:4], "big") & 0x7FFFFFFF)
            elif kind == PING:
                if not flags & ACK:
                    self._write_later(frame(PING, ACK, 0, payload))
            elif kind == RST_STREAM:
                s = self.streams.get(sid)
                if s is not None:
                    code = int.from_bytes(payload[:4], "big")
                    s.refused = code == 7      # REFUSED_STREAM
                    self._end(s, UNAVAILABLE if code == 7 else INTERNAL, f"stream reset by etcd (HTTP/2 error {code})")
            elif kind == GOAWAY:
                self._on_goaway(int.from_bytes(payload[:4], "big") & 0x7FFFFFFF, payload[8:])
            elif kind == PUSH_PROMISE:      # we said ENABLE_PUSH 0: a protocol error of the peer
                self.close()
        if pos:
            del buf[:pos]

    def _on_data(self, sid: int, flags: int, payload: bytes, length: int) -> None:
        self.conn_unacked += length
        if self.conn_unacked > RECV_WINDOW // 2:
            self._write(frame(WINDOW_UPDATE, 0, 0, self.conn_unacked.to_bytes(4, "big")))
            self.conn_unacked = 0
        s = self.streams.get(sid)
        if s is None:
            return
        if flags & PADDED:
            payload = payload[1:len(payload) - payload[0]]
        buf = s.buf
        if not buf and len(payload) >= 5 and int.from_bytes(payload[1:5], "big") == len(payload) - 5:
            s.messages.append(payload[5:])           # the common case: one whole message in one frame
        elif payload:
            buf += payload
            while len(buf) >= 5:
                n = int.from_bytes(buf[1:5], "big")
                if len(buf) < 5 + n:
                    break
                s.messages.append(bytes(buf[5:5 + n]))
                del buf[:5 + n]
        if flags & END_STREAM:
            self._end(s, INTERNAL, "the stream ended without a gRPC status")
            return
        s.unacked += length
        if s.unacked > RECV_WINDOW // 2:
            self._write(frame(WINDOW_UPDATE, 0, sid, s.unacked.to_bytes(4, "big")))
            s.unacked = 0
        if s.messages:
            s.wake()

    def _on_headers(self, kind: int, sid: int, flags: int, payload: bytes) -> None:
        if kind == HEADERS:
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            if flags & PRIORITY:
                payload = payload[5:]
            if not flags & END_HEADERS:
                self.hblock, self.hend = bytearray(payload), bool(flags & END_STREAM)
                return
            block, ended = payload, bool(flags & END_STREAM)
        else:                                       # CONTINUATION: follows its HEADERS frame directly
            self.hblock += payload
            if not flags & END_HEADERS:
                return
            block, ended = bytes(self.hblock), self.hend
            self.hblock = bytearray()
        headers = self._decode(block)               # also for unknown streams: keeps HPACK in step
        s = self.streams.get(sid)
        if s is None:
            return
        status = message = None
        for name, value in headers:
            if name == "grpc-status":
                status = value
            elif name == "grpc-message":
                message = unquote(value)
            elif name == ":status" and value != "200":
                status, message = str(UNAVAILABLE if value in ("502", "503", "504") else UNKNOWN), f"HTTP status {value}"
        if status is not None and (ended or status != "0"):
            self._end(s, int(status) if status.isdigit() else UNKNOWN, message or "")
        elif ended:
            self._end(s, INTERNAL, "the stream ended without a gRPC status")

    def _end(self, s: Stream, status: int, message: str) -> None:
        self.streams.pop(s.id, None)
        s.finish(status, message)
        if self.closed and not self.streams:
            self.close()

    def _decode(self, block: bytes) -> list[tuple[str, str]]:
        got = self.decoded.get(block)
        if got is not None:
            return got
        table = self.decoder.header_table
        size, empty = table.maxsize, not table.dynamic_entries
        try:
            headers = [(str(k), str(v)) for k, v in self.decoder.decode(block)]
        except hpack.HPACKError as e:
            logger.warning("undecodable header block from etcd (%s); closing the connection", e)
            self.close()
            return []
        if empty and not table.dynamic_entries and table.maxsize == size and len(self.decoded) < 256:
            self.decoded[block] = headers          # context-free: same bytes, same headers
        return headers

    def _on_settings(self, payload: bytes) -> None:
        for i in range(0, len(payload) - 5, 6):
            key, value = int.from_bytes(payload[i:i + 2], "big"), int.from_bytes(payload[i + 2:i + 6], "big")
            if key == 4:
                delta, self.peer_window = value - self.peer_window, value
                for s in self.streams.values():
                    s.send_window += delta
            elif key == 5:
                self.peer_max_frame = value
        self._write(frame(SETTINGS, ACK, 0))
        self._flush_blocked()

    def _on_window_update(self, sid: int, increment: int) -> None:
        if sid == 0:
            self.conn_window += increment
        else:
            s = self.streams.get(sid)
            if s is None:
                return
            s.send_window += increment
        self._flush_blocked()

    def _on_goaway(self, last_id: int, debug: bytes) -> None:
        self.closed = True
        why = f"etcd closed the connection (GOAWAY {debug[:200].decode(errors='replace')!r})"
        for sid in [sid for sid in self.streams if sid > last_id]:
            s = self.streams.pop(sid)
            s.refused = True
            s.finish(UNAVAILABLE, why)
        if not self.streams:
            self.close()

    # --- frames out -------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Queue ``data``; everything queued in one turn of the loop leaves in one ``write`` (64 calls
        in flight are then one segment for etcd to read, not 64)."""
        self.out.append(data)
        if not self.flush_soon:
            self.flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _write_later(self, data: bytes) -> None:
        """Queue ``data`` to leave with the next write, or after :data:`ACK_DELAY` at the latest.

        For PING acks: etcd's server pings after each burst of DATA it receives (grpc-go's BDP
        estimator); acking in a write of its own would add a syscall to every call made one at a time.
        """
        self.out.append(data)
        if not self.flush_soon and self.flush_timer is None:
            self.flush_timer = asyncio.get_running_loop().call_later(ACK_DELAY, self._flush)

    def _flush(self) -> None:
        self.flush_soon = False
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        out, self.out = self.out, []
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def open_stream(self, path_block: bytes, deadline: float = 0.0, message: bytes | None = None,
                    end: bool = False) -> Stream:
        """A new stream: its request headers and ``message`` (if given) sent in one write.

        Raises:
            RpcError: UNAVAILABLE when this connection cannot take a new stream.
        """
        if self.closed or self.transport is None or self.transport.is_closing():
            raise RpcError(UNAVAILABLE, "connection to etcd closed")
        sid = self.next_id
        self.next_id += 2
        if self.next_id > LAST_STREAM_ID:
            self.closed = True                     # the next call opens a new connection
        s = Stream(sid, self.peer_window)
        s.deadline = deadline
        self.streams[sid] = s
        head = frame(HEADERS, END_HEADERS, sid, path_block)
        if message is None:
            self._write(head)
            return s
        data = b"\0" + len(message).to_bytes(4, "big") + message
        if self.blocked or len(data) > min(self.conn_window, s.send_window, self.peer_max_frame):
            self._write(head)
            self.blocked.append((s, data, end))
            self._flush_blocked()
        else:
            self.conn_window -= len(data)
            s.send_window -= len(data)
            self._write(head + frame(DATA, END_STREAM if end else 0, sid, data))
        return s

    def send(self, s: Stream, message: bytes, end: bool) -> None:
        """Send one gRPC message on ``s`` (queued while the peer's flow-control windows are short)."""
        data = b"\0" + len(message).to_bytes(4, "big") + message
        if self.blocked or len(data) > min(self.conn_window, s.send_window, self.peer_max_frame):
            self.blocked.append((s, data, end))
            self._flush_blocked()
            return
        self.conn_window -= len(data)
        s.send_window -= len(data)
        self._write(frame(DATA, END_STREAM if end else 0, s.id, data))

    def _flush_blocked(self) -> None:
        while self.blocked:
            s, data, end = self.blocked[0]
            if s.done:
                self.blocked.popleft()
                continue
            n = min(len(data), self.conn_window, s.send_window, self.peer_max_frame)
            if n <= 0:
                return
            last = n == len(data)
            self.conn_window -= n
            s.send_window -= n
            self._write(frame(DATA, END_STREAM if last and end else 0, s.id, data[:n]))
            if last:
                self.blocked.popleft()
            else:
                self.blocked[0] = (s, data[n:], end)

    def reset(self, s: Stream, status: int, message: str) -> None:
        """Cancel ``s`` (RST_STREAM CANCEL) and end it with ``status``."""
        if s.id in self.streams:
            self._write(frame(RST_STREAM, 0, s.id, (8).to_bytes(4, "big")))
        self._end(s, status, message)

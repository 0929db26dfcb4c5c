"""The etcd store's gRPC/HTTP2 client against a scripted HTTP/2 peer on loopback: framing pieces,
error statuses, flow control, PING, GOAWAY, RST_STREAM and deadlines."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Awaitable, Callable

import hpack
import pytest

from apiserver.storage import h2grpc
from apiserver.storage.h2grpc import (CONTINUATION, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PING, RST_STREAM,
                                      SETTINGS, WINDOW_UPDATE, Channel, RpcError, frame)

pytestmark = pytest.mark.unit


class Peer:
    """One accepted connection of the scripted server: read frames, write frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()

    async def handshake(self, settings: bytes = b"") -> None:
        assert await self.reader.readexactly(len(h2grpc.PREFACE)) == h2grpc.PREFACE
        self.writer.write(frame(SETTINGS, 0, 0, settings))

    async def read(self) -> tuple[int, int, int, bytes]:
        head = await self.reader.readexactly(9)
        length = int.from_bytes(head[:3], "big")
        payload = await self.reader.readexactly(length)
        return head[3], head[4], int.from_bytes(head[5:9], "big"), payload

    async def read_until(self, kind: int) -> tuple[int, int, bytes]:
        while True:
            k, flags, sid, payload = await self.read()
            if k == kind:
                return flags, sid, payload

    async def request(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """The next request: (stream id, headers, body bytes up to END_STREAM)."""
        flags, sid, block = await self.read_until(HEADERS)
        headers = [(str(k), str(v)) for k, v in self.dec.decode(block)]
        body = b""
        while True:
            k, flags, s, payload = await self.read()
            if k == DATA and s == sid:
                body += payload
                if flags & END_STREAM:
                    return sid, headers, body

    def headers(self, sid: int, headers: list[tuple[str, str]], end: bool = False) -> bytes:
        return frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), sid, self.enc.encode(headers))

    def reply(self, sid: int, message: bytes) -> None:
        self.writer.write(self.headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
                          + frame(DATA, 0, sid, b"\0" + len(message).to_bytes(4, "big") + message)
                          + self.headers(sid, [("grpc-status", "0")], end=True))


Script = Callable[[Peer], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[Channel]]]:
    servers: list[asyncio.Server] = []
    channels: list[Channel] = []
    tasks: list[asyncio.Task[None]] = []

    async def start(script: Script) -> Channel:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            tasks.append(asyncio.current_task())  # type: ignore[arg-type]
            try:
                await script(Peer(reader, writer))
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        channel = Channel("127.0.0.1", server.sockets[0].getsockname()[1])
        channels.append(channel)
        return channel
    yield start
    for c in channels:
        await c.close()
    for t in tasks:
        t.cancel()
    for s in servers:
        s.close()
        await s.wait_closed()


async def test_reply_split_over_frames_and_error_status(serve) -> None:  # type: ignore[no-untyped-def]
    async def script(peer: Peer) -> None:
        await peer.handshake()
        sid, headers, body = await peer.request()
        assert (":path", "/etcdserverpb.KV/Range") in headers and ("te", "trailers") in headers
        assert body == b"\0\0\0\0\x03abc"
        block = peer.enc.encode([(":status", "200"), ("content-type", "application/grpc")])
        message = b"\0" + (6).to_bytes(4, "big") + b"reply!"
        peer.writer.write(frame(HEADERS, 0, sid, block[:2]) + frame(CONTINUATION, END_HEADERS, sid, block[2:])
                          + frame(DATA, 0, sid, message[:3]) + frame(DATA, 0, sid, message[3:])
                          + peer.headers(sid, [("grpc-status", "0")], end=True))
        sid, _, _ = await peer.request()
        peer.writer.write(peer.headers(sid, [(":status", "200"), ("grpc-status", "9"),
                                             ("grpc-message", "etcdserver:%20bad%20thing")], end=True))
        await peer.reader.read()
    channel = await serve(script)
    assert await channel.unary("/etcdserverpb.KV/Range", b"abc", 5) == b"reply!"
    with pytest.raises(RpcError) as e:
        await channel.unary("/etcdserverpb.KV/Range", b"", 5)
    assert e.value.code == 9 and e.value.message == "etcdserver: bad thing"


async def test_sends_wait_for_the_peers_flow_control_window(serve) -> None:  # type: ignore[no-untyped-def]
    async def script(peer: Peer) -> None:
        await peer.handshake((4).to_bytes(2, "big") + (10).to_bytes(4, "big"))   # INITIAL_WINDOW_SIZE 10
        sid, _, _ = await peer.request()                # sent before our SETTINGS arrived: default window
        peer.reply(sid, b"first")
        flags, sid, _ = await peer.read_until(HEADERS)
        got = b""
        while len(got) < 10:
            k, flags, s, payload = await peer.read()
            if k == DATA:
                got += payload
        assert len(got) == 10 and not flags & END_STREAM           # stopped at the window
        peer.writer.write(frame(WINDOW_UPDATE, 0, sid, (1000).to_bytes(4, "big")))
        while not flags & END_STREAM:
            k, flags, s, payload = await peer.read()
            if k == DATA:
                got += payload
        assert got == b"\0" + (100).to_bytes(4, "big") + b"x" * 100
        peer.reply(sid, b"ok")
        await peer.reader.read()
    channel = await serve(script)
    assert await channel.unary("/etcdserverpb.KV/Put", b"", 5) == b"first"
    assert await channel.unary("/etcdserverpb.KV/Put", b"x" * 100, 5) == b"ok"


async def test_ping_ack_then_goaway_retries_on_a_new_connection(serve) -> None:  # type: ignore[no-untyped-def]
    connections = 0

    async def script(peer: Peer) -> None:
        nonlocal connections
        connections += 1
        await peer.handshake()
        if connections == 1:
            await peer.request()
            peer.writer.write(frame(PING, 0, 0, b"12345678"))
            flags, _, payload = await peer.read_until(PING)
            assert flags & 0x1 and payload == b"12345678"
            peer.writer.write(frame(GOAWAY, 0, 0, (0).to_bytes(4, "big") + (0).to_bytes(4, "big") + b"bye"))
            await peer.reader.read()
            return
        sid, _, _ = await peer.request()
        peer.reply(sid, b"second")
        await peer.reader.read()
    channel = await serve(script)
    # the GOAWAY says stream 1 was never processed: the call goes once more, on a new connection
    assert await channel.unary("/etcdserverpb.KV/Range", b"", 5) == b"second"
    assert connections == 2


async def test_a_processed_call_is_not_retried_after_goaway(serve) -> None:  # type: ignore[no-untyped-def]
    connections = 0

    async def script(peer: Peer) -> None:
        nonlocal connections
        connections += 1
        await peer.handshake()
        await peer.request()                        # stream 1 counts as processed (last id 1)
        peer.writer.write(frame(GOAWAY, 0, 0, (1).to_bytes(4, "big") + (0).to_bytes(4, "big") + b"bye"))
        peer.writer.close()
    channel = await serve(script)
    with pytest.raises(RpcError) as e:
        await channel.unary("/etcdserverpb.KV/Range", b"", 5)
    assert e.value.code == h2grpc.UNAVAILABLE and connections == 1


async def test_deadline_resets_the_stream(serve) -> None:  # type: ignore[no-untyped-def]
    reset = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.handshake()
        _, sid, _ = await peer.read_until(HEADERS)
        _, rsid, payload = await peer.read_until(RST_STREAM)
        assert rsid == sid and payload == (8).to_bytes(4, "big")      # CANCEL
        reset.set()
        await peer.reader.read()
    channel = await serve(script)
    with pytest.raises(RpcError) as e:
        await channel.unary("/etcdserverpb.KV/Range", b"", 0.05)
    assert e.value.code == h2grpc.DEADLINE_EXCEEDED
    await asyncio.wait_for(reset.wait(), 5)


async def test_stream_reset_by_the_peer_and_bidi_messages(serve) -> None:  # type: ignore[no-untyped-def]
    async def script(peer: Peer) -> None:
        await peer.handshake()
        _, sid, _ = await peer.read_until(HEADERS)
        _, _, body = await peer.read_until(DATA)
        assert body == b"\0\0\0\0\x05watch"
        two = b"".join(b"\0" + len(m).to_bytes(4, "big") + m for m in (b"one", b"two"))
        peer.writer.write(peer.headers(sid, [(":status", "200")]) + frame(DATA, 0, sid, two)
                          + frame(RST_STREAM, 0, sid, (2).to_bytes(4, "big")))
        await peer.reader.read()
    channel = await serve(script)
    stream = await channel.open("/etcdserverpb.Watch/Watch")
    stream.send(b"watch")
    assert await stream.recv() == b"one" and await stream.recv() == b"two"
    with pytest.raises(RpcError) as e:
        await stream.recv()
    assert e.value.code == h2grpc.INTERNAL and "reset" in e.value.message

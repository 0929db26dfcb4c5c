"""kubelite.spdy (SPDY/3.1 framing and sessions) and the port-forward stream logic built on it
(kubelet.portforward.Forwarder with the host's loopback standing in for a pod's netns; CLI port specs)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import struct
from pathlib import Path

import pytest

from kubelet import portforward
from kubelite import spdy
from kubelite.cli.common import CliError
from kubelite.cli.portforward import parse_ports

pytestmark = pytest.mark.unit


def test_dictionary_is_the_spdy3_one() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest() == \
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"
    kubectl = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.32")
    if kubectl.exists():                      # the very bytes client-go's spdystream compresses with
        assert spdy.DICTIONARY in kubectl.read_bytes()


def test_codec_round_trip_across_frames_split_anywhere() -> None:
    tx, rx = spdy.Codec(), spdy.Codec()
    wire = (tx.syn_stream(1, {"streamtype": "error", "port": "80", "requestid": "0"}) +
            tx.syn_stream(3, {"Streamtype": "data", "port": "80", "requestid": "0"}) +
            tx.data(3, b"x" * 70000) + tx.data(3, b"", spdy.FLAG_FIN) + tx.ping(7) + tx.rst_stream(1, 5) +
            tx.goaway(3) + tx.syn_reply(2, {}))
    frames = []
    for i in range(0, len(wire), 777):
        frames += rx.feed(wire[i:i + 777])
    kinds = [(f.kind, f.stream_id) for f in frames]
    assert kinds == [(spdy.SYN_STREAM, 1), (spdy.SYN_STREAM, 3), (0, 3), (0, 3), (spdy.PING, 0),
                     (spdy.RST_STREAM, 1), (spdy.GOAWAY, 3), (spdy.SYN_REPLY, 2)]
    assert frames[1].headers == {"streamtype": "data", "port": "80", "requestid": "0"}   # names lower-cased
    assert len(frames[2].data) == 70000 and frames[3].fin and frames[4].value == 7 and frames[5].value == 5
    # a control frame of another SPDY version is refused
    with pytest.raises(spdy.ProtocolError):
        spdy.Codec().feed(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1")


async def _pair(on_stream: object = None) -> tuple[spdy.Session, spdy.Session]:
    """A client and a server session wired back to back."""
    server: spdy.Session
    client: spdy.Session

    async def to_server(b: bytes) -> None:
        await server.feed(b)

    async def to_client(b: bytes) -> None:
        await client.feed(b)
    server = spdy.Session(to_client, server=True, on_stream=on_stream)  # type: ignore[arg-type]
    client = spdy.Session(to_server, server=False)
    return client, server


async def test_session_streams_fin_reset_and_ping() -> None:
    accepted: list[spdy.Stream] = []
    client, server = await _pair(accepted.append)
    s = await client.open({"streamtype": "data", "port": "1"})
    assert s.id == 1 and accepted[0].headers["port"] == "1"
    await s.write(b"hello " * 10000)
    await s.close()
    got = b""
    while chunk := await accepted[0].read():
        got += chunk
    assert got == b"hello " * 10000
    await accepted[0].write(b"back")
    await accepted[0].close()
    assert await s.read() == b"back" and await s.read() == b""
    s2 = await client.open({"streamtype": "error"})
    assert s2.id == 3
    await accepted[1].reset()
    assert await s2.read() == b""
    sent: list[bytes] = []

    async def capture(b: bytes) -> None:
        sent.append(b)
    lone = spdy.Session(capture, server=True)
    await lone.feed(spdy.Codec().ping(5))                  # the client's ping is echoed, our own is not
    await lone.feed(spdy.Codec().ping(6))
    assert sent == [spdy.Codec().ping(5)]


async def _forward_once(port: int, payload: bytes) -> tuple[bytes, bytes]:
    """What the client reads on the data and the error stream for one connection to ``port``."""
    async with asyncio.TaskGroup() as tg:
        fw = portforward.Forwarder(None, "default/p, uid u", tg)
        client, _ = await _pair(fw.on_stream)
        headers = {"streamtype": "error", "port": str(port), "requestid": "0"}
        err = await client.open(headers)
        await err.close()
        data = await client.open({**headers, "streamtype": "data"})
        await data.write(payload)
        await data.close()
        out = msg = b""
        while chunk := await data.read():
            out += chunk
        while chunk := await err.read():
            msg += chunk
    return out, msg


async def test_forwarder_relays_to_a_local_port_and_reports_refusals() -> None:
    async def echo_upper(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write((await r.read()).upper())       # reads to the client's FIN, answers, closes
        await w.drain()
        w.close()
    server = await asyncio.start_server(echo_upper, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        payload = os.urandom(100_000).hex().encode()
        out, msg = await _forward_once(port, payload)
        assert (out, msg) == (payload.upper(), b"")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    out, msg = await _forward_once(closed, b"x")
    assert out == b"" and msg.startswith(f"error forwarding port {closed} to pod default/p, uid u: failed to "
                                         f"connect to localhost:{closed}".encode()), msg


def test_cli_port_specs() -> None:
    assert parse_ports(["8080", "18080:80", ":53"]) == [(8080, 8080), (18080, 80), (0, 53)]
    for bad in ("x", "1:y", "70000", "0"):
        with pytest.raises(CliError):
            parse_ports([bad])


async def test_http_upgrade_accept_and_dial() -> None:
    """kubelite.httpupgrade over real sockets: an aiohttp handler takes the connection after its 101 (the
    bytes that follow reach it, pipelined or not), and a refusal comes back with its body."""
    from aiohttp import web

    from kubelite import httpupgrade

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade") != "SPDY/3.1":
            return web.json_response({"kind": "Status", "code": 400}, status=400)
        resp, conn = await httpupgrade.accept(request, {"Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "p1"})
        while data := await conn.read():
            await conn.write(data.upper())
        return resp

    app = web.Application()
    app.router.add_post("/up", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        status, got, conn = await httpupgrade.dial(
            "127.0.0.1", port, "POST", "/up", [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")])
        assert status == 101 and got["x-stream-protocol-version"] == ["p1"]
        assert isinstance(conn, httpupgrade.RawConnection)
        await conn.write(b"hello")
        assert await conn.read() == b"HELLO"
        await conn.write(b"x" * 300_000)
        got_back = b""
        while len(got_back) < 300_000:
            got_back += await conn.read()
        assert got_back == b"X" * 300_000
        conn.close()
        status, _, refusal = await httpupgrade.dial("127.0.0.1", port, "POST", "/up", [("Upgrade", "h2c")])
        assert status == 400 and isinstance(refusal, httpupgrade.Refusal) and b'"code": 400' in refusal.body
    finally:
        await runner.cleanup()

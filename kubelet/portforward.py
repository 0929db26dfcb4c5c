"""``port-forward``: TCP connections into a pod's network namespace, multiplexed as SPDY streams.

The client (kubectl ≥ 1.31, or 1.30 with ``KUBECTL_PORT_FORWARD_WEBSOCKETS=true``, or ``kubelite
port-forward``) opens a WebSocket with subprotocol ``SPDY/3.1+portforward.k8s.io`` and speaks SPDY/3.1
inside its binary messages (:mod:`kubelite.spdy`). For each local connection it opens two streams with
headers ``streamtype`` (``error`` then ``data``), ``port`` and ``requestid``. Once both have arrived we
connect to ``localhost:<port>`` inside the pod's network namespace and copy bytes both ways; when the pod
side ends we half-close the data stream, then close the error stream, empty on success or carrying the
message of what went wrong (kubectl prints it and drops the forwarding). The socket is made by a
throwaway thread that ``setns``-es into the pod's netns (network namespaces are per thread), so the
kubelet's own threads never change namespace and nothing leaves the machine.

kubectl ≤ 1.30 (without the opt-in) upgrades the HTTP connection to raw SPDY/3.1 instead
(``X-Stream-Protocol-Version: portforward.k8s.io``); the same streams then run over the raw connection
(:mod:`kubelite.httpupgrade`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from typing import Any

from aiohttp import WSMsgType, web

from kubelite import httpupgrade, spdy
from kubelite.netns import call_in_netns

logger = logging.getLogger(__name__)
PROTOCOL = "SPDY/3.1+portforward.k8s.io"
STREAM_PROTOCOL = "portforward.k8s.io"
CONNECT_TIMEOUT = 10.0
LINGER = 1.0           # after one direction ends, how long the other may still run (as containerd does)


def _status(message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": "BadRequest", "code": 400}, status=400)


def connect_in_netns(netns_path: str | None, port: int) -> socket.socket:
    """A TCP socket connected to ``localhost:port`` in the network namespace at ``netns_path`` (None: this
    one). Blocking; raises OSError with both attempts' errors."""
    return call_in_netns(netns_path, lambda: _dial_localhost(port), "kubelite-portforward-connect")


def _dial_localhost(port: int) -> socket.socket:
    errors = []
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        s.settimeout(CONNECT_TIMEOUT)
        try:
            s.connect((addr, port))
        except OSError as e:
            s.close()
            errors.append(f"{'IPv4' if family == socket.AF_INET else 'IPv6'}: dial {addr} port {port}: "
                          f"{e.strerror or e}")
            continue
        s.setblocking(False)
        return s
    raise OSError(f"failed to connect to localhost:{port} inside the pod's network namespace, " + " ".join(errors))


class Forwarder:
    """The streams of one port-forward session: pairs them by request id and runs each connection."""

    def __init__(self, netns_path: str | None, pod_desc: str, tg: asyncio.TaskGroup) -> None:
        self.netns_path = netns_path
        self.pod_desc = pod_desc
        self.tg = tg
        self.pending: dict[str, dict[str, spdy.Stream]] = {}

    def on_stream(self, stream: spdy.Stream) -> None:
        h = stream.headers
        kind, rid = h.get("streamtype", ""), h.get("requestid", h.get("port", ""))
        if kind not in ("error", "data"):
            self.tg.create_task(stream.reset(spdy.RST_PROTOCOL_ERROR))
            return
        pair = self.pending.setdefault(rid, {})
        pair[kind] = stream
        if len(pair) == 2:
            del self.pending[rid]
            self.tg.create_task(self.forward(pair["error"], pair["data"]))

    async def forward(self, err: spdy.Stream, data: spdy.Stream) -> None:
        session = data.session
        try:
            port = int(data.headers.get("port", ""))
            if not 0 < port < 65536:
                raise ValueError(port)
        except ValueError:
            await self._fail(err, data, f"invalid port header {data.headers.get('port')!r}")
            return
        try:
            sock = await _in_thread(connect_in_netns, self.netns_path, port)
        except OSError as e:
            await self._fail(err, data, f"error forwarding port {port} to pod {self.pod_desc}: {e}")
            return
        try:
            await _splice(sock, data)
        finally:
            sock.close()
            with contextlib.suppress(ConnectionError):
                await data.close()
                await err.close()
            session.forget(err)
            session.forget(data)

    @staticmethod
    async def _fail(err: spdy.Stream, data: spdy.Stream, message: str) -> None:
        logger.info("port-forward: %s", message)
        with contextlib.suppress(ConnectionError):
            await err.write(message.encode())
            await err.close()
            await data.close()
        err.session.forget(err)
        data.session.forget(data)


async def _in_thread(fn: Any, *args: Any) -> Any:
    """Run ``fn`` on its own thread (never on the default pool: it may change that thread's namespace)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, exc: BaseException | None) -> None:
        if fut.done():                                   # the caller was cancelled: don't leak the socket
            if isinstance(value, socket.socket):
                value.close()
        elif exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)

    def run() -> None:
        try:
            loop.call_soon_threadsafe(settle, fn(*args), None)
        except BaseException as e:
            loop.call_soon_threadsafe(settle, None, e)
    threading.Thread(target=run, name="kubelite-portforward").start()
    return await fut


async def _splice(sock: socket.socket, stream: spdy.Stream) -> None:
    """Copy pod → stream until the pod side ends (then FIN), and stream → pod until the client's FIN
    (then shut the socket's write side); when one direction ends the other gets :data:`LINGER` seconds."""
    loop = asyncio.get_running_loop()

    async def pod_to_client() -> None:
        while chunk := await loop.sock_recv(sock, 64 * 1024):
            await stream.write(chunk)
        await stream.close()

    async def client_to_pod() -> None:
        while chunk := await stream.read():
            await loop.sock_sendall(sock, chunk)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)

    tasks = [asyncio.ensure_future(pod_to_client()), asyncio.ensure_future(client_to_pod())]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending, timeout=LINGER)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError, ConnectionError):
                await t


def offered_stream_protocols(request: web.Request) -> list[str]:
    """The ``X-Stream-Protocol-Version`` values of an SPDY upgrade, in the client's order."""
    return [v.strip() for h in request.headers.getall("X-Stream-Protocol-Version", []) for v in h.split(",")
            if v.strip()]


async def serve_portforward(request: web.Request, netns_path: str | None, pod_desc: str) -> web.StreamResponse:
    """Serve one port-forward session on ``request``: a WebSocket tunnel or a raw SPDY upgrade."""
    if request.headers.get("Upgrade", "").lower().startswith("spdy"):
        if STREAM_PROTOCOL not in offered_stream_protocols(request):
            return _status(f"port-forward over SPDY needs X-Stream-Protocol-Version {STREAM_PROTOCOL}")
        resp, conn = await httpupgrade.accept(request, {"Upgrade": "SPDY/3.1",
                                                        "X-Stream-Protocol-Version": STREAM_PROTOCOL})
        try:
            await _session(conn.read, conn.write, netns_path, pod_desc)
        finally:
            conn.close()
        return resp
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), heartbeat=30.0, max_msg_size=0)
    ready = ws.can_prepare(request)
    if not ready.ok or ready.protocol != PROTOCOL:
        return _status(f"port-forward needs a WebSocket upgrade with subprotocol {PROTOCOL}, or an SPDY/3.1 "
                       f"upgrade with X-Stream-Protocol-Version {STREAM_PROTOCOL}")
    await ws.prepare(request)

    async def read() -> bytes:
        while True:
            msg = await ws.receive()
            if msg.type != WSMsgType.BINARY:
                return b""                               # close (or a text frame, which the tunnel never sends)
            if msg.data:
                return bytes(msg.data)
    await _session(read, ws.send_bytes, netns_path, pod_desc)
    await ws.close()
    return ws


async def _session(read: Any, send: Any, netns_path: str | None, pod_desc: str) -> None:
    try:
        async with asyncio.TaskGroup() as tg:
            forwarder = Forwarder(netns_path, pod_desc, tg)
            await spdy.serve(read, send, forwarder.on_stream)
    except* (ConnectionError, RuntimeError) as eg:        # the client went away mid-write
        logger.debug("port-forward %s ended: %s", pod_desc, eg.exceptions)

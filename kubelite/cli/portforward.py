"""``kubelite port-forward POD [LOCAL:]REMOTE...``: local TCP ports forwarded to a pod, through the apiserver.

The same wire as kubectl ≥ 1.31: one WebSocket to ``pods/NAME/portforward`` with subprotocol
``SPDY/3.1+portforward.k8s.io`` (opened by :func:`kubelite.cli.exec_stream.connect`), SPDY/3.1 inside it
(:mod:`kubelite.spdy`), and for each accepted local connection an ``error`` and a ``data`` stream with the
same ``requestid``. Runs until interrupted or until the connection to the pod is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

import aiohttp

from kubelite import kubeconfig, spdy
from kubelite.api.resources import PODS
from kubelite.cli import common, exec_stream
from kubelite.cli.common import CliError
from kubelite.cli.logs import _pod_name

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
DRAIN = 5.0


def main(argv: list[str]) -> int:
    return common.run(_port_forward, argv)


def parse_ports(specs: list[str]) -> list[tuple[int, int]]:
    """``8080`` → (8080, 8080); ``18080:80`` → (18080, 80); ``:80`` → (0 = any free port, 80)."""
    out = []
    for spec in specs:
        local, _, remote = spec.rpartition(":") if ":" in spec else (spec, "", spec)
        try:
            lp, rp = int(local) if local else 0, int(remote)
        except ValueError:
            raise CliError(f"error parsing port '{spec}': use [LOCAL_PORT:]REMOTE_PORT") from None
        if not 0 <= lp < 65536 or not 0 < rp < 65536:
            raise CliError(f"port out of range in '{spec}'")
        out.append((lp, rp))
    return out


def _port_forward(argv: list[str]) -> int:
    p = common.parser("port-forward", "Forward one or more local ports to a pod.")
    p.add_argument("pod", help="POD or pod/POD")
    p.add_argument("ports", nargs="+", metavar="[LOCAL_PORT:]REMOTE_PORT")
    p.add_argument("--address", default="127.0.0.1", help="local address to listen on (default 127.0.0.1)")
    args = p.parse_args(argv)
    ports = parse_ports(args.ports)
    c = common.client(args)
    ns = args.namespace or c.namespace
    name = _pod_name(args.pod)
    phase = (c.get(PODS, name, ns).get("status") or {}).get("phase")
    if phase != "Running":
        raise CliError(f"unable to forward port because pod is not running. Current status={phase}")
    try:
        return asyncio.run(forward(c.config, PODS.path(ns, name, "portforward"), ports, args.address))
    except KeyboardInterrupt:
        return 0


async def forward(config: kubeconfig.ClusterConfig, path: str, ports: list[tuple[int, int]], address: str) -> int:
    """Listen on each local port and forward every connection until the tunnel closes (then 1)."""
    async with aiohttp.ClientSession() as http:
        async with await exec_stream.connect(http, config, path, [], (PROTOCOL,), "port-forward") as ws:
            if ws.protocol != PROTOCOL:
                raise CliError(f"port-forward: the server did not agree to {PROTOCOL}")
            async with asyncio.TaskGroup() as tg:
                session = spdy.Session(ws.send_bytes, server=False)
                ids = iter(range(1 << 30))
                servers = []
                for local, remote in ports:
                    def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter, remote: int = remote) -> None:
                        bound = w.get_extra_info("sockname")[1]
                        tg.create_task(_connection(session, r, w, bound, remote, next(ids)))
                    server = await asyncio.start_server(handler, address, local)
                    servers.append(server)
                    bound = server.sockets[0].getsockname()[1]
                    print(f"Forwarding from {address}:{bound} -> {remote}", flush=True)
                try:
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.BINARY:
                            break
                        await session.feed(msg.data)
                finally:
                    session.close_streams()
                    for server in servers:
                        server.close()
    print("error: lost connection to pod", file=sys.stderr)
    return 1


async def _connection(session: spdy.Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      local: int, remote: int, request_id: int) -> None:
    print(f"Handling connection for {local}", flush=True)
    headers = {"streamtype": "error", "port": str(remote), "requestid": str(request_id)}
    try:
        err = await session.open(headers)
        await err.close()                                   # we never write to the error stream
        data = await session.open({**headers, "streamtype": "data"})
    except (asyncio.TimeoutError, ConnectionError) as e:
        print(f"error: port-forward {local} -> {remote}: {e or 'no reply'}", file=sys.stderr)
        writer.close()
        return

    async def up() -> None:
        while chunk := await reader.read(64 * 1024):
            await data.write(chunk)
        await data.close()

    async def down() -> None:
        while chunk := await data.read():
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def errors() -> str:
        message = b""
        while chunk := await err.read():
            message += chunk
        return message.decode(errors="replace")

    tasks: list[asyncio.Task[Any]] = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
    try:
        # the server closes the error stream once it is done with this connection (data FIN came before)
        message = await errors()
        if message:
            print(f"error: an error occurred forwarding {local} -> {remote}: {message}", file=sys.stderr)
        else:
            await asyncio.wait(tasks[1:], timeout=DRAIN)      # what is queued still reaches the local side
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await t
        session.forget(err)
        session.forget(data)
        writer.close()

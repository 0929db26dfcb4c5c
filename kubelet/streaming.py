"""``exec`` over WebSocket with the Kubernetes channel protocols (v5/v4.channel.k8s.io).

Each binary frame starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (a ``Status``
JSON: Success, or Failure with reason NonZeroExitCode and the code in ``details.causes[ExitCode]``),
4 resize (``{"Width":…,"Height":…}``), and in v5 255 close (the next byte names the channel the
client closed, i.e. stdin EOF).

kubectl < 1.30 upgrades to raw SPDY/3.1 instead (:mod:`kubelite.httpupgrade`, :mod:`kubelite.spdy`) with
``X-Stream-Protocol-Version: v4.channel.k8s.io``: the client opens one stream per channel (header
``streamtype``: error, stdin, stdout, stderr, resize), half-closes stdin at EOF, and reads the same
``Status`` JSON from the error stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Sequence

from aiohttp import WSMsgType, web

from kubelet.cri import CriError, ExecProcess, RuntimeService
from kubelite import httpupgrade, spdy

logger = logging.getLogger(__name__)
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
SPDY_PROTOCOL = "v4.channel.k8s.io"
STREAM_WAIT = 30.0


def status_failure(message: str, code: int, reason: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def exit_status(cmd: Sequence[str], exit_code: int) -> dict[str, Any]:
    if exit_code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command {list(cmd)}, "
                       f"exit code {exit_code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]}}


async def serve_exec(request: web.Request, runtime: RuntimeService, container_id: str, cmd: list[str], *,
                     tty: bool, stdin: bool, stdout: bool = True, stderr: bool = True) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower().startswith("spdy"):
        return await _serve_exec_spdy(request, runtime, container_id, cmd, tty=tty, stdin=stdin, stdout=stdout,
                                      stderr=stderr and not tty)
    ws = web.WebSocketResponse(protocols=PROTOCOLS, heartbeat=30.0)
    if not ws.can_prepare(request).ok:
        return web.json_response(status_failure("exec needs a WebSocket upgrade with subprotocol "
                                                "v5.channel.k8s.io or v4.channel.k8s.io", 400, "BadRequest"),
                                 status=400)
    await ws.prepare(request)
    v5 = ws.ws_protocol == "v5.channel.k8s.io"
    try:
        proc = await runtime.exec(container_id, cmd, tty=tty, stdin=stdin)
    except CriError as exc:
        await ws.send_bytes(bytes([ERROR]) + json.dumps(status_failure(str(exc), 500, "InternalError")).encode())
        await ws.close()
        return ws
    try:
        code = await _pump(ws, proc, v5=v5, stdout=stdout, stderr=stderr and not tty)
        await ws.send_bytes(bytes([ERROR]) + json.dumps(exit_status(cmd, code)).encode())
    except (ConnectionResetError, asyncio.CancelledError):
        await proc.kill()
        raise
    finally:
        await ws.close()
    return ws


async def _pump(ws: web.WebSocketResponse, proc: ExecProcess, *, v5: bool, stdout: bool, stderr: bool) -> int:
    async def out(reader: asyncio.StreamReader | None, channel: int, forward: bool) -> None:
        if reader is None:
            return
        while chunk := await reader.read(32 * 1024):
            if forward and not ws.closed:
                await ws.send_bytes(bytes([channel]) + chunk)

    async def inbound() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == STDIN and proc.stdin is not None:
                proc.stdin.write(data)
                await proc.stdin.drain()
            elif channel == RESIZE:
                try:
                    size = json.loads(data)
                    proc.resize(int(size.get("Width", 80)), int(size.get("Height", 24)))
                except (ValueError, TypeError):
                    pass
            elif channel == CLOSE and v5 and data[:1] == bytes([STDIN]) and proc.stdin is not None:
                proc.stdin.close()
        # the client went away
        await proc.kill()

    async with asyncio.TaskGroup() as tg:
        reader = tg.create_task(inbound())
        outs = [tg.create_task(out(proc.stdout, STDOUT, stdout)), tg.create_task(out(proc.stderr, STDERR, stderr))]
        code = await proc.wait()
        await asyncio.gather(*outs)
        reader.cancel()
    return code


async def _serve_exec_spdy(request: web.Request, runtime: RuntimeService, container_id: str, cmd: list[str], *,
                           tty: bool, stdin: bool, stdout: bool, stderr: bool) -> web.StreamResponse:
    offered = [v.strip() for h in request.headers.getall("X-Stream-Protocol-Version", []) for v in h.split(",")]
    if SPDY_PROTOCOL not in offered:
        return web.json_response(status_failure(f"exec over SPDY needs X-Stream-Protocol-Version {SPDY_PROTOCOL} "
                                                f"(offered: {', '.join(offered) or 'none'})", 400, "BadRequest"),
                                 status=400)
    wanted = {"error"} | {n for n, on in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr),
                                           ("resize", tty)) if on}
    streams: dict[str, spdy.Stream] = {}
    all_there = asyncio.Event()

    def on_stream(s: spdy.Stream) -> None:
        kind = s.headers.get("streamtype", "")
        if kind in wanted:
            streams[kind] = s
            if set(streams) == wanted:
                all_there.set()

    resp, conn = await httpupgrade.accept(request, {"Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": SPDY_PROTOCOL})
    try:
        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(spdy.serve(conn.read, conn.write, on_stream))
            try:
                await asyncio.wait_for(all_there.wait(), STREAM_WAIT)
            except asyncio.TimeoutError:
                logger.info("exec over SPDY: only streams %s of %s arrived", sorted(streams), sorted(wanted))
                reader.cancel()
                return resp
            await _run_spdy(runtime, container_id, cmd, streams, tty=tty, stdin=stdin, closed=reader)
            reader.cancel()
    except* (ConnectionError, RuntimeError) as eg:
        logger.debug("exec over SPDY ended: %s", eg.exceptions)
    finally:
        conn.close()
    return resp


async def _run_spdy(runtime: RuntimeService, container_id: str, cmd: list[str], streams: dict[str, spdy.Stream], *,
                    tty: bool, stdin: bool, closed: asyncio.Task[Any]) -> None:
    error = streams["error"]
    try:
        proc = await runtime.exec(container_id, cmd, tty=tty, stdin=stdin)
    except CriError as exc:
        await error.write(json.dumps(status_failure(str(exc), 500, "InternalError")).encode())
        await error.close()
        return

    async def out(reader: asyncio.StreamReader | None, stream: spdy.Stream | None) -> None:
        if reader is None:
            return
        while chunk := await reader.read(32 * 1024):
            if stream is not None:
                await stream.write(chunk)
        if stream is not None:
            await stream.close()

    async def copy_stdin(stream: spdy.Stream) -> None:
        while chunk := await stream.read():
            if proc.stdin is not None:
                proc.stdin.write(chunk)
                await proc.stdin.drain()
        if proc.stdin is not None:
            proc.stdin.close()

    async def resizes(stream: spdy.Stream) -> None:
        buf, decoder = "", json.JSONDecoder()
        while chunk := await stream.read():
            buf += chunk.decode(errors="replace")
            while buf.strip():
                try:
                    size, end = decoder.raw_decode(buf.lstrip())
                except ValueError:
                    break
                buf = buf.lstrip()[end:]
                if isinstance(size, dict):
                    proc.resize(int(size.get("Width", 80)), int(size.get("Height", 24)))

    async with asyncio.TaskGroup() as tg:
        helpers = [tg.create_task(f) for f in ([copy_stdin(streams["stdin"])] if "stdin" in streams else []) +
                   ([resizes(streams["resize"])] if "resize" in streams else [])]
        outs = [tg.create_task(out(proc.stdout, streams.get("stdout"))),
                tg.create_task(out(proc.stderr, streams.get("stderr")))]
        waiter = tg.create_task(proc.wait())
        done, _ = await asyncio.wait([waiter, closed], return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:                      # the client went away: stop the process
            await proc.kill()
        code = await waiter
        await asyncio.gather(*outs)
        for h in helpers:
            h.cancel()
    await error.write(json.dumps(exit_status(cmd, code)).encode())
    await error.close()

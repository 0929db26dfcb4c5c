"""``exec`` over WebSocket with the Kubernetes channel protocols (v5/v4.channel.k8s.io).

Each binary frame starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (a ``Status``
JSON: Success, or Failure with reason NonZeroExitCode and the code in ``details.causes[ExitCode]``),
4 resize (``{"Width":…,"Height":…}``), and in v5 255 close (the next byte names the channel the
client closed, i.e. stdin EOF). An SPDY upgrade (kubectl < 1.30 only) is answered with a 400 Status.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Sequence

from aiohttp import WSMsgType, web

from kubelet.cri import CriError, ExecProcess, RuntimeService

logger = logging.getLogger(__name__)
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


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


def spdy_refusal() -> web.Response:
    body = status_failure("SPDY is not supported by this kubelet: exec needs a WebSocket client "
                          "(v5.channel.k8s.io), e.g. kubectl >= 1.30", 400, "BadRequest")
    return web.json_response(body, status=400)


async def serve_exec(request: web.Request, runtime: RuntimeService, container_id: str, cmd: list[str], *,
                     tty: bool, stdin: bool, stdout: bool = True, stderr: bool = True) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower().startswith("spdy"):
        return spdy_refusal()
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

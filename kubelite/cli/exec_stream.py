"""The client side of ``pods/exec`` over WebSocket (``v5.channel.k8s.io``, ``v4`` as fallback), and the
WebSocket connection :mod:`kubelite.cli.portforward` shares.

Wires the terminal to the remote process: stdin frames on channel 0 (and, in v5, a close of channel 0
at end of input), stdout/stderr from channels 1 and 2, terminal size on channel 4, and the exit code
from the final ``Status`` on channel 3. With a TTY the local terminal is put in raw mode for the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import aiohttp

from kubelite import kubeconfig
from kubelite.api import errors

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def exit_code(status: dict[str, Any]) -> int:
    """The remote command's exit code from the channel-3 ``Status`` (kubectl's reading of it)."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message") or 1)
    raise errors.from_status(status, int(status.get("code") or 500))


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def connect(session: aiohttp.ClientSession, config: kubeconfig.ClusterConfig, path: str,
                  query: list[tuple[str, str]], protocols: tuple[str, ...], what: str
                  ) -> aiohttp.ClientWebSocketResponse:
    """A WebSocket to the apiserver's ``path`` (a pods/exec or pods/portforward URL) with one of ``protocols``;
    a refused upgrade is the matching ApiError."""
    url = f"{config.server.rstrip('/')}{path}" + (f"?{urlencode(query)}" if query else "")
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    ssl: Any = kubeconfig.ssl_context(config) if config.is_https else None
    try:
        return await session.ws_connect(url, protocols=protocols, headers=headers, ssl=ssl if ssl else True,
                                        max_msg_size=0)
    except aiohttp.WSServerHandshakeError as exc:
        raise errors.from_status(None, exc.status, f"{what}: {exc.message}") from None


async def run(config: kubeconfig.ClusterConfig, path: str, container: str, command: list[str], *,
              stdin: bool, tty: bool) -> int:
    """Run ``command`` in ``container`` of the pod at ``path`` (…/pods/NAME/exec); its exit code."""
    query = [("container", container), ("stdout", "true"), ("stderr", "false" if tty else "true"),
             ("stdin", "true" if stdin else "false"), ("tty", "true" if tty else "false")]
    query += [("command", part) for part in command]
    async with aiohttp.ClientSession() as session:
        async with await connect(session, config, path, query, PROTOCOLS, "exec") as ws:
            with _raw_terminal(sys.stdin.fileno()) if tty else contextlib.nullcontext():
                return await _pump(ws, stdin=stdin, tty=tty)


async def _pump(ws: aiohttp.ClientWebSocketResponse, *, stdin: bool, tty: bool) -> int:
    loop = asyncio.get_running_loop()
    v5 = ws.protocol == "v5.channel.k8s.io"
    sender: asyncio.Task[None] | None = None
    if tty:
        async def resize() -> None:
            size = shutil.get_terminal_size()
            await ws.send_bytes(bytes([RESIZE]) + json.dumps({"Width": size.columns, "Height": size.lines}).encode())
        await resize()
        loop.add_signal_handler(signal.SIGWINCH, lambda: loop.create_task(resize()))
    if stdin:
        sender = loop.create_task(_send_stdin(ws, v5))
    code = 0
    try:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == STDOUT:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            elif channel == STDERR:
                sys.stderr.buffer.write(data)
                sys.stderr.buffer.flush()
            elif channel == ERROR and data:
                code = exit_code(json.loads(data))
    finally:
        if tty:
            loop.remove_signal_handler(signal.SIGWINCH)
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    return code


async def _send_stdin(ws: aiohttp.ClientWebSocketResponse, v5: bool) -> None:
    """Copy local stdin to channel 0 until EOF, then (v5) tell the server stdin is closed.

    Reads are driven by the event loop (``add_reader``), never by a blocked thread that would keep the
    process alive after the command ended; a regular file (which epoll refuses) is read directly."""
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        chunks.put_nowait(data)
        if not data:
            loop.remove_reader(fd)

    try:
        loop.add_reader(fd, readable)
    except PermissionError:                 # a regular file: it never blocks
        while data := os.read(fd, 65536):
            await ws.send_bytes(bytes([STDIN]) + data)
    else:
        try:
            while data := await chunks.get():
                await ws.send_bytes(bytes([STDIN]) + data)
        finally:
            loop.remove_reader(fd)
    if v5:
        await ws.send_bytes(bytes([CLOSE, STDIN]))

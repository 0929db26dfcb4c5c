"""The asyncio side of the fork server: start it once (``python -S -m kubelet.runtime.ociruntime.forkserver``)
and send it requests over its ``SOCK_SEQPACKET`` socket (one JSON request per connection, fds in SCM_RIGHTS)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from typing import Any


class ForkServerError(Exception):
    """The fork server refused or failed a request; ``str()`` is its one-line reason."""


class ForkServerClient:
    """The asyncio side: starts the server once and sends it requests."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server process (blocking, ~100 ms; call via ``asyncio.to_thread``)."""
        for p in (self.path, f"{self.path}.create"):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        env["PYTHONPATH"] = root + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        log = open(self.path + ".log", "ab")  # its stderr: the caller's would be held open by every shim
        try:
            self.proc = subprocess.Popen([sys.executable, "-S", "-m", "kubelet.runtime.ociruntime.forkserver",
                                          self.path],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env)
        finally:
            log.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.proc.stdout.close()
        if line != b"ready\n":
            raise ForkServerError("fork server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        for p in (self.path, f"{self.path}.create"):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def ensure(self) -> None:
        """Start the server unless it runs (first use: listings never need it; or it died). In the event
        loop's thread: the server dies with the thread that started it (PDEATHSIG)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()

    def send(self, req: dict[str, Any], fds: list[int] | None = None) -> socket.socket:
        """Send a request from any thread (after ``ensure``); ``answer`` reads the reply on the loop."""
        if self.proc is None:
            raise ForkServerError("fork server not started")
        return self._connect(req, fds, start=False)

    async def answer(self, s: socket.socket, op: str) -> dict[str, Any]:
        """The reply to a request ``send`` made; raises ForkServerError with the server's or child's error."""
        try:
            data = await asyncio.get_running_loop().sock_recv(s, 1 << 20)
        finally:
            s.close()
        if not data:
            raise ForkServerError(f"{op}: no answer (the child died)")
        msg = json.loads(data)
        if "error" in msg:
            raise ForkServerError(msg["error"])
        return msg

    def _connect(self, req: dict[str, Any], fds: list[int] | None = None, start: bool = True) -> socket.socket:
        if start:
            self.ensure()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(f"{self.path}.create" if req.get("op") == "create" else self.path)  # (forkserver.create_path)
        data = json.dumps(req).encode()
        if fds:
            socket.send_fds(s, [data], fds)
        else:
            s.send(data)
        s.setblocking(False)
        return s

    async def call(self, req: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        """One request, one answer; raises ForkServerError with the server's or child's error."""
        return await self.answer(self._connect(req, fds), str(req.get("op")))

    async def exec(self, req: dict[str, Any], fds: list[int]) -> tuple[int, asyncio.Future[int]]:
        """Start an exec; returns its helper pid and a future for its exit code."""
        s = self._connect(dict(req, op="exec"), fds)
        loop = asyncio.get_running_loop()
        data = await loop.sock_recv(s, 65536)
        msg = json.loads(data) if data else {"error": "no answer"}
        if "error" in msg:
            s.close()
            raise ForkServerError(msg["error"])

        async def _wait() -> int:
            try:
                d = await loop.sock_recv(s, 65536)
                return int(json.loads(d)["exit"]) if d else 255
            finally:
                s.close()
        return int(msg["pid"]), asyncio.ensure_future(_wait())

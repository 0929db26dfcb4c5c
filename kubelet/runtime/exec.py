"""Exec into a running container through the fork server: pipes or a pty wired to an ``ExecProcess``.

The process joins all the container's namespaces and its cgroup (``ociruntime.ops.exec_in``); its stdio
fds cross to the fork server in ``SCM_RIGHTS``, so the asyncio side only holds the other ends.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
import socket
import struct
import termios
from typing import Any

from kubelet import cri
from kubelet.runtime.ociruntime.client import ForkServerClient


class Exec:
    """A running exec (implements ``cri.ExecProcess``)."""

    def __init__(self, pid: int, done: "asyncio.Future[int]", stdin: asyncio.StreamWriter | None,
                 stdout: asyncio.StreamReader, stderr: asyncio.StreamReader | None, master: int | None) -> None:
        self.pid, self._done, self._master = pid, done, master
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr

    async def wait(self) -> int:
        return await self._done

    def resize(self, width: int, height: int) -> None:
        if self._master is not None:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)  # its child (the process) has PDEATHSIG=SIGKILL
        except ProcessLookupError:
            pass
        await asyncio.shield(self._done)


class _PtyProtocol(asyncio.StreamReaderProtocol):
    """A pty master reads EIO once the last slave is closed: that is its end of file."""

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, OSError) and exc.errno == errno.EIO:
            exc = None
        super().connection_lost(exc)


async def _reader(fd: int, pty_master: bool = False) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    proto = _PtyProtocol if pty_master else asyncio.StreamReaderProtocol
    await loop.connect_read_pipe(lambda: proto(reader), os.fdopen(fd, "rb", 0))
    return reader


async def _writer(fd: int) -> asyncio.StreamWriter:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(fd, "wb", 0))
    return asyncio.StreamWriter(transport, protocol, None, loop)


async def start(fs: ForkServerClient, oci_root: str, cid: str, process: dict[str, Any], *, tty: bool,
                stdin: bool) -> Exec:
    if tty:
        # a console socket: the exec helper opens the pty in the container's own devpts and sends its master
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid, done = await fs.exec({"root": oci_root, "id": cid, "process": process}, [theirs.fileno()])
            theirs.close()
            ours.settimeout(10)
            _msg, fds, _flags, _addr = await asyncio.to_thread(socket.recv_fds, ours, 16, 1)
        finally:
            theirs.close()
            ours.close()
        if not fds:
            raise cri.CriError(f"exec in {cid}: no terminal from the container")
        master = fds[0]
        out = await _reader(os.dup(master), pty_master=True)
        w = await _writer(master) if stdin else None
        if not stdin:
            os.close(master)
        return Exec(pid, done, w, out, None, master if stdin else None)
    in_r, in_w = os.pipe() if stdin else (os.open(os.devnull, os.O_RDONLY), -1)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid, done = await fs.exec({"root": oci_root, "id": cid, "process": process}, [in_r, out_w, err_w])
    except BaseException:
        for fd in (in_w, out_r, err_r):
            if fd >= 0:
                os.close(fd)
        raise
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    w = await _writer(in_w) if stdin else None
    return Exec(pid, done, w, await _reader(out_r), await _reader(err_r), None)


async def collect(p: cri.ExecProcess, timeout: float) -> cri.ExecResult:
    """Read everything and the exit code; on timeout kill it (exit code 124 with what it wrote)."""
    async def run() -> tuple[bytes, bytes, int]:
        out_t = asyncio.ensure_future(p.stdout.read())
        err_t = asyncio.ensure_future(p.stderr.read() if p.stderr else asyncio.sleep(0, b""))
        try:
            code = await p.wait()
            return await out_t, await err_t, code
        finally:
            out_t.cancel()
            err_t.cancel()
    try:
        out, err, code = await asyncio.wait_for(run(), timeout if timeout > 0 else None)
    except TimeoutError:
        await p.kill()
        return cri.ExecResult(124, b"", b"timeout")
    return cri.ExecResult(code, out, err)

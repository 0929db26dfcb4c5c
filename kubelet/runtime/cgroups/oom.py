"""Noticing OOM kills as they happen: a pollable fd per cgroup.

v1: an eventfd registered on ``memory.oom_control`` through ``cgroup.event_control`` (the kernel
bumps it on every OOM in the cgroup). v2: inotify on ``memory.events`` (modified on every event;
the ``oom_kill`` counter is re-read). Either way the watcher has ``fileno()`` for an event loop's
``add_reader``, ``wait(timeout)`` for a thread, and ``count()`` = the kernel's oom_kill counter,
which is the truth (the fd only says "look now"; read the count once the container's process has
exited, as v1 notifies when the OOM starts, before the victim is killed).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import select
from pathlib import Path
from typing import Callable

from .model import CgroupError

_libc = ctypes.CDLL(None, use_errno=True)
IN_MODIFY = 0x2
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC


class OomWatcher:
    """Watches one cgroup for OOM events. Close it (or use it as a context manager) when done."""

    def __init__(self, fd: int, counter: Callable[[], int], kind: str, keep: list[int] | None = None) -> None:
        self._fd = fd
        self._counter = counter
        self._keep = keep or []
        self.kind = kind            # "eventfd" | "inotify"

    def fileno(self) -> int:
        return self._fd

    def count(self) -> int:
        """OOM kills recorded by the kernel for this cgroup so far."""
        return self._counter()

    def drain(self) -> bool:
        """Consume pending notifications without blocking; True if there were any."""
        got = False
        while True:
            try:
                data = os.read(self._fd, 4096)
            except BlockingIOError:
                return got
            except OSError as e:
                if e.errno == errno.EAGAIN:
                    return got
                raise
            if not data:
                return got
            got = True
            if self.kind == "eventfd":
                return True

    def wait(self, timeout: float | None) -> bool:
        """Block until a notification arrives (True) or ``timeout`` seconds pass (False)."""
        r, _, _ = select.select([self._fd], [], [], timeout)
        if r:
            self.drain()
            return True
        return False

    async def wait_async(self) -> int:
        """Wait on the running loop (no thread) for the next notification; returns :meth:`count`
        at wake-up, which can lag the kill itself (v1 notifies on OOM, before the victim dies):
        read :meth:`count` again once the process has exited."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(self._fd, ready)
        try:
            await fut
        finally:
            loop.remove_reader(self._fd)
        self.drain()
        return self.count()

    def close(self) -> None:
        for fd in [self._fd, *self._keep]:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fd = -1
        self._keep = []

    def __enter__(self) -> OomWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def eventfd_watcher(memory_dir: Path, counter: Callable[[], int]) -> OomWatcher:
    """v1: register an eventfd for OOM notifications of ``memory_dir``."""
    efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
    try:
        ofd = os.open(memory_dir / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        os.close(efd)
        raise CgroupError(f"open {memory_dir}/memory.oom_control: {e.strerror}") from e
    try:
        cfd = os.open(memory_dir / "cgroup.event_control", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(cfd, f"{efd} {ofd}".encode())
        finally:
            os.close(cfd)
    except OSError as e:
        os.close(efd)
        os.close(ofd)
        raise CgroupError(f"register OOM eventfd on {memory_dir}: {e.strerror}") from e
    return OomWatcher(efd, counter, "eventfd", keep=[ofd])


def inotify_watcher(events_file: Path, counter: Callable[[], int]) -> OomWatcher:
    """v2: inotify IN_MODIFY on ``memory.events``."""
    fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise CgroupError(f"inotify_init1: {os.strerror(err)}")
    wd = _libc.inotify_add_watch(fd, os.fsencode(events_file), IN_MODIFY)
    if wd < 0:
        err = ctypes.get_errno()
        os.close(fd)
        raise CgroupError(f"inotify_add_watch {events_file}: {os.strerror(err)}")
    return OomWatcher(fd, counter, "inotify")



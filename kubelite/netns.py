"""Run one blocking call inside another network namespace, from a short-lived thread.

``setns(CLONE_NEWNET)`` changes the namespace of the calling thread only, so a thread that joins the
namespace, makes its socket (sockets keep the namespace they were made in) and ends leaves the rest of
the process where it was. Used to open a netlink socket in a pod's namespace and to dial a port on a
pod's localhost.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, TypeVar

T = TypeVar("T")


def call_in_netns(netns_path: str | None, fn: Callable[[], T], name: str = "kubelite-netns") -> T:
    """``fn()`` run in a thread that first joined the network namespace at ``netns_path`` (``/proc/<pid>/ns/net``,
    ``/run/netns/x``; None: this one); its result, or the exception it raised."""
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            if netns_path:
                fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.setns(fd, os.CLONE_NEWNET)   # this thread only; it ends right after
                finally:
                    os.close(fd)
            result.append(fn())
        except BaseException as e:  # handed to the caller's thread
            failure.append(e)

    t = threading.Thread(target=run, name=name)
    t.start()
    t.join()
    if failure:
        raise failure[0]
    return result[0]

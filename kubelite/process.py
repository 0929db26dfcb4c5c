"""Children that die with their supervisor: the ``preexec_fn`` for ``PR_SET_PDEATHSIG`` (Linux only)."""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with(parent: int, sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn`` asking the kernel to send ``sig`` to the child when ``parent`` (the caller's pid,
    taken before the fork) dies, and doing nothing else (no allocation-heavy work, no logging).

    The parent may die between the fork and the ``prctl`` (a kill -9 while it restarts a child): the
    signal would then never come, so a child whose parent is already gone ends itself at once."""
    def preexec() -> None:
        if _libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)
    return preexec

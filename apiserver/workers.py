"""``--workers N``: N apiserver processes sharing one port (SO_REUSEPORT), like HA apiservers on one host.

Each worker is a complete apiserver (own etcd client and watch cache); the kernel spreads
connections over them. This process only supervises: it forwards SIGTERM/SIGINT, and when a
worker dies it stops the others and exits with that worker's status (the outer supervisor, e.g.
``kubelite up``, restarts the whole apiserver). Workers die with it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

from kubelite.process import die_with

logger = logging.getLogger(__name__)


def supervise(argv: list[str], workers: int) -> int:
    """Run ``python -m apiserver <argv> --workers 1 --reuse-port`` ``workers`` times until stopped."""
    cmd = [sys.executable, "-m", "apiserver", *argv, "--workers", "1", "--reuse-port"]
    procs = [subprocess.Popen(cmd, preexec_fn=die_with(os.getpid(), signal.SIGTERM)) for _ in range(workers)]
    logger.info("started %d apiserver workers: %s", workers, [p.pid for p in procs])
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    while True:
        exited = [p for p in procs if p.poll() is not None]
        if exited and not stopping:
            status = exited[0].returncode or 1
            logger.error("apiserver worker %d exited with %s; stopping the others", exited[0].pid, exited[0].returncode)
            stop(signal.SIGTERM, None)
        if all(p.poll() is not None for p in procs):
            return status if not stopping or status else 0
        time.sleep(0.1)



"""A cgroup root of its own per test (``kubelite/test-<pid>-<rand>``), removed even on failure."""

import os
import secrets
from pathlib import Path
from typing import Iterator

import pytest

from kubelet.runtime.cgroups import V1Manager, detect


@pytest.fixture
def v1() -> Iterator[V1Manager]:
    if os.geteuid() != 0:
        pytest.fail("e2e cgroup tests need root")
    mgr = detect(f"kubelite/test-{os.getpid()}-{secrets.token_hex(3)}")
    assert isinstance(mgr, V1Manager), "this host is expected to use the v1 driver"
    try:
        yield mgr
    finally:
        mgr.destroy("", kill=True)
        leftovers = [h / mgr.root for h in mgr.hierarchies.values() if (h / mgr.root).exists()]
        assert not leftovers, f"cgroups left behind: {leftovers}"


def join_and_exec(files: list[str], code: str) -> list[str]:
    """argv for a python child that joins the cgroup (writes its pid to every cgroup.procs) and
    then runs ``code`` — the order the runtime uses: join before exec."""
    prog = ("import os, sys\n"
            "for f in sys.argv[1].split(','):\n"
            "    fd = os.open(f, os.O_WRONLY); os.write(fd, str(os.getpid()).encode()); os.close(fd)\n"
            f"exec({code!r})\n")
    import sys
    return [sys.executable, "-c", prog, ",".join(files)]


def cgroup_of(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(","):
            out[c] = path
    return out

"""The v2 driver's kernel-facing parts on this hybrid host's real cgroup2 mount
(/sys/fs/cgroup/unified, which offers no resource controllers): directories, joining,
``cgroup.kill``, and the eBPF device filter, which the kernel enforces in every hierarchy."""

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelet.runtime.cgroups import DEFAULT_DEVICES, DeviceRule, Resources, V2Manager, detect

from .conftest import cgroup_of, join_and_exec
from .test_v1_kernel import _disk, wait_for

pytestmark = pytest.mark.e2e
UNIFIED = Path("/sys/fs/cgroup/unified")


@pytest.fixture
def v2() -> Iterator[V2Manager]:
    if not (UNIFIED / "cgroup.controllers").exists():
        pytest.fail("this host is expected to have a cgroup2 mount at /sys/fs/cgroup/unified")
    mgr = detect(f"kubelite-test-{os.getpid()}-{secrets.token_hex(3)}", base=UNIFIED)
    assert isinstance(mgr, V2Manager) and not mgr.fake
    try:
        yield mgr
    finally:
        mgr.destroy("", kill=True)
        assert not (UNIFIED / mgr.root).exists()


def test_join_and_cgroup_kill(v2: V2Manager) -> None:
    v2.create("pod/c")
    assert v2.procs_files("pod/c") == [str(UNIFIED / v2.root / "pod/c/cgroup.procs")]
    p = subprocess.Popen(join_and_exec(v2.procs_files("pod/c"), "import time; time.sleep(60)"))
    try:
        assert wait_for(lambda: v2.pids("pod") == [p.pid])
        assert cgroup_of(p.pid)[""] == f"/{v2.root}/pod/c"
        v2.destroy("pod", kill=True)                  # cgroup.kill
        assert p.wait(timeout=5) == -9
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not v2.exists("pod")


def _probe(files: list[str], node: Path, major: int, minor: int) -> list[str]:
    code = ("import os, errno\n"
            "res = []\n"
            f"os.mknod({str(node)!r}, 0o600 | 0o060000, os.makedev({major}, {minor})); res.append('mknod')\n"
            f"for path in ('/dev/null', {str(node)!r}):\n"
            "    try:\n"
            "        os.close(os.open(path, os.O_RDONLY)); res.append('opened')\n"
            "    except OSError as e:\n"
            "        res.append(errno.errorcode[e.errno])\n"
            "print(' '.join(res))\n")
    out = subprocess.run(join_and_exec(files, code), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_ebpf_device_filter_denies_block_devices(v2: V2Manager, tmp_path: Path) -> None:
    _, major, minor = _disk()
    v2.create("c", Resources(devices=DEFAULT_DEVICES))
    assert _probe(v2.procs_files("c"), tmp_path / "d1", major, minor) == ["mknod", "opened", "EPERM"]
    # update replaces the program: now that one block device may be read too
    v2.update("c", Resources(devices=(*DEFAULT_DEVICES, DeviceRule(True, "b", major, minor, "r"))))
    assert _probe(v2.procs_files("c"), tmp_path / "d2", major, minor) == ["mknod", "opened", "opened"]

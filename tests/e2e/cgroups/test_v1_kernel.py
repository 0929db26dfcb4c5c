"""The v1 driver against the real kernel: limits land, processes join, stats move, OOM kills are
counted and noticed, the device allowlist bites, destroy leaves nothing."""

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelet.runtime.cgroups import DEFAULT_DEVICES, CgroupBusyError, Resources, V1Manager, container_cgroup_path

from .conftest import cgroup_of, join_and_exec

pytestmark = pytest.mark.e2e
POD = "kubepods/burstable/podtest-uid"


def wait_for(cond, timeout: float = 5.0, step: float = 0.01):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(step)


def test_create_writes_limits_in_every_hierarchy(v1: V1Manager) -> None:
    c = container_cgroup_path(POD, "c1")
    v1.create(POD)
    v1.create(c, Resources.from_cpu_memory(cpu_request_milli=250, cpu_limit_milli=500,
                                           memory_limit_bytes=64 << 20, pids_limit=32, devices=DEFAULT_DEVICES))
    rd = lambda ctrl, f: (v1.dir_of(ctrl, c) / f).read_text().strip()  # noqa: E731
    assert rd("cpu", "cpu.shares") == "256"
    assert (rd("cpu", "cpu.cfs_period_us"), rd("cpu", "cpu.cfs_quota_us")) == ("100000", "50000")
    assert rd("memory", "memory.limit_in_bytes") == str(64 << 20)
    assert rd("pids", "pids.max") == "32"
    root_cpus = Path("/sys/fs/cgroup/cpuset/cpuset.cpus").read_text().strip()
    assert rd("cpuset", "cpuset.cpus") == root_cpus and rd("cpuset", "cpuset.mems") != ""
    assert rd("devices", "devices.list").splitlines() == [r.v1_line() for r in DEFAULT_DEVICES[1:]]
    assert len(v1.procs_files(c)) == len(v1.hierarchies) >= 6
    assert v1.children(POD) == ["c1"] and v1.exists(c)
    v1.update(c, Resources(cpu_quota_us=-1, cpu_period_us=100000, memory_limit_bytes=128 << 20))
    assert rd("cpu", "cpu.cfs_quota_us") == "-1" and rd("memory", "memory.limit_in_bytes") == str(128 << 20)


def test_child_joins_before_exec_and_stats_move(v1: V1Manager) -> None:
    c = f"{POD}/stats"
    v1.create(c, Resources(memory_limit_bytes=256 << 20))
    code = ("b = bytearray(40 << 20)\n"
            "for i in range(0, len(b), 4096): b[i] = 1\n"
            "print('ready', flush=True)\n"
            "import time\nwhile time.process_time() < 0.3: pass\n"
            "sys.stdin.read()\n")
    p = subprocess.Popen(join_and_exec(v1.procs_files(c), code), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
        groups = cgroup_of(p.pid)
        for ctrl in ("memory", "cpu", "cpuacct", "pids", "devices", "freezer", "cpuset"):
            assert groups[ctrl] == f"/{v1.root}/{c}", ctrl
        assert v1.pids(c) == [p.pid] and v1.pids(POD) == [p.pid] and v1.pids(POD, recursive=False) == []
        s = wait_for(lambda: (st := v1.stats(c)).cpu_usage_ns > 200_000_000 and st)
        assert s, v1.stats(c)
        assert s.memory_usage_bytes >= 40 << 20 and s.memory_rss_bytes >= 40 << 20
        assert 0 < s.memory_working_set_bytes <= s.memory_usage_bytes
        assert s.memory_limit_bytes == 256 << 20 and s.pids_current == 1 and s.oom_kills == 0
        with pytest.raises(CgroupBusyError):
            v1.destroy(c)
    finally:
        p.communicate("")
    assert p.returncode == 0
    wait_for(lambda: not v1.pids(c))
    v1.destroy(c)
    assert not v1.exists(c) and all(not (h / v1.root / c).exists() for h in v1.hierarchies.values())
    v1.destroy(c)                                          # idempotent


def test_memory_hog_is_oom_killed_counted_and_noticed(v1: V1Manager) -> None:
    c = f"{POD}/hog"
    v1.create(c, Resources(memory_limit_bytes=32 << 20))
    code = ("chunks = []\n"
            "while True:\n"
            "    b = bytearray(4 << 20)\n"
            "    for i in range(0, len(b), 4096): b[i] = 1\n"
            "    chunks.append(b)\n")
    with v1.watch_oom(c) as watcher:
        p = subprocess.run(join_and_exec(v1.procs_files(c), code), timeout=60)
        assert p.returncode == -9                          # SIGKILL: exit 137 in a shell
        assert watcher.wait(5.0)
        assert watcher.count() == 1 and v1.oom_kills(c) == 1
    s = v1.stats(c)
    assert s.oom_kills == 1 and s.oom_events == 1


def test_cfs_quota_throttles_a_burner(v1: V1Manager) -> None:
    c = f"{POD}/burn"
    v1.create(c, Resources.from_cpu_memory(cpu_request_milli=100, cpu_limit_milli=100))
    p = subprocess.Popen(join_and_exec(v1.procs_files(c), "while True: pass"))
    try:
        s = wait_for(lambda: (st := v1.stats(c)).cpu_throttled_periods >= 3 and st, timeout=5)
        assert s, v1.stats(c)
        assert s.cpu_periods >= s.cpu_throttled_periods and s.cpu_throttled_ns > 0
    finally:
        v1.destroy(c, kill=True)
        p.wait(timeout=5)
    assert p.returncode == -9 and not v1.exists(c)


def _disk() -> tuple[str, int, int]:
    """A block device root can open outside any restricted cgroup (this VM denies its own disk
    to everyone, so a loop or zram device stands in for "a host disk")."""
    for dev in sorted(Path("/sys/block").iterdir(), key=lambda d: not d.name.startswith(("vd", "sd", "nvme"))):
        try:
            os.close(os.open(f"/dev/{dev.name}", os.O_RDONLY))
        except OSError:
            continue
        major, minor = (dev / "dev").read_text().strip().split(":")
        return dev.name, int(major), int(minor)
    pytest.fail("no openable block device found on this host")


def test_device_allowlist_lets_mknod_succeed_but_opening_a_disk_fail(v1: V1Manager, tmp_path: Path) -> None:
    name, major, minor = _disk()
    c = f"{POD}/dev"
    v1.create(c, Resources(devices=DEFAULT_DEVICES))
    node = tmp_path / "disk"
    code = ("import os, errno\n"
            "fd = os.open('/dev/null', os.O_RDWR); os.write(fd, b'x'); os.close(fd)\n"
            "os.close(os.open('/dev/zero', os.O_RDONLY))\n"
            f"os.mknod({str(node)!r}, 0o600 | 0o060000, os.makedev({major}, {minor}))\n"
            "res = []\n"
            f"for path in ({str(node)!r}, '/dev/{name}'):\n"
            "    try:\n"
            "        os.close(os.open(path, os.O_RDONLY)); res.append('opened')\n"
            "    except OSError as e:\n"
            "        res.append(errno.errorcode[e.errno])\n"
            "print(' '.join(res))\n")
    out = subprocess.run(join_and_exec(v1.procs_files(c), code), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["EPERM", "EPERM"]
    assert node.exists()                                  # mknod itself was allowed ("b *:* m")
    # outside the cgroup the same node opens: it is the cgroup that denies
    fd = os.open(node, os.O_RDONLY)
    os.close(fd)


def test_destroy_kill_removes_a_forking_tree(v1: V1Manager) -> None:
    c = f"{POD}/tree"
    v1.create(c)
    code = ("import os, time\n"
            "for _ in range(5):\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(60); os._exit(0)\n"
            "time.sleep(60)\n")
    p = subprocess.Popen(join_and_exec(v1.procs_files(c), code))
    assert wait_for(lambda: len(v1.pids(c)) == 6)
    v1.destroy(POD, kill=True)
    p.wait(timeout=5)
    assert not v1.exists(POD)
    assert all(not (h / v1.root / POD).exists() for h in v1.hierarchies.values())


async def test_oom_noticed_on_the_event_loop(v1: V1Manager) -> None:
    import asyncio
    import sys

    c = f"{POD}/async-hog"
    v1.create(c, Resources(memory_limit_bytes=24 << 20))
    code = "b = []\nwhile True: b.append(bytearray(8 << 20))\n"
    with v1.watch_oom(c) as watcher:
        proc = await asyncio.create_subprocess_exec(*join_and_exec(v1.procs_files(c), code))
        await asyncio.wait_for(watcher.wait_async(), timeout=30)
        assert await proc.wait() == -9
    assert v1.oom_kills(c) == 1                  # the counter is the truth once the victim is gone
    del sys


def test_prune_parents_removes_only_empty_ancestors() -> None:
    import secrets

    from kubelet.runtime.cgroups import detect

    top = f"kubelite-t{secrets.token_hex(3)}"
    a, b = detect(f"{top}/node-a"), detect(f"{top}/node-b")
    try:
        a.create("kubepods")
        b.create("kubepods")
        a.destroy("")
        a.prune_parents()                                 # node-b still there: the top stays
        assert all((h / top / "node-b").is_dir() for h in b.hierarchies.values())  # type: ignore[attr-defined]
        b.destroy("")
        b.prune_parents()
        assert all(not (h / top).exists() for h in b.hierarchies.values())  # type: ignore[attr-defined]
    finally:
        for m in (a, b):
            m.destroy("", kill=True)
            m.prune_parents()


def _cpu_seconds(v1: V1Manager, path: str) -> float:
    return v1.stats(path).cpu_usage_ns / 1e9


@pytest.fixture
def boosted() -> Iterator[V1Manager]:
    """A top-level root (``kubelite-t<hex>``) with the maximum cpu.shares, so CPU measurements hold
    while other tests load the machine (each busy host task weighs 1024; this group 262144)."""
    import secrets

    from kubelet.runtime.cgroups import detect

    mgr = detect(f"kubelite-t{secrets.token_hex(4)}")
    assert isinstance(mgr, V1Manager)
    try:
        mgr.create("", Resources(cpu_shares=262144))
        yield mgr
    finally:
        mgr.destroy("", kill=True)
        assert all(not (h / mgr.root).exists() for h in mgr.hierarchies.values())


def test_cpu_limit_500m_caps_a_burner(boosted: V1Manager) -> None:
    c = "kubepods/cap"
    boosted.create(c, Resources.from_cpu_memory(cpu_request_milli=500, cpu_limit_milli=500))
    p = subprocess.Popen(join_and_exec(boosted.procs_files(c), "while True: pass"))
    try:
        assert wait_for(lambda: boosted.pids(c) == [p.pid])
        u0, t0 = _cpu_seconds(boosted, c), time.monotonic()
        time.sleep(2.0)          # measuring a rate over a fixed window: the wait is the measurement
        used = (_cpu_seconds(boosted, c) - u0) / (time.monotonic() - t0)
        throttled = boosted.stats(c).cpu_throttled_periods
    finally:
        boosted.destroy(c, kill=True)
        p.wait()
    assert 0.3 < used <= 0.55, used
    assert throttled >= 10                                # the quota, not the machine, held it back


def test_shares_split_cpu_two_to_one_on_one_core(boosted: V1Manager) -> None:
    hi, lo = "kubepods/hi", "kubepods/lo"
    boosted.create(hi, Resources(cpu_shares=1024, cpuset_cpus="0"))
    boosted.create(lo, Resources(cpu_shares=512, cpuset_cpus="0"))
    procs = [subprocess.Popen(join_and_exec(boosted.procs_files(c), "while True: pass")) for c in (hi, lo)]
    try:
        assert wait_for(lambda: len(boosted.pids("kubepods")) == 2)
        a0, b0 = _cpu_seconds(boosted, hi), _cpu_seconds(boosted, lo)
        time.sleep(2.0)          # a rate over a window, as above
        a, b = _cpu_seconds(boosted, hi) - a0, _cpu_seconds(boosted, lo) - b0
    finally:
        boosted.destroy("kubepods", kill=True)
        for p in procs:
            p.wait()
    assert b > 0 and 1.7 <= a / b <= 2.3, (a, b)


def test_failed_create_leaves_nothing(v1: V1Manager) -> None:
    from kubelet.runtime.cgroups import CgroupError

    c = f"{POD}/bad"
    with pytest.raises(CgroupError, match="cpuset.cpus"):
        v1.create(c, Resources(cpuset_cpus="999"))
    assert not v1.exists(c) and all(not (h / v1.root / c).exists() for h in v1.hierarchies.values())

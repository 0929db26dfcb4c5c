"""The v2 driver against a fake cgroupfs tree (this host has no usable cgroup2 controllers: the one
place a fake stands in for the kernel)."""

import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kubelet.runtime.cgroups import (
    DEFAULT_DEVICES, CgroupBusyError, DeviceRule, Resources, V1Manager, V2Manager, detect,
)
from kubelet.runtime.cgroups import bpf

pytestmark = pytest.mark.unit


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    base = tmp_path / "cgroup"
    base.mkdir()
    (base / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (base / "cgroup.subtree_control").write_text("")
    (base / "cgroup.procs").write_text("1\n")
    return base


def test_detect_picks_v2_on_a_pure_v2_tree(tree: Path) -> None:
    mgr = detect(node_name="n1", base=tree)
    assert isinstance(mgr, V2Manager) and mgr.root == "kubelite/n1" and mgr.fake


def test_detect_picks_v1_on_a_v1_or_hybrid_tree(tmp_path: Path) -> None:
    for c in ("memory", "cpu", "cpuacct", "pids", "unified"):
        (tmp_path / c).mkdir()
        (tmp_path / c / "cgroup.procs").write_text("")
    assert isinstance(detect("kubelite/x", base=tmp_path), V1Manager)


def test_create_enables_controllers_level_by_level_and_writes_limits(tree: Path) -> None:
    mgr = V2Manager("kubelite/n1", tree)
    path = "kubepods/burstable/podu1/c1"
    mgr.create(path, Resources.from_cpu_memory(cpu_request_milli=500, cpu_limit_milli=1500,
                                               memory_limit_bytes=128 << 20, pids_limit=64))
    d = tree / "kubelite/n1" / path
    assert (d / "cpu.max").read_text() == "150000 100000"
    assert (d / "cpu.weight").read_text() == "59"               # 512 shares
    assert (d / "memory.max").read_text() == str(128 << 20)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "memory.oom.group").read_text() == "1"
    assert (d / "pids.max").read_text() == "64"
    # every ancestor delegates the controllers we need (only those its parent offers: no hugetlb)
    for anc in [tree, tree / "kubelite", tree / "kubelite/n1", tree / "kubelite/n1/kubepods",
                tree / "kubelite/n1/kubepods/burstable", tree / "kubelite/n1/kubepods/burstable/podu1"]:
        assert set((anc / "cgroup.subtree_control").read_text().split()) == {"cpuset", "cpu", "io", "memory", "pids"}
    assert mgr.procs_files(path) == [str(d / "cgroup.procs")]
    assert mgr.exists(path) and mgr.children("kubepods/burstable/podu1") == ["c1"]


def test_update_unlimits_and_devices_recorded(tree: Path) -> None:
    mgr = V2Manager("kubelite/n1", tree)
    mgr.create("kubepods/podu2/c", Resources(cpu_quota_us=20000, pids_limit=5))
    mgr.update("kubepods/podu2/c", Resources(cpu_quota_us=-1, cpu_period_us=100000, pids_limit=-1,
                                             devices=DEFAULT_DEVICES))
    d = tree / "kubelite/n1/kubepods/podu2/c"
    assert (d / "cpu.max").read_text() == "max 100000"
    assert (d / "pids.max").read_text() == "max"
    assert "allow c 136:* rwm" in (d / "kubelite.devices").read_text()


def test_stats_read_v2_files(tree: Path) -> None:
    mgr = V2Manager("kubelite/n1", tree)
    mgr.create("p/c")
    d = tree / "kubelite/n1/p/c"
    (d / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\n"
                                "nr_throttled 3\nthrottled_usec 250\n")
    (d / "memory.current").write_text("10000\n")
    (d / "memory.stat").write_text("anon 6000\nfile 4000\ninactive_file 3000\nactive_file 1000\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n")
    (d / "memory.max").write_text("max\n")
    s = mgr.stats("p/c")
    assert (s.cpu_usage_ns, s.memory_usage_bytes, s.memory_working_set_bytes, s.memory_rss_bytes) == \
        (1_500_000, 10000, 7000, 6000)
    assert (s.oom_kills, s.oom_events, s.cpu_periods, s.cpu_throttled_periods, s.cpu_throttled_ns) == \
        (1, 2, 7, 3, 250_000)
    assert s.memory_limit_bytes == 0 and mgr.oom_kills("p/c") == 1


def test_oom_watcher_wakes_when_memory_events_changes(tree: Path) -> None:
    mgr = V2Manager("kubelite/n1", tree)
    mgr.create("p/c")
    ev = tree / "kubelite/n1/p/c/memory.events"
    with mgr.watch_oom("p/c") as w:
        assert not w.wait(0)
        ev.write_text("low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\n")
        assert w.wait(2.0)
        assert w.count() == 1
        assert not w.wait(0)                      # drained


def test_destroy_refuses_busy_then_kills_and_is_idempotent(tree: Path) -> None:
    mgr = V2Manager("kubelite/n1", tree)
    mgr.create("p/c")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mgr.add_process("p/c", proc.pid)
        with pytest.raises(CgroupBusyError):
            mgr.destroy("p")
        # a fake has no cgroup.kill semantics: remove the file so the freeze+SIGKILL path runs
        os.unlink(tree / "kubelite/n1/p/cgroup.kill")
        proc_file = tree / "kubelite/n1/p/c/cgroup.procs"

        # the kernel would drop the pid once it is dead; emulate that with a reaper thread
        def reap() -> None:
            proc.wait()
            proc_file.write_text("")
        t = threading.Thread(target=reap)
        t.start()
        mgr.destroy("p", kill=True, timeout=5)
        t.join()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -9
    assert not (tree / "kubelite/n1/p").exists()
    mgr.destroy("p")                                # idempotent


def test_bpf_program_shape() -> None:
    code = bpf.build_program(DEFAULT_DEVICES)
    assert len(code) % 8 == 0
    insns = [struct.unpack("<BBhi", code[i:i + 8]) for i in range(0, len(code), 8)]
    assert insns[-1][0] == 0x95 and insns[-2] == (0xB4, 0, 0, 0)       # deny-all, listed first, checked last
    # every jump lands inside the program
    for i, (op, _, off, _) in enumerate(insns):
        if op in (0x55, 0x5D):
            assert 0 < i + 1 + off < len(insns)
    # the deny-all rule (first listed) is checked last and cuts off everything after it
    deny_all = bpf.build_program((*DEFAULT_DEVICES, DEFAULT_DEVICES[0]))
    assert len(deny_all) == (6 + 2) * 8                     # prologue + one verdict, nothing unreachable
    only_null = bpf.build_program((DeviceRule(True, "c", 1, 3, "rwm"),))
    assert struct.unpack("<BBhi", only_null[-16:-8]) == (0xB4, 0, 0, 0)   # no match → deny

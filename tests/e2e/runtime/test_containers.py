"""One pod's containers, for real: PID 1, hostname, isolation from the host, exit codes, logs."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from kubelet import cri
from kubelet.runtime.service import Runtime

from .conftest import Env

pytestmark = pytest.mark.e2e


async def wait_exited(rt: Runtime, cid: str, timeout: float = 10) -> cri.ContainerStatus:
    deadline = time.monotonic() + timeout
    while True:
        st = await rt.container_status(cid)
        if st.state == cri.ContainerState.EXITED:
            return st
        assert time.monotonic() < deadline, f"container still {st.state}"
        await asyncio.sleep(0.02)


def log_lines(path: str) -> list[str]:
    with open(path) as f:
        return [line.rstrip("\n").split(" ", 3)[3] for line in f]


async def run_to_end(rt: Runtime, env: Env, pod: cri.PodSandboxConfig, sid: str, *cmd: str, name: str = "c",
                     **kw: object) -> tuple[cri.ContainerStatus, list[str]]:
    cid = await rt.create_container(sid, env.container(name, *cmd, **kw), pod)
    await rt.start_container(cid)
    st = await wait_exited(rt, cid)
    return st, log_lines(st.log_path)


async def test_pid1_hostname_and_host_invisible(env: Env, rt: Runtime) -> None:
    pod = env.pod("web")
    sid = await rt.run_pod_sandbox(pod)
    script = ("echo pid=$$; hostname; ps -o pid,comm | wc -l; cat /proc/mounts | grep -c . ; "
              "test -e /proc/1/root/etc/host.conf && echo hostfs || echo nohostfs; exit 3")
    st, lines = await run_to_end(rt, env, pod, sid, "sh", "-c", script)
    assert st.exit_code == 3 and st.reason == "Error"
    assert lines[0] == "pid=1"
    assert lines[1] == "web"
    assert int(lines[2]) <= 4  # header + sh + ps (+ wc): host processes are invisible
    assert int(lines[3]) < 25  # only the container's own mounts
    assert lines[4] == "nohostfs"


async def test_file_written_by_one_is_not_in_the_other(env: Env, rt: Runtime) -> None:
    pod = env.pod("files")
    sid = await rt.run_pod_sandbox(pod)
    st, _ = await run_to_end(rt, env, pod, sid, "sh", "-c", "echo x > /tmp/secret && test -e /tmp/secret")
    assert st.exit_code == 0 and st.reason == "Completed"
    st2, lines = await run_to_end(rt, env, pod, sid, "sh", "-c", "test -e /tmp/secret && echo seen || echo absent")
    assert lines == ["absent"]
    assert not (env.rootfs / "tmp" / "secret").exists()


async def test_exec_joins_the_container(env: Env, rt: Runtime) -> None:
    pod = env.pod("ex")
    sid = await rt.run_pod_sandbox(pod)
    cid = await rt.create_container(sid, env.container("c", "sleep", "30"), pod)
    await rt.start_container(cid)
    res = await rt.exec_sync(cid, ["sh", "-c", "hostname; cat /proc/1/comm; echo err >&2; exit 4"], 10)
    assert res.exit_code == 4
    assert res.stdout.decode().split() == ["ex", "sleep"]
    assert res.stderr == b"err\n"
    t0 = time.monotonic()
    await rt.stop_container(cid, 0.5)  # sleep as PID 1 ignores SIGTERM: SIGKILL after the grace period
    st = await rt.container_status(cid)
    assert st.state == cri.ContainerState.EXITED and st.exit_code == 137 and st.reason == "Error"
    assert 0.5 <= time.monotonic() - t0 < 3


async def test_stop_sends_sigterm_first(env: Env, rt: Runtime) -> None:
    pod = env.pod("term")
    sid = await rt.run_pod_sandbox(pod)
    cid = await rt.create_container(sid, env.container("c", "sh", "-c", "trap 'exit 7' TERM; echo up; "
                                                       "while true; do sleep 0.05; done"), pod)
    await rt.start_container(cid)
    st = await rt.container_status(cid)
    deadline = time.monotonic() + 5
    while not os.path.exists(st.log_path) or not log_lines(st.log_path):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    await rt.stop_container(cid, 10)
    st = await rt.container_status(cid)
    assert st.exit_code == 7


async def test_failed_create_leaves_nothing(env: Env, rt: Runtime) -> None:
    pod = env.pod("bad")
    sid = await rt.run_pod_sandbox(pod)
    with pytest.raises(cri.CreateContainerError):
        await rt.create_container(sid, env.container("c", "true", mounts=(cri.Mount("/x", "/nonexistent-kubelite"),)), pod)
    assert await rt.list_containers() == []
    assert os.listdir(rt.oci_root) == []
    with pytest.raises(cri.CreateContainerError, match="no such file"):
        await rt.create_container(sid, env.container("c", "/no/such/binary"), pod)
    with pytest.raises(cri.CreateContainerError, match="executable file not found in .PATH"):
        await rt.create_container(sid, env.container("c", "nosuchcommand"), pod)
    assert await rt.list_containers() == [] and os.listdir(rt.oci_root) == []
    junk = env.root / "junk"
    junk.write_bytes(b"\x00not a program")
    junk.chmod(0o755)
    cid = await rt.create_container(sid, env.container("c", "/junk", mounts=(cri.Mount("/junk", str(junk)),)), pod)
    await rt.start_container(cid)  # found and executable, but exec fails: the exit record says why
    st = await wait_exited(rt, cid)
    assert (st.exit_code, st.reason) == (126, "StartError") and "/junk" in st.message


@pytest.mark.parametrize("handler", ["runc", "crun"])
async def test_runc_and_crun_run_the_same_bundles(env: Env, rt: Runtime, handler: str) -> None:
    pod = env.pod(f"h-{handler}")
    sid = await rt.run_pod_sandbox(pod, handler)
    assert (await rt.pod_sandbox_status(sid)).runtime_handler == handler
    st, lines = await run_to_end(rt, env, pod, sid, "sh", "-c", "echo pid=$$; hostname; exit 3",
                                 resources=cri.LinuxResources(memory_limit_in_bytes=64 << 20))
    assert (st.exit_code, lines) == (3, ["pid=1", f"h-{handler}"])
    cid = await rt.create_container(sid, env.container("s", "sleep", "30"), pod)
    await rt.start_container(cid)
    res = await rt.exec_sync(cid, ["hostname"], 10)
    assert res.stdout == f"h-{handler}\n".encode()
    await rt.stop_container(cid, 0)
    assert (await rt.container_status(cid)).exit_code == 137


def _has_cap_sys_resource() -> bool:
    with open("/proc/self/status") as f:
        eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(eff & (1 << 24))


async def test_guaranteed_oom_score_adj_starts_even_without_cap_sys_resource(env: Env, rt: Runtime) -> None:
    """A Guaranteed pod asks for oom_score_adj -997; a host that withholds CAP_SYS_RESOURCE (this VM does)
    cannot lower it, and the container must still start, keeping the inherited score."""
    pod = env.pod("guaranteed")
    sid = await rt.run_pod_sandbox(pod)
    with open("/proc/self/oom_score_adj") as f:
        inherited = int(f.read())
    st, lines = await run_to_end(rt, env, pod, sid, "cat", "/proc/1/oom_score_adj",
                                 resources=cri.LinuxResources(oom_score_adj=-997))
    assert st.exit_code == 0, st
    assert int(lines[0]) == (-997 if _has_cap_sys_resource() else inherited)
    st, lines = await run_to_end(rt, env, pod, sid, "cat", "/proc/1/oom_score_adj", name="burstable",
                                 resources=cri.LinuxResources(oom_score_adj=999))
    assert st.exit_code == 0 and int(lines[0]) == 999, "raising the score needs no capability"


async def test_pod_cgroup_gets_the_pod_level_resources(env: Env, rt: Runtime) -> None:
    """The sandbox's pod cgroup carries what the kubelet computed for the whole pod (shares, quota, memory)."""
    from kubelet.runtime.cgroups import detect
    res = cri.LinuxResources(cpu_shares=768, cpu_quota=75000, cpu_period=100000, memory_limit_in_bytes=96 << 20)
    pod = env.pod("podlevel", resources=res)
    await rt.run_pod_sandbox(pod)
    mgr = detect(root=env.cg_root)
    rel = pod.cgroup_parent
    if hasattr(mgr, "dir_of") and (mgr.dir_of("cpu", rel) / "cpu.shares").exists():   # v1
        assert (mgr.dir_of("cpu", rel) / "cpu.shares").read_text().strip() == "768"
        assert (mgr.dir_of("cpu", rel) / "cpu.cfs_quota_us").read_text().strip() == "75000"
        assert (mgr.dir_of("memory", rel) / "memory.limit_in_bytes").read_text().strip() == str(96 << 20)
    else:                                                                               # v2
        assert (mgr.dir_of("cpu", rel) / "cpu.max").read_text().split() == ["75000", "100000"]
        assert (mgr.dir_of("memory", rel) / "memory.max").read_text().strip() == str(96 << 20)

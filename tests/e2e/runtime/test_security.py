"""securityContext, events, tty exec, and a sandbox that fails half-way."""

from __future__ import annotations

import asyncio

import pytest

from kubelet import cri
from kubelet.runtime.sandbox import SandboxError
from kubelet.runtime.service import Runtime

from .conftest import Env
from .test_containers import run_to_end

pytestmark = pytest.mark.e2e

STATUS = "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '"


async def test_security_context(env: Env, rt: Runtime) -> None:
    pod = env.pod("sec")
    sid = await rt.run_pod_sandbox(pod)
    sec = cri.LinuxSecurityContext(run_as_user=1000, run_as_group=3000, readonly_rootfs=True, no_new_privs=True,
                                   supplemental_groups=(4000,))
    st, lines = await run_to_end(rt, env, pod, sid, "sh", "-c",
                                 f"id -u; id -g; id -G; touch /x 2>/dev/null && echo rw || echo ro; {STATUS}",
                                 security=sec)
    assert lines[:4] == ["1000", "3000", "3000 4000", "ro"]
    assert "CapEff: 0000000000000000" in lines and "NoNewPrivs: 1" in lines
    drop = cri.LinuxSecurityContext(capabilities=cri.Capabilities(add=("NET_ADMIN",), drop=("CHOWN",)))
    _, lines = await run_to_end(rt, env, pod, sid, "sh", "-c", STATUS, security=drop, name="caps")
    eff = int(next(x for x in lines if x.startswith("CapEff")).split()[1], 16)
    assert eff & (1 << 12) and not eff & (1 << 0) and not eff & (1 << 21)  # NET_ADMIN yes, CHOWN no, SYS_ADMIN no
    _, lines = await run_to_end(rt, env, pod, sid, "sh", "-c",
                                "mount -t tmpfs t /tmp 2>/dev/null && echo mounted || echo refused",
                                security=cri.LinuxSecurityContext(privileged=True), name="priv")
    assert lines == ["mounted"], (_, lines)
    _, lines = await run_to_end(rt, env, pod, sid, "sh", "-c",
                                "mount -t tmpfs t /tmp 2>/dev/null && echo mounted || echo refused",
                                name="unpriv")
    assert lines == ["refused"]


async def test_events_and_tty_exec(env: Env, rt: Runtime) -> None:
    pod = env.pod("ev")
    sid = await rt.run_pod_sandbox(pod)
    events: list[cri.ContainerEvent] = []

    async def listen() -> None:
        async for ev in rt.events():
            events.append(ev)
            if ev.kind == "exited":
                return

    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(listen())
        await asyncio.sleep(0)
        cid = await rt.create_container(sid, env.container("c", "sleep", "30"), pod)
        await rt.start_container(cid)
        # the terminal is the container's own: `tty` names a /dev/pts entry that exists in there
        p = await rt.exec(cid, ["sh", "-c", "test -t 0 && test -t 1 && echo tty; t=$(tty) && test -e $t && echo $t; echo hi"],
                          tty=True, stdin=False)
        out = await asyncio.wait_for(p.stdout.read(), 10)
        assert await p.wait() == 0, out
        lines = out.replace(b"\r", b"").split(b"\n")
        assert lines[0] == b"tty" and lines[1].startswith(b"/dev/pts/") and lines[2] == b"hi", out
        await rt.stop_container(cid, 0)
        await asyncio.wait_for(task, 10)
    assert [e.kind for e in events if e.container_id == cid] == ["created", "started", "exited"]


async def test_sandbox_failing_half_way_leaves_nothing(env: Env, rt: Runtime) -> None:
    with pytest.raises(SandboxError, match="sethostname"):
        await rt.run_pod_sandbox(env.pod("x" * 80))  # longer than the kernel's 64 characters
    assert await rt.list_pod_sandboxes() == []


async def test_masked_and_readonly_proc_paths_old_root_gone_own_cgroup_no_fds_leaked(env: Env, rt: Runtime) -> None:
    pod = env.pod("mask")
    sid = await rt.run_pod_sandbox(pod)
    script = ("wc -c < /proc/keys; ls /proc/acpi | wc -l; "
              "(echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null && echo rw || echo ro; "
              "grep -c ' /sys/fs/cgroup' /proc/self/mountinfo; grep ':memory:' /proc/self/cgroup; "
              "grep -c ' / / ' /proc/self/mountinfo; ls -l /proc/1/fd | grep -c 'socket:\\|start\\|started'; true")
    st, lines = await run_to_end(rt, env, pod, sid, "sh", "-c", script)
    assert st.exit_code == 0, lines
    # keys is /dev/null, acpi an empty tmpfs, /proc/sys read-only, no host mount (the old root is detached),
    # and the command runs in the container's own memory cgroup (the init joined it before exec)
    assert lines[:4] == ["0", "0", "ro", "0"] and lines[5] == "1", lines
    assert lines[6] == "0", lines  # nothing of the runtime's (sync socket, creator's line, start fifo) leaked in
    assert lines[4].split(":", 2)[2].startswith(f"/{env.cg_root}/kubepods/pod"), lines

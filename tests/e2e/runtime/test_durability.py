"""Containers outlive the runtime: kill it, they keep running, a new one re-adopts them and their exits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from kubelet import cri
from kubelet.runtime.service import Runtime

from .conftest import REPO, Env
from .test_containers import log_lines, wait_exited

pytestmark = pytest.mark.e2e

SCRIPT = textwrap.dedent("""
    import asyncio, sys
    from kubelet import cri
    from kubelet.runtime.service import Runtime
    async def main(root, cg, image, logs):
        async with Runtime(root, cgroup_root=cg) as rt:
            pod = cri.PodSandboxConfig(metadata=cri.PodSandboxMetadata("durable", "default", "u1"),
                                       hostname="durable", log_directory=logs, cgroup_parent="kubepods/podu1")
            sid = await rt.run_pod_sandbox(pod)
            for name, cmd in (("long", "echo up; exec sleep 600"),
                              ("three", "echo up; while [ ! -e /dev/shm/go ]; do sleep 0.02; done; echo after; exit 3")):
                cfg = cri.ContainerConfig(cri.ContainerMetadata(name), image, ("sh", "-c", cmd), log_path=f"{name}.log")
                await rt.start_container(await rt.create_container(sid, cfg, pod))
            print(sid, flush=True)
            await asyncio.sleep(600)
    asyncio.run(main(*sys.argv[1:]))
""")


async def test_kill_runtime_containers_survive_and_are_readopted(env: Env) -> None:
    root = str(env.root / "state")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, root, env.cg_root, env.image, str(env.logs / "durable")],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            start_new_session=True)
    assert proc.stdout is not None
    sid = proc.stdout.readline().strip()
    assert sid, "the runtime process did not start its pod"
    os.killpg(proc.pid, signal.SIGINT)  # a Ctrl-C to its terminal's process group ...
    os.killpg(proc.pid, signal.SIGKILL)  # ... and then the runtime is killed outright
    proc.wait()
    proc.stdout.close()
    # nothing watches now: the second container exits meanwhile with 3
    (env.root / "state" / "sandboxes" / sid / "shm" / "go").write_text("")
    async with Runtime(root, cgroup_root=env.cg_root) as rt:
        try:
            byname = {c.metadata.name: c for c in await rt.list_containers(sid)}
            assert byname["long"].state == cri.ContainerState.RUNNING
            assert byname["long"].pid is not None and os.path.exists(f"/proc/{byname['long'].pid}")
            three = await wait_exited(rt, byname["three"].id)
            assert (three.exit_code, three.reason) == (3, "Error")
            assert log_lines(three.log_path) == ["up", "after"]
            assert (await rt.pod_sandbox_status(sid)).state == cri.PodSandboxState.READY
            res = await rt.exec_sync(byname["long"].id, ["hostname"], 10)
            assert res.stdout == b"durable\n"
        finally:
            await rt.stop_pod_sandbox(sid)
            await rt.remove_pod_sandbox(sid)


async def test_a_second_runtime_on_the_same_root_does_not_disturb_the_first(env: Env, rt: Runtime) -> None:
    pod = env.pod("shared")
    sid = await rt.run_pod_sandbox(pod)
    exits: list[str] = []

    async def listen() -> None:
        async for ev in rt.events():
            if ev.kind == "exited":
                exits.append(ev.container_id)
                return

    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(listen())
        await asyncio.sleep(0)
        env.cli("ps", "-a")  # `kubelite runtime` beside it: its own fork server, not the events socket
        cid = await rt.create_container(sid, env.container("c", "true"), pod)
        await rt.start_container(cid)
        await asyncio.wait_for(task, 10)
    assert exits == [cid]
    assert (await wait_exited(rt, cid)).exit_code == 0

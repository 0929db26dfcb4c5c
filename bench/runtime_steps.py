"""bench/runtime_steps.py - where the RuntimeService's time goes, step by step (no kubelet, no apiserver).

With a pod network on a private bridge (``kltp<pid>``, removed at the end) and the busybox rootfs of
bench/runtime.py, it times N sequential sandboxes, then per sandbox create / start / wait / remove of a
``/bin/true`` container, the two listings, stopping and removing all sandboxes concurrently, and a burst of
N sandboxes made at once; beside the medians, each fork-server request kind (``fs.<op>``) as the client
sees it, and the process' CPU time. Compare two trees by running it from each, interleaved (the machine is
shared: medians of one run move by ±30 %).

    sudo python bench/runtime_steps.py [N]
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubelet import cri  # noqa: E402
from kubelet.runtime import network  # noqa: E402
from kubelet.runtime.ociruntime import ops  # noqa: E402
from kubelet.runtime.service import Runtime  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime import CG, make_world  # noqa: E402  (bench/runtime.py: rootfs and cgroup naming)

T: dict[str, list[float]] = {}


def rec(key: str, t0: float) -> None:
    T.setdefault(key, []).append((time.perf_counter() - t0) * 1000)


def timed_calls(call: Callable[..., Awaitable[dict[str, Any]]]) -> Callable[..., Awaitable[dict[str, Any]]]:
    @functools.wraps(call)
    async def wrapper(req: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            return await call(req, fds)
        finally:
            rec(f"fs.{req.get('op')}", t0)
    return wrapper


def pod(name: str, work: Path) -> cri.PodSandboxConfig:
    return cri.PodSandboxConfig(cri.PodSandboxMetadata(name, "default", f"uid-{name}"), name, str(work / "logs"),
                                f"kubepods/pod{name}")


async def main(n: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="kubelite-bench-steps-"))
    net = network.NodeNetwork("10.244.251.0/24", network.DEFAULT_CLUSTER_CIDR, work / "ipam",
                              bridge=f"kltp{os.getpid() % 100000}", veth_prefix="kltp")
    try:
        rootfs, _spec = make_world(work)
        cpu0 = os.times()
        async with Runtime(str(work / "rt"), cgroup_root=CG, network=net) as rt:
            rt.fs.call = timed_calls(rt.fs.call)  # type: ignore[method-assign]
            answer = rt.fs.answer

            async def timed_answer(sock: Any, op: str) -> dict[str, Any]:  # (create: sent from a worker thread)
                t0 = time.perf_counter()
                try:
                    return await answer(sock, op)
                finally:
                    if op == "create":  # (the others are timed as whole calls)
                        rec("fs.create (answer)", t0)
            rt.fs.answer = timed_answer  # type: ignore[method-assign]
            sids = []
            for i in range(n):
                t0 = time.perf_counter()
                sids.append((await rt.run_pod_sandbox(pod(f"s{i}", work)), pod(f"s{i}", work)))
                rec("run_pod_sandbox", t0)
            cfg = cri.ContainerConfig(cri.ContainerMetadata("t"), f"rootfs:{rootfs}", ("/bin/true",),
                                      resources=cri.LinuxResources(memory_limit_in_bytes=64 << 20, cpu_quota=50000,
                                                                   cpu_period=100000))
            for sid, pc in sids:
                t0 = time.perf_counter()
                cid = await rt.create_container(sid, cfg, pc)
                rec("create_container", t0)
                t0 = time.perf_counter()
                await rt.start_container(cid)
                rec("start_container", t0)
                t0 = time.perf_counter()
                await asyncio.to_thread(ops.wait, rt.oci_root, cid)
                rec("wait (exit seen)", t0)
                t0 = time.perf_counter()
                await rt.remove_container(cid)
                rec("remove_container", t0)
            for _ in range(5):
                t0 = time.perf_counter()
                await rt.list_pod_sandboxes()
                rec(f"list_pod_sandboxes ({n})", t0)
                t0 = time.perf_counter()
                await rt.list_containers()
                rec("list_containers", t0)
            t0 = time.perf_counter()
            await asyncio.gather(*(rt.stop_pod_sandbox(s) for s, _ in sids))
            rec(f"stop {n} sandboxes at once", t0)
            t0 = time.perf_counter()
            await asyncio.gather(*(rt.remove_pod_sandbox(s) for s, _ in sids))
            rec(f"remove {n} sandboxes at once", t0)
            t0 = time.perf_counter()
            burst = await asyncio.gather(*(rt.run_pod_sandbox(pod(f"b{i}", work)) for i in range(n)))
            rec(f"burst: {n} sandboxes at once", t0)
            for s in burst:
                await rt.remove_pod_sandbox(s)
        cpu1 = os.times()
        print(f"## bench/runtime_steps - {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, load "
              f"{os.getloadavg()[0]:.1f}, N={n}\n\n| step | n | median ms | max ms |\n|---|---:|---:|---:|")
        for k, v in T.items():
            print(f"| {k} | {len(v)} | {statistics.median(v):.1f} | {max(v):.1f} |")
        print(f"\nCPU s: this process {cpu1.user - cpu0.user + cpu1.system - cpu0.system:.2f}, children "
              f"{cpu1.children_user - cpu0.children_user + cpu1.children_system - cpu0.children_system:.2f}")
    finally:
        network.remove_bridge(net.bridge, veth_prefix="kltp")
        for h in os.listdir("/sys/fs/cgroup"):
            d = f"/sys/fs/cgroup/{h}/{CG}"
            if os.path.isdir(d) and h != "unified":
                subprocess.run(["find", d, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # killed (timeout, kill): clean up as on Ctrl-C
    if os.geteuid() != 0:
        raise SystemExit("bench/runtime_steps: needs root (real containers)")
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))

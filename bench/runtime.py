"""bench/runtime.py - container start-up: kubelite's runtime beside `crun run` and `runc run`, one interleaved run.

Each round runs every peer once in a freshly shuffled order; each measures create + start + wait + delete of
`/bin/true` on the same busybox rootfs and the same config.json (runc's default spec, terminal off,
memory 64 MiB + CPU quota 50 ms/100 ms, its own cgroupsPath):
  runc, crun          `runc|crun run --bundle B id`, spawned and waited for (whole process)
  kubelite-oci        our OCI verbs on that bundle through the node's fork server, from an already-running
                      Python (what the kubelet pays): the cgroup (made by the caller, as the runtime does),
                      create (fork server → shim → init), start, wait, delete
  kubelite-oci-cli    `python -m kubelet.runtime.ociruntime run` (a fresh interpreter per container: the slow
                      path the fork server exists to avoid)
  kubelite-cri        the whole RuntimeService: create_container (overlay snapshot, generated spec) + start
                      + wait for exit + remove_container, in a ready pod sandbox
Also how many creates a pre-forked spare shim took (the rest were forked on demand), per fork server.
Then the memory a running pod costs beside its containers: our pause + shim (PSS and RSS) vs conmon
(the shim CRI-O/podman use, running runc) for one `sleep` container. The state roots of all three runtimes
in the kubelite-oci/runc/crun rows are in the same temp dir (a disk here); the RuntimeService keeps its
own on a tmpfs (kubelet.runtime.snapshots.scratch_root).

Runs as root, inside a private mount namespace where a tmpfs hides the hybrid cgroup2 mount (crun 1.8
refuses hybrid cgroups otherwise; see ../shared/bench/runtime_peers.sh). Usage: python bench/runtime.py [ROUNDS]
[--only=PEER,PEER...] (e.g. ``--only=kubelite-oci,crun`` for a quick A/B while working; no memory table then).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubelet import cri  # noqa: E402
from kubelet.runtime.ociruntime import cgroupfs, ops  # noqa: E402
from kubelet.runtime.ociruntime.client import ForkServerClient  # noqa: E402
from kubelet.runtime.service import Runtime  # noqa: E402

CG = f"kubelite-bench-{os.getpid()}"


def make_world(work: Path) -> tuple[Path, dict]:
    rootfs = work / "rootfs"
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        (rootfs / d).mkdir(parents=True)
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    for a in ("true", "sh", "sleep"):
        (rootfs / "bin" / a).symlink_to("busybox")
    spec_dir = work / "spec"
    spec_dir.mkdir()
    subprocess.run(["runc", "spec"], cwd=spec_dir, check=True)
    spec = json.loads((spec_dir / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/true"]
    spec["root"] = {"path": str(rootfs), "readonly": True}
    spec["linux"]["resources"]["memory"] = {"limit": 64 << 20}
    spec["linux"]["resources"]["cpu"] = {"quota": 50000, "period": 100000}
    return rootfs, spec


def bundle(work: Path, name: str, spec: dict, args: list[str] | None = None) -> Path:
    b = work / name
    b.mkdir(exist_ok=True)
    s = json.loads(json.dumps(spec))
    s["linux"]["cgroupsPath"] = f"/{CG}/{name}"
    s["hostname"] = name
    if args:
        s["process"]["args"] = args
    (b / "config.json").write_text(json.dumps(s))
    return b


def run_proc(argv: list[str]) -> float:
    t0 = time.perf_counter_ns()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = (time.perf_counter_ns() - t0) / 1e6
    if p.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {p.stderr.decode()[:300]}")
    return dt


async def ours_oci(fs: ForkServerClient, root: str, b: Path) -> float:
    cid = uuid.uuid4().hex[:12]
    spec = json.loads((b / "config.json").read_text())
    t0 = time.perf_counter_ns()
    cg = cgroupfs.files(f"{spec['linux']['cgroupsPath']}-{cid}")  # the cgroup made alongside, as the runtime does
    await asyncio.gather(asyncio.to_thread(cgroupfs.create, cg["path"], spec["linux"]["resources"]),
                         fs.call({"op": "create", "root": root, "id": cid, "bundle": str(b), "cgroup": cg}))
    ops.start(root, cid)
    ex = ops.wait(root, cid)
    ops.delete(root, cid)
    cgroupfs.destroy(cg["path"])
    dt = (time.perf_counter_ns() - t0) / 1e6
    if ex["exit_code"] != 0:
        raise SystemExit(f"kubelite-oci: exit {ex}")
    return dt


async def ours_cri(rt: Runtime, sid: str, pod: cri.PodSandboxConfig, cfg: cri.ContainerConfig) -> float:
    t0 = time.perf_counter_ns()
    cid = await rt.create_container(sid, cfg, pod)
    await rt.start_container(cid)
    await asyncio.to_thread(ops.wait, rt.oci_root, cid)
    await rt.remove_container(cid)
    return (time.perf_counter_ns() - t0) / 1e6


def mem_of(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in KiB from smaps_rollup."""
    pss = rss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    return pss, rss


async def memory(work: Path, spec: dict, rt: Runtime, rootfs: Path) -> None:
    pod = cri.PodSandboxConfig(cri.PodSandboxMetadata("mem", "default", "mem"), "mem", str(work / "logs"),
                               "kubepods/podmem")
    sid = await rt.run_pod_sandbox(pod)
    cid = await rt.create_container(sid, cri.ContainerConfig(cri.ContainerMetadata("s"), f"rootfs:{rootfs}",
                                                             ("sleep", "600"), log_path="s.log"), pod)
    await rt.start_container(cid)
    pause = (await rt.pod_sandbox_status(sid)).pid
    shim = json.loads((Path(rt.oci_root) / cid / "state.json").read_text())["shim"]
    p_pss, p_rss = mem_of(pause)
    s_pss, s_rss = mem_of(shim)
    # conmon + runc for the same container
    b = bundle(work, "conmon", spec, ["/bin/sleep", "600"])
    cdir = work / "conmon-state"
    cdir.mkdir()
    cpid = work / "conmon.pid"
    subprocess.run(["conmon", "-c", "klbench", "-u", "klbench", "-n", "klbench", "-r", "/usr/sbin/runc", "-b", str(b),
                    "-p", str(cdir / "pid"), "-l", str(cdir / "log"), "--exit-dir", str(cdir),
                    "--socket-dir-path", str(cdir), "-P", str(cpid), "--runtime-arg", f"--root={cdir}/runc",
                    "--log-level", "error"], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["runc", f"--root={cdir}/runc", "state", "klbench"], capture_output=True).returncode:
            if time.monotonic() > deadline:  # conmon runs `runc create` in the background
                raise SystemExit("conmon did not create the container")
            await asyncio.sleep(0.01)
        subprocess.run(["runc", f"--root={cdir}/runc", "start", "klbench"], check=True)
        c_pss, c_rss = mem_of(int(cpid.read_text()))
    finally:
        subprocess.run(["runc", f"--root={cdir}/runc", "delete", "-f", "klbench"], capture_output=True)
        if cpid.exists():
            try:
                os.kill(int(cpid.read_text()), 15)
            except ProcessLookupError:
                pass
        await rt.stop_pod_sandbox(sid)
        await rt.remove_pod_sandbox(sid)
    print("\n### memory per running pod (one `sleep` container), KiB")
    print("| process | PSS | RSS |\n|---|---:|---:|")
    print(f"| kubelite pause (Python, forked from the fork server) | {p_pss} | {p_rss} |")
    print(f"| kubelite shim (Python, forked from the fork server) | {s_pss} | {s_rss} |")
    print(f"| kubelite pause + shim | {p_pss + s_pss} | {p_rss + s_rss} |")
    print(f"| conmon (C; runc container, no pause) | {c_pss} | {c_rss} |")


async def main(rounds: int, only: set[str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="kubelite-bench-runtime-"))
    try:
        rootfs, spec = make_world(work)
        b = {n: bundle(work, n, spec) for n in ("runc", "crun", "kubelite-oci", "kubelite-oci-cli")}
        oci_root = str(work / "oci")
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        cli = [sys.executable, "-m", "kubelet.runtime.ociruntime", "--root", str(work / "oci-cli"), "run", "--bundle",
               str(b["kubelite-oci-cli"])]
        async with Runtime(str(work / "rt"), cgroup_root=CG) as rt:
            fs = ForkServerClient(str(work / "fs.sock"))
            fs.start()
            pod = cri.PodSandboxConfig(cri.PodSandboxMetadata("bench", "default", "b"), "bench", str(work / "logs"),
                                       "kubepods/podb")
            sid = await rt.run_pod_sandbox(pod)
            cfg = cri.ContainerConfig(cri.ContainerMetadata("t"), f"rootfs:{rootfs}", ("/bin/true",),
                                      resources=cri.LinuxResources(memory_limit_in_bytes=64 << 20, cpu_quota=50000,
                                                                   cpu_period=100000))
            peers = {
                "runc": lambda: run_proc(["runc", "--root", str(work / "runc-state"), "run", "--bundle", str(b["runc"]),
                                          f"r{uuid.uuid4().hex[:8]}"]),
                "crun": lambda: run_proc(["crun", "--root", str(work / "crun-state"), "run", "--bundle", str(b["crun"]),
                                          f"c{uuid.uuid4().hex[:8]}"]),
                "kubelite-oci-cli": lambda: run_proc(cli + [f"k{uuid.uuid4().hex[:8]}"]),
            }
            res: dict[str, list[float]] = {n: [] for n in ("kubelite-oci", "kubelite-cri", *peers)
                                           if not only or n in only}
            rng = random.Random(1)
            for r in range(rounds + 3):
                order = list(res)
                rng.shuffle(order)
                for n in order:
                    if n == "kubelite-oci":
                        dt = await ours_oci(fs, oci_root, b[n])
                    elif n == "kubelite-cri":
                        dt = await ours_cri(rt, sid, pod, cfg)
                    else:
                        os.environ.update(env)
                        dt = peers[n]()
                    if r >= 3:
                        res[n].append(dt)
            took = [await f.call({"op": "ping"}) for f in (fs, rt.fs)]
            fs.stop()
            crun = statistics.median(res["crun"]) if "crun" in res else float("nan")
            runc = statistics.median(res["runc"]) if "runc" in res else float("nan")
            print(f"## bench/runtime - {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, {os.cpu_count()} CPUs, "
                  f"load {os.getloadavg()[0]:.1f}, {rounds} interleaved rounds\n")
            print("create + start + wait + delete of /bin/true (busybox rootfs, 64 MiB + 0.5 CPU limits)\n")
            print("| peer | median ms | p10 ms | p90 ms | ÷ crun | ÷ runc |\n|---|---:|---:|---:|---:|---:|")
            for n, xs in res.items():
                q = statistics.quantiles(xs, n=10)
                med = statistics.median(xs)
                print(f"| {n} | {med:.1f} | {q[0]:.1f} | {q[-1]:.1f} | {med / crun:.2f} | {med / runc:.2f} |")
            print("\ncreates a pre-forked spare shim took (else forked on demand): " + ", ".join(
                f"{n} {t.get('spare_creates', 0)}/{t.get('spare_creates', 0) + t.get('forked_creates', 0)}"
                for n, t in zip(("kubelite-oci", "kubelite-cri"), took)))
            if "kubelite-oci" in res:
                ours = statistics.median(res["kubelite-oci"])
                print(f"\ngoal: kubelite-oci ≤ 0.75 × crun → {'met' if ours <= 0.75 * crun else 'NOT met'}")
            await rt.stop_pod_sandbox(sid)
            await rt.remove_pod_sandbox(sid)
            if not only:
                await memory(work, spec, rt, rootfs)
    finally:
        for h in os.listdir("/sys/fs/cgroup"):
            d = f"/sys/fs/cgroup/{h}/{CG}"
            if os.path.isdir(d) and h != "unified":  # (unified is the hiding tmpfs here: it goes with us)
                subprocess.run(["find", d, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # killed (timeout, kill): clean up as on Ctrl-C
    if os.environ.get("KUBELITE_BENCH_INNER") != "1":  # re-run in a private mount namespace (crun on hybrid)
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "env", "KUBELITE_BENCH_INNER=1",
                              sys.executable, *sys.argv])
    if subprocess.run(["stat", "-fc", "%T", "/sys/fs/cgroup/unified"], capture_output=True, text=True).stdout.strip() == "cgroup2fs":
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "kubelite-bench-hide", "/sys/fs/cgroup/unified"], check=True)
    args = [a for a in sys.argv[1:] if not a.startswith("--only=")]
    picked = {p for a in sys.argv[1:] if a.startswith("--only=") for p in a[len("--only="):].split(",") if p}
    asyncio.run(main(int(args[0]) if args else 60, picked))

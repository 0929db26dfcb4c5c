"""Scheduler throughput and latency, measured as kube's scheduler_perf does (no kubelets).

For each node count: a fresh etcd + apiserver, N hollow nodes registered (lease renewals paused),
10,000 pending pods created while the scheduler is stopped; then the scheduler starts and every
binding is seen through a watch. Throughput = pods bound per second from the first bind to the last.
Then pods arrive at a fixed rate and the create → bound latency p50/p99 is reported.
The peer figure is kube-scheduler's CI bar for SchedulingBasic at 5,000 nodes: 680–810 pods/s.

    python bench/scheduler.py [--nodes 1000,5000] [--pods 10000] [--rate 100] [--latency-pods 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hollow.nodes import HollowNodes  # noqa: E402
from kubelite.api.resources import EVENTS, PODS  # noqa: E402
from kubelite.client import Client  # noqa: E402
from tests.support import cluster  # noqa: E402

PEER = "kube-scheduler CI bar (SchedulingBasic, 5000 nodes): 680-810 pods/s"
REPO = Path(__file__).resolve().parents[1]


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                                             "labels": {"bench": "sched"}},
            "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9",
                                     "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}}


async def create_pods(client: Client, names: list[str], parallel: int = 64) -> dict[str, float]:
    sem = asyncio.Semaphore(parallel)
    created: dict[str, float] = {}

    async def one(n: str) -> None:
        async with sem:
            created[n] = time.monotonic()
            await client.create(PODS, pod(n), namespace="default")
    await asyncio.gather(*(one(n) for n in names))
    return created


async def watch_binds(client: Client, rv: str, want: int, bound: dict[str, float], done: asyncio.Event,
                      on_first: Callable[[], None] | None = None) -> None:
    while len(bound) < want:
        async for ev in client.watch(PODS, namespace="default", resource_version=rv, timeout_seconds=600):
            obj = ev.object
            rv = obj.get("metadata", {}).get("resourceVersion", rv)
            if ev.type in ("ADDED", "MODIFIED") and (obj.get("spec") or {}).get("nodeName"):
                if not bound and on_first is not None:
                    on_first()
                bound.setdefault(obj["metadata"]["name"], time.monotonic())
                if len(bound) >= want:
                    break
    done.set()


def start_scheduler(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(log, "wb") as fh:
        prof = os.environ.get("KUBELITE_BENCH_PROFILE")   # a path: run the scheduler under cProfile
        pre = ["-m", "cProfile", "-o", prof] if prof else []
        return subprocess.Popen([sys.executable, *pre, "-m", "scheduler", "--master", url, "--port", "-1",
                                 "--leader-elect", "false"], stdout=fh, stderr=subprocess.STDOUT, env=env,
                                cwd=str(REPO), start_new_session=True)


def cpu_seconds(pid: int | None = None) -> float:
    """utime + stime of a process (this one if ``pid`` is None), in seconds."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(procs: dict[str, int | None]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in procs.items()}


def stored_count(etcd_url: str, prefix: str) -> int:
    """How many keys etcd holds under ``prefix`` (asked of etcd directly: no load on the apiserver)."""
    out = subprocess.run(["etcdctl", "--endpoints", etcd_url, "get", prefix, "--prefix", "--keys-only", "--limit=1",
                          "-w", "json"],
                         capture_output=True, text=True, env=dict(os.environ, ETCDCTL_API="3"), timeout=10)
    try:
        return int(json.loads(out.stdout).get("count") or 0)
    except ValueError:
        return 0


async def wait_for_events(etcd_url: str, prefix: str, want: int, timeout: float = 60.0) -> int:
    """Poll until ``want`` Events exist in ``default`` (the Scheduled events of the burst); returns the count."""
    deadline = time.monotonic() + timeout
    while True:
        n = await asyncio.to_thread(stored_count, etcd_url, f"{prefix}/events/default/")
        if n >= want or time.monotonic() > deadline:
            return n
        await asyncio.sleep(0.2)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def binding_ceiling(client: Client, node_names: list[str], count: int, parallel: int = 64) -> float:
    """Bindings per second the apiserver takes when nothing is scheduled: pods created, then bound
    round-robin by the bench itself at the scheduler's concurrency (the path's upper bound)."""
    names = [f"b-{i:05d}" for i in range(count)]
    await create_pods(client, names)
    sem = asyncio.Semaphore(parallel)

    async def bind(i: int, n: str) -> None:
        async with sem:
            await client.create_subresource(PODS, n, "binding", {
                "apiVersion": "v1", "kind": "Binding", "metadata": {"name": n, "namespace": "default"},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_names[i % len(node_names)]}}, "default")
    t = time.monotonic()
    await asyncio.gather(*(bind(i, n) for i, n in enumerate(names)))
    return count / (time.monotonic() - t)


async def run_one(nodes: int, pods: int, rate: float, latency_pods: int) -> dict:
    with cluster.etcd_server() as etcd, cluster.apiserver(etcd.url) as api:
        async with Client.from_url(api.url) as client:
            t = time.monotonic()
            hollow = HollowNodes(client, nodes, "bench-node-", cpu="32", memory="256Gi", pods="110")
            await hollow.register()              # leases renewed once, then paused: no renewal loop runs
            print(f"  {nodes} nodes registered in {time.monotonic() - t:.1f}s", flush=True)
            t = time.monotonic()
            names = [f"p-{i:05d}" for i in range(pods)]
            await create_pods(client, names)
            print(f"  {pods} pending pods created in {time.monotonic() - t:.1f}s", flush=True)
            rv = (await client.list(PODS, namespace="default", limit=1))["metadata"]["resourceVersion"]
            bound: dict[str, float] = {}
            done = asyncio.Event()
            log = Path(f"/tmp/kubelite-bench-scheduler-{os.getpid()}.log")
            procs: dict[str, int | None] = {"scheduler": None, "apiserver": api.proc.pid if api.proc else None,
                                            "etcd": etcd.proc.pid if etcd.proc else None, "bench": None}
            cpu0: dict[str, float] = {}
            async with asyncio.TaskGroup() as tg:
                watcher = tg.create_task(watch_binds(client, rv, pods, bound, done,
                                                     lambda: cpu0.update(cpu_snapshot(procs))))
                sched = start_scheduler(api.url, log)
                procs["scheduler"] = sched.pid
                try:
                    started = time.monotonic()
                    await asyncio.wait_for(done.wait(), timeout=max(600, pods / 10))
                finally:
                    if sched.poll() is not None:
                        print(log.read_text()[-2000:])
                times = sorted(bound.values())
                cpu_bound = cpu_snapshot(procs)
                # the burst's work includes its Scheduled Events: count CPU until they are all written
                events_at_end = await wait_for_events(etcd.url, api.prefix.rstrip("/"), pods)
                events_lag = time.monotonic() - times[-1]
                cpu1 = cpu_snapshot(procs)
                throughput = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
                first_bind = times[0] - started
                # latency at a fixed arrival rate, scheduler running
                lat_names = [f"l-{i:05d}" for i in range(latency_pods)]
                lat_bound: dict[str, float] = {}
                lat_done = asyncio.Event()
                rv = (await client.list(PODS, namespace="default", limit=1))["metadata"]["resourceVersion"]
                tg.create_task(watch_binds(client, rv, latency_pods, lat_bound, lat_done))
                created: dict[str, float] = {}
                t0 = time.monotonic()
                pending = []
                for i, n in enumerate(lat_names):
                    delay = t0 + i / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    created[n] = time.monotonic()
                    pending.append(tg.create_task(client.create(PODS, pod(n), namespace="default")))
                await asyncio.gather(*pending)
                await asyncio.wait_for(lat_done.wait(), timeout=300)
                watcher.cancel()
                sched.terminate()
                sched.wait(10)
            log.unlink(missing_ok=True)
            events = await client.list(EVENTS, namespace="default")
            scheduled_events = sum(1 for e in events.get("items") or () if e.get("reason") == "Scheduled")
            lat = [lat_bound[n] - created[n] for n in lat_names if n in lat_bound]
            ceiling = await binding_ceiling(client, hollow.names, min(pods, 2000))
            cpu_ms = {k: (cpu1[k] - cpu0[k]) * 1000 / max(1, len(bound) - 1) for k in procs}
            cpu_ms_bound = {k: (cpu_bound[k] - cpu0[k]) * 1000 / max(1, len(bound) - 1) for k in procs}
            return {"nodes": nodes, "pods": pods, "throughput": throughput, "first_bind": first_bind, "cpu_ms": cpu_ms, "cpu_ms_bound": cpu_ms_bound,
                    "events_at_end": events_at_end, "events_lag": events_lag,
                    "events": scheduled_events,
                    "p50": pct(lat, 50), "p99": pct(lat, 99), "rate": rate, "ceiling": ceiling,
                    "latency_pods": latency_pods}


def cycle_rate(nodes: int, pods: int = 2000) -> float:
    """Scheduling cycles per CPU second in-process (framework + cache only, no apiserver, no binding)."""
    from scheduler.cache import Cache
    from scheduler.framework.runtime import Framework
    from scheduler.plugins import SCORE_WEIGHTS, default_plugins
    cache = Cache()
    for i in range(nodes):
        cache.add_node({"metadata": {"name": f"n{i}", "labels": {"kubernetes.io/hostname": f"n{i}"}}, "spec": {},
                        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"}}})
    fw = Framework("default-scheduler", default_plugins(), SCORE_WEIGHTS)
    t = time.process_time()      # CPU time: robust against other processes on a loaded machine
    for i in range(pods):
        p = pod(f"p-{i}")
        state = cache.cycle_state(p)
        cache.assume_pod(p, fw.schedule(state, p, cache.node_list()).node, state.get("PodInfo"))
    return pods / (time.process_time() - t)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", default="1000,5000")
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--rate", type=float, default=100.0, help="pods/s arriving for the latency run")
    p.add_argument("--latency-pods", type=int, default=1000)
    p.add_argument("--cycle-only", action="store_true", help="only the in-process scheduling cycle rate")
    a = p.parse_args()
    for n in [int(x) for x in a.nodes.split(",")]:
        print(f"in-process scheduling cycle, {n} nodes: {cycle_rate(n):.0f} cycles/s", flush=True)
    if a.cycle_only:
        return
    results = []
    for n in [int(x) for x in a.nodes.split(",")]:
        print(f"SchedulingBasic: {n} nodes, {a.pods} pods", flush=True)
        r = await run_one(n, a.pods, a.rate, a.latency_pods)
        results.append(r)
        print(f"  throughput {r['throughput']:.0f} pods/s (first bind {r['first_bind']:.1f}s after start); "
              f"create->bound at {r['rate']:.0f} pods/s: p50 {r['p50'] * 1000:.0f} ms, p99 {r['p99'] * 1000:.0f} ms; "
              f"bindings alone (no scheduler, same apiserver): {r['ceiling']:.0f}/s", flush=True)
        print("  CPU ms per pod, first bind until the burst's Scheduled Events are written "
              f"({r['events_at_end']}/{r['pods']}, {r['events_lag']:.1f}s after the last bind): " + ", ".join(
                  f"{k} {v:.2f}" for k, v in r["cpu_ms"].items()) + f", total {sum(r['cpu_ms'].values()):.2f} "
              f"(until the last bind: {sum(r['cpu_ms_bound'].values()):.2f}); "
              f"Scheduled events written {r['events']}/{r['pods'] + r['latency_pods']}; "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print()
    print(f"{'nodes':>6} {'pods':>6} {'pods/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'binds/s alone':>14}")
    for r in results:
        print(f"{r['nodes']:>6} {r['pods']:>6} {r['throughput']:>8.0f} {r['p50'] * 1000:>8.0f} {r['p99'] * 1000:>8.0f}"
              f" {r['ceiling']:>14.0f}")
    print(f"peer: {PEER}")


if __name__ == "__main__":
    asyncio.run(main())

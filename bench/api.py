"""Benchmark of the apiserver against raw etcd, on one etcd in one run (issue 2's figures).

    /work/venv/bin/python bench/api.py [--pods 10000] [--seq 1000] [--conc 4000] [--watchers 100] [--api-workers 1]

Measures, through the apiserver (HTTP, JSON, strategies, validation, watch cache): pod create
sequential and with 64 in flight, get with ``--pods`` pods stored, list of all of them, and
watch delivery to ``--watchers`` watchers; beside raw etcd put/range of 1 KiB values with the
same aetcd client. Prints p50/p99 and the ratios against the goals (create ≥ 0.5× raw put
throughput, p99 create ≤ 50 ms, p99 get ≤ 10 ms, watch delivery p99 ≤ 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aetcd  # noqa: E402
import aiohttp  # noqa: E402
import orjson  # noqa: E402
from aetcd import rpc  # noqa: E402

from tests.support import cluster  # noqa: E402

PODS = "/api/v1/namespaces/default/pods"
CONC = 64


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (Linux /proc): a figure other load on the machine does not skew."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def ms(v: float) -> str:
    return f"{v * 1000:7.2f}"


def pod(name: str) -> dict[str, Any]:
    """A pod of about 1 KiB of JSON, like the raw 1 KiB values."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench", "tier": "web", "idx": name[-4:]},
                         "annotations": {"bench/pad": "x" * 300}},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"],
                                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                     "restartPolicy": "Always", "terminationGracePeriodSeconds": 5}}


async def timed(n: int, conc: int, op: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    """Run ``op(i)`` for i < n with ``conc`` in flight; returns (ops/s, latencies)."""
    lat: list[float] = []
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            t0 = time.perf_counter()
            await op(i)
            lat.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(conc):
            tg.create_task(worker())
    return n / (time.perf_counter() - t0), lat


def row(label: str, rate: float | None, lat: list[float]) -> None:
    r = f"{rate:9.0f}/s" if rate is not None else " " * 11
    print(f"  {label:<44} {r}   p50 {ms(pct(lat, 50))} ms   p99 {ms(pct(lat, 99))} ms")


async def raw_etcd(url: str, n_seq: int, n_conc: int, etcd_pid: int) -> dict[str, Any]:
    host, port = url.rsplit("//", 1)[1].split(":")
    value = b"v" * 1024
    out: dict[str, Any] = {}
    async with aetcd.Client(host, int(port), options={"grpc.max_receive_message_length": 64 << 20}) as c:
        out["put_seq"] = await timed(n_seq, 1, lambda i: c.put(f"/bench-raw/s/{i:08d}".encode(), value))
        e0, c0 = cpu_seconds(etcd_pid), cpu_seconds(os.getpid())
        out["put_conc"] = await timed(n_conc, CONC, lambda i: c.put(f"/bench-raw/c/{i:08d}".encode(), value))
        out["cpu_put"] = ((cpu_seconds(etcd_pid) - e0) / n_conc, (cpu_seconds(os.getpid()) - c0) / n_conc)
        keys = [f"/bench-raw/c/{i:08d}".encode() for i in range(n_conc)]
        out["get"] = await timed(1000, 1, lambda i: c.get(random.choice(keys)))

        async def range_all(_: int) -> None:
            await c.kvstub.Range(rpc.RangeRequest(key=b"/bench-raw/c/", range_end=b"/bench-raw/c0"))
        out["range"] = await timed(5, 1, range_all)
    return out


async def api_bench(url: str, total_pods: int, n_seq: int, n_conc: int, watchers: int,
                    pids: tuple[int, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    conn = aiohttp.TCPConnector(limit=CONC + watchers + 8)
    async with aiohttp.ClientSession(url, connector=conn, timeout=aiohttp.ClientTimeout(total=600)) as s:
        headers = {"Content-Type": "application/json"}
        bodies = {}

        async def create(name: str) -> None:
            body = bodies.pop(name, None) or orjson.dumps(pod(name))
            async with s.post(PODS, data=body, headers=headers) as r:
                if r.status != 201:
                    raise RuntimeError(f"create {name}: {r.status} {await r.text()}")
                await r.read()

        out["create_seq"] = await timed(n_seq, 1, lambda i: create(f"seq-{i:06d}"))
        a0, e0 = cpu_seconds(pids[0]), cpu_seconds(pids[1])
        out["create_conc"] = await timed(n_conc, CONC, lambda i: create(f"conc-{i:06d}"))
        out["cpu_create"] = ((cpu_seconds(pids[0]) - a0) / n_conc, (cpu_seconds(pids[1]) - e0) / n_conc)
        have = n_seq + n_conc
        if total_pods > have:
            await timed(total_pods - have, CONC, lambda i: create(f"fill-{i:06d}"))
        names = [f"conc-{i:06d}" for i in range(n_conc)]

        async def get(_: int) -> None:
            async with s.get(f"{PODS}/{random.choice(names)}") as r:
                assert r.status == 200
                await r.read()
        out["get"] = await timed(1000, 1, get)

        last: list[bytes] = []

        async def list_all(_: int) -> None:
            async with s.get(PODS) as r:
                last[:] = [await r.read()]
                assert r.status == 200
        out["list"] = await timed(3, 1, list_all)      # response bytes received; decoding is the client's
        t0 = time.perf_counter()
        out["list_items"] = len(orjson.loads(last[0])["items"])
        out["list_decode"] = time.perf_counter() - t0

        async def list_table(_: int) -> None:
            async with s.get(PODS, params={"limit": "500"},
                             headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}) as r:
                await r.read()
        out["list_table500"] = await timed(5, 1, list_table)

        # watch delivery: watchers from the current revision, then sequential creates
        async with s.get(PODS, params={"limit": "1"}) as r:
            rv = orjson.loads(await r.read())["metadata"]["resourceVersion"]
        n_events = 200
        acked: dict[str, float] = {}
        delays: list[float] = []
        ready = 0
        all_ready = asyncio.Event()

        async def watcher() -> None:
            nonlocal ready
            async with s.get(PODS, params={"watch": "true", "resourceVersion": rv}) as r:
                ready += 1
                if ready == watchers:
                    all_ready.set()
                seen = 0
                async for line in r.content:
                    ev = orjson.loads(line)
                    t = time.perf_counter()
                    name = ev["object"]["metadata"]["name"]
                    if name.startswith("watch-"):
                        delays.append((name, t))  # type: ignore[arg-type]
                        seen += 1
                        if seen == n_events:
                            return

        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(watcher()) for _ in range(watchers)]
            await asyncio.wait_for(all_ready.wait(), 60)
            for i in range(n_events):
                name = f"watch-{i:05d}"
                t0 = time.perf_counter()
                await create(name)
                acked[name] = t0
                await asyncio.sleep(0.005)
            await asyncio.wait_for(asyncio.gather(*tasks), 120)
        out["watch"] = (None, [max(0.0, t - acked[name]) for name, t in delays])  # type: ignore[misc]
        out["watch_n"] = len(delays)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--seq", type=int, default=1000)
    ap.add_argument("--conc", type=int, default=4000)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--api-workers", type=int, default=1, help="apiserver --workers (processes sharing the port)")
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    with cluster.etcd_server() as etcd:
        print(f"etcd {cluster.ETCD_BIN} on {etcd.url} (data on /dev/shm, --unsafe-no-fsync); 1 KiB values; "
              f"{CONC} in flight for concurrent runs; {os.cpu_count()} cores shared by all processes")
        assert etcd.proc is not None
        raw = await raw_etcd(etcd.url, a.seq, a.conc, etcd.proc.pid)
        with cluster.apiserver(etcd.url, prefix="/bench-registry",
                               extra_args=["--workers", str(a.api_workers)]) as server:
            assert server.proc is not None
            api = await api_bench(server.url, a.pods, a.seq, a.conc, a.watchers, (server.proc.pid, etcd.proc.pid))
    print("\nraw etcd (aetcd 1.0.0, same etcd):")
    row("put sequential", *raw["put_seq"])
    row(f"put {CONC} concurrent", *raw["put_conc"])
    row("get one key", *raw["get"])
    row(f"range {a.conc} keys", *raw["range"])
    print(f"\napiserver (HTTP/JSON, aiohttp client; --workers {a.api_workers}):")
    row("pod create sequential", *api["create_seq"])
    row(f"pod create {CONC} concurrent", *api["create_conc"])
    row(f"pod get ({a.pods} pods stored)", *api["get"])
    row(f"pod list all ({api['list_items']} pods, JSON)", *api["list"])
    print(f"  {'(client-side orjson decode of that list)':<44} {' ' * 11}   {ms(api['list_decode'])} ms")
    row("pod list limit=500 as Table", *api["list_table500"])
    row(f"watch delivery to {a.watchers} watchers ({api['watch_n']} ev)", None, api["watch"][1])
    print(f"\n  machine load average (1 min): {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end "
          f"(other work on these {os.cpu_count()} cores skews every figure)")
    if a.api_workers == 1:
        cpu_api, cpu_etcd = api["cpu_create"]
        print(f"  CPU per op (load-independent): pod create = apiserver {cpu_api * 1e3:.2f} ms + etcd "
              f"{cpu_etcd * 1e3:.2f} ms; raw put = etcd {raw['cpu_put'][0] * 1e3:.2f} ms + aetcd client "
              f"{raw['cpu_put'][1] * 1e3:.2f} ms  => one apiserver core sustains ~{1 / cpu_api:.0f} creates/s")
    seq_ratio = api["create_seq"][0] / raw["put_seq"][0]
    conc_ratio = api["create_conc"][0] / raw["put_conc"][0]
    print("\nratios and goals:")
    print(f"  create/put throughput: sequential {seq_ratio:.2f}x, concurrent {conc_ratio:.2f}x   (goal >= 0.5x)")
    print(f"  p99 create (concurrent) {ms(pct(api['create_conc'][1], 99))} ms (goal <= 50), "
          f"p99 get {ms(pct(api['get'][1], 99))} ms (goal <= 10), "
          f"p99 watch delivery {ms(pct(api['watch'][1], 99))} ms (goal <= 50)")



if __name__ == "__main__":
    gc.freeze()                          # the measuring client: keep GC pauses out of its timings
    gc.set_threshold(50_000, 20, 100)
    asyncio.run(main())

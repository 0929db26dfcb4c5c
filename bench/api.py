"""Benchmark of the apiserver against raw etcd, on one etcd in one run (issue 2's figures).

    /work/venv/bin/python bench/api.py [--pods 10000] [--seq 1000] [--conc 4000] [--watchers 100] [--api-workers 1]
                                       [--api-arg=--no-lean-http] [--distinct-specs]

Measures, through the apiserver (HTTP, JSON, strategies, validation, watch cache): pod create
sequential and with 64 in flight, get with ``--pods`` pods stored, list of all of them, and
watch delivery to ``--watchers`` watchers; beside raw etcd put/range of 1 KiB values with the
two clients: aetcd 1.0.0 (grpc.aio; the issue's baseline) and the apiserver's own etcd client
(``apiserver.storage.h2grpc``, a lean gRPC/HTTP2 client on the asyncio loop). Raw puts and pod
creates are interleaved (sequential: raw aetcd, raw h2grpc, lean, aiohttp; then the same with 64 in
flight, plus a raw aetcd create-if-absent txn) so that each ratio compares runs under the same
machine load. The txn is what etcd itself does for a create (a put on a ``version == 0`` compare):
etcd 3.4 spends about twice a put's CPU on it, which the CPU arithmetic at the end takes into account.

Two HTTP clients drive the creates: a lean keep-alive HTTP/1.1 client (:class:`kubelite.client.fastwriter.Http1Connection`:
one asyncio Protocol per connection, requests encoded before the clock starts, Content-Length
parsing only — what a Go load generator costs) and aiohttp's client (several times the CPU per
request, on the same 2 cores as the server). The ratios use the lean client; aiohttp's are
printed beside them. Prints p50/p99, the ratios against the goals (create ≥ 0.5× raw put
throughput, p99 create ≤ 50 ms, p99 get ≤ 10 ms, watch delivery p99 ≤ 50 ms), the p99 create of
each interleaved round (one round's stall — the apiserver descheduled while other work holds both
cores — stands out there), the apiserver's resident memory with ``--pods`` pods stored, and the CPU
arithmetic that bounds the concurrent ratio on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
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

from apiserver.storage.h2grpc import Channel  # noqa: E402
from kubelite.client.fastwriter import Http1Connection  # noqa: E402
from tests.support import cluster  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_report import CONC, pct, report  # noqa: E402

PODS = "/api/v1/namespaces/default/pods"


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (Linux /proc): a figure other load on the machine does not skew."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --distinct-specs: every pod gets a spec of its own (env B = its name), as hand-written pods have;
# by default they share one spec, as the pods of one ReplicaSet do (the apiserver memoizes the walks
# over a spec it has seen: kubelite.api.jsonmemo)
DISTINCT_SPECS = False


def pod(name: str) -> dict[str, Any]:
    """A pod of about 1 KiB of JSON, like the raw 1 KiB values."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench", "tier": "web", "idx": name[-4:]},
                         "annotations": {"bench/pad": "x" * 300}},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"],
                                     "env": [{"name": "A", "value": "1"},
                                             {"name": "B", "value": name if DISTINCT_SPECS else "2"}],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                     "restartPolicy": "Always", "terminationGracePeriodSeconds": 5}}


async def lean_open(url: str) -> Http1Connection:
    """One keep-alive connection of the library's lean HTTP/1.1 client (what the scheduler posts with)."""
    host, port = url.rsplit("//", 1)[1].split(":")
    return await Http1Connection.open(host, int(port))


async def lean_request(conn: Http1Connection, data: bytes) -> tuple[int, bytes]:
    """Send a pre-encoded request; its status and body."""
    status, _ctype, body = await conn.request(data, time.monotonic() + 60)
    return status, body


# a User-Agent as client-go sends one: the apiserver records its prefix as the field manager
# (managedFields), as it does for aiohttp's "Python/3.12 aiohttp/..." and for kubectl
LEAN_UA = "kubelite-bench/v0.0.0 (linux/amd64) kubernetes/$Format"


def lean_post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {LEAN_UA}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def lean_get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {LEAN_UA}\r\nAccept: application/json\r\n\r\n".encode()


async def timed(n: int, conc: int, op: Callable[[int, int], Awaitable[None]]) -> tuple[float, list[float]]:
    """Run ``op(i, worker)`` for i < n with ``conc`` workers in flight; returns (ops/s, latencies)."""
    lat: list[float] = []
    it = iter(range(n))

    async def worker(w: int) -> None:
        for i in it:
            t0 = time.perf_counter()
            await op(i, w)
            lat.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for w in range(conc):
            tg.create_task(worker(w))
    return n / (time.perf_counter() - t0), lat


class CpuMeter:
    """CPU seconds per op of several processes over one measured run."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.t0 = {k: cpu_seconds(p) for k, p in pids.items()}

    def per_op(self, n: int) -> dict[str, float]:
        return {k: (cpu_seconds(p) - self.t0[k]) / n for k, p in self.pids.items()}


async def run_interleaved(etcd_url: str, api_url: str, n_seq: int, n_conc: int,
                          pids: dict[str, int], rounds: int) -> dict[str, Any]:
    """Raw puts and pod creates (lean and aiohttp clients), interleaved so each ratio sees the same load."""
    host, port = etcd_url.rsplit("//", 1)[1].split(":")
    value = b"v" * 1024
    out: dict[str, Any] = {}
    me = os.getpid()
    conns = [await lean_open(api_url) for _ in range(CONC)]
    bodies = {tag: [lean_post(PODS, orjson.dumps(pod(f"{tag}-{i:06d}"))) for i in range(n)]
              for tag, n in (("lseq", n_seq), ("lconc", n_conc))}
    json_bodies = {tag: [orjson.dumps(pod(f"{tag}-{i:06d}")) for i in range(n)]
                   for tag, n in (("aseq", n_seq), ("aconc", n_conc))}
    conn = aiohttp.TCPConnector(limit=CONC + 8)
    async with aetcd.Client(host, int(port), options={"grpc.max_receive_message_length": 64 << 20}) as c, \
            aiohttp.ClientSession(api_url, connector=conn, timeout=aiohttp.ClientTimeout(total=600)) as s:
        headers = {"Content-Type": "application/json"}

        async def lean(tag: str, i: int, w: int) -> None:
            status, body = await lean_request(conns[w], bodies[tag][i])
            if status != 201:
                raise RuntimeError(f"create {tag}-{i}: {status} {body[:300]!r}")

        async def aio(tag: str, i: int, w: int) -> None:
            async with s.post(PODS, data=json_bodies[tag][i], headers=headers) as r:
                if r.status != 201:
                    raise RuntimeError(f"create {tag}-{i}: {r.status} {await r.text()}")
                await r.read()

        for i in range(50):                               # warm both clients and the server's paths
            await lean_warm(conns[0], f"warm-l-{i:04d}")
            await aio_warm(s, f"warm-a-{i:04d}")
            await c.put(f"/bench-raw/w/{i}".encode(), value)
        h2 = Channel(host, int(port))

        async def h2_put(key: bytes) -> None:
            rpc.PutResponse.FromString(await h2.unary("/etcdserverpb.KV/Put",
                                                      rpc.PutRequest(key=key, value=value).SerializeToString(), 10))
        for i in range(50):
            await h2_put(f"/bench-raw/w/h{i}".encode())

        async def txn_create(key: str) -> None:
            k = key.encode()
            ok, _ = await c.transaction(compare=[c.transactions.version(k) == 0],
                                        success=[c.transactions.put(k, value)], failure=[])
            if not ok:
                raise RuntimeError(f"txn create {key}: the key exists")
        p99s: dict[str, list[float]] = {}
        rates: dict[str, list[float]] = {}
        lats: dict[str, list[float]] = {}
        cpu: dict[str, dict[str, float]] = {}

        async def measure(kind: str, n: int, conc: int, op: Callable[[int, int], Awaitable[None]],
                          who: tuple[str, ...]) -> None:
            m = CpuMeter({k: v for k, v in (*pids.items(), ("client", me)) if k in who})
            rate, lat = await timed(n, conc, op)
            rates.setdefault(kind, []).append(rate)
            lats.setdefault(kind, []).extend(lat)
            p99s.setdefault(kind, []).append(pct(lat, 99))
            total = cpu.setdefault(kind, {k: 0.0 for k in who})
            for k, v in m.per_op(n).items():
                total[k] += v * n / (n_seq if kind.endswith("seq") else n_conc)
        for r in range(rounds):                            # interleaved: each round sees one machine load
            for mode, n_all, conc in (("seq", n_seq, 1), ("conc", n_conc, CONC)):
                n = n_all // rounds
                base = r * n
                await measure(f"put_{mode}", n, conc,
                              lambda i, w: c.put(f"/bench-raw/{mode}/{base + i:08d}".encode(), value), ("etcd", "client"))
                await measure(f"h2put_{mode}", n, conc,
                              lambda i, w: h2_put(f"/bench-raw/h{mode}/{base + i:08d}".encode()), ("etcd", "client"))
                if mode == "conc":              # what etcd alone allows a create: a put if the key is absent
                    await measure("txn_conc", n, conc, lambda i, w: txn_create(f"/bench-raw/t/{base + i:08d}"),
                                  ("etcd", "client"))
                await measure(f"lean_{mode}", n, conc, lambda i, w: lean(f"l{mode}", base + i, w),
                              ("apiserver", "etcd", "client"))
                await measure(f"aio_{mode}", n, conc, lambda i, w: aio(f"a{mode}", base + i, w),
                              ("apiserver", "etcd", "client"))
        for kind in rates:
            out[kind] = (statistics.median(rates[kind]), lats[kind])
            out[f"rounds_{kind}"] = rates[kind]
            out[f"p99s_{kind}"] = p99s[kind]
            out[f"cpu_{kind}"] = cpu[kind]
        keys = [f"/bench-raw/conc/{i:08d}".encode() for i in range(n_conc // rounds * rounds)]
        out["raw_get"] = await timed(1000, 1, lambda i, w: c.get(random.choice(keys)))

        async def range_all(_: int, __: int) -> None:
            await c.kvstub.Range(rpc.RangeRequest(key=b"/bench-raw/conc/", range_end=b"/bench-raw/conc0"))
        out["range"] = await timed(5, 1, range_all)
        await h2.close()
    for cn in conns:
        cn.close()
    return out


async def lean_warm(conn: Http1Connection, name: str) -> None:
    status, body = await lean_request(conn, lean_post(PODS, orjson.dumps(pod(name))))
    if status != 201:
        raise RuntimeError(f"create {name}: {status} {body[:300]!r}")


async def aio_warm(s: aiohttp.ClientSession, name: str) -> None:
    async with s.post(PODS, data=orjson.dumps(pod(name)), headers={"Content-Type": "application/json"}) as r:
        if r.status != 201:
            raise RuntimeError(f"create {name}: {r.status} {await r.text()}")
        await r.read()


async def api_reads(url: str, total_pods: int, have: int, names: list[str], watchers: int) -> dict[str, Any]:
    """Fill up to ``total_pods``, then get (lean and aiohttp), list, Table list and watch delivery."""
    out: dict[str, Any] = {}
    conns = [await lean_open(url) for _ in range(CONC)]
    if total_pods > have:
        fill = [lean_post(PODS, orjson.dumps(pod(f"fill-{i:06d}"))) for i in range(total_pods - have)]

        async def create_fill(i: int, w: int) -> None:
            status, body = await lean_request(conns[w], fill[i])
            if status != 201:
                raise RuntimeError(f"create fill-{i}: {status} {body[:300]!r}")
        await timed(len(fill), CONC, create_fill)
    gets = [lean_get(f"{PODS}/{n}") for n in names]

    async def lean_get_one(_: int, __: int) -> None:
        status, _body = await lean_request(conns[0], random.choice(gets))
        assert status == 200
    out["get_lean"] = await timed(1000, 1, lean_get_one)
    for cn in conns:
        cn.close()
    conn = aiohttp.TCPConnector(limit=CONC + watchers + 8)
    async with aiohttp.ClientSession(url, connector=conn, timeout=aiohttp.ClientTimeout(total=600)) as s:
        headers = {"Content-Type": "application/json"}

        async def create(name: str) -> None:
            async with s.post(PODS, data=orjson.dumps(pod(name)), headers=headers) as r:
                if r.status != 201:
                    raise RuntimeError(f"create {name}: {r.status} {await r.text()}")
                await r.read()

        async def get(_: int, __: int) -> None:
            async with s.get(f"{PODS}/{random.choice(names)}") as r:
                assert r.status == 200
                await r.read()
        out["get"] = await timed(1000, 1, get)

        last: list[bytes] = []

        async def list_all(_: int, __: int) -> None:
            async with s.get(PODS) as r:
                last[:] = [await r.read()]
                assert r.status == 200
        out["list"] = await timed(3, 1, list_all)      # response bytes received; decoding is the client's
        t0 = time.perf_counter()
        out["list_items"] = len(orjson.loads(last[0])["items"])
        out["list_decode"] = time.perf_counter() - t0

        async def list_table(_: int, __: int) -> None:
            async with s.get(PODS, params={"limit": "500"},
                             headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}) as r:
                await r.read()
        out["list_table500"] = await timed(5, 1, list_table)

        # watch delivery: watchers from the current revision, then sequential creates
        async with s.get(PODS, params={"limit": "1"}) as r:
            rv = orjson.loads(await r.read())["metadata"]["resourceVersion"]
        n_events = 200
        acked: dict[str, float] = {}
        delays: list[tuple[str, float]] = []
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
                        delays.append((name, t))
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
        out["watch"] = (None, [max(0.0, t - acked[name]) for name, t in delays])
        out["watch_n"] = len(delays)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--seq", type=int, default=1000)
    ap.add_argument("--conc", type=int, default=4000)
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of puts and creates (median rate)")
    ap.add_argument("--api-workers", type=int, default=1, help="apiserver --workers (processes sharing the port)")
    ap.add_argument("--api-arg", action="append", default=[],
                    help="one more apiserver argument, e.g. --api-arg=--no-lean-http (repeatable)")
    ap.add_argument("--distinct-specs", action="store_true",
                    help="give every pod a spec of its own (default: one spec, as a ReplicaSet's pods)")
    a = ap.parse_args()
    global DISTINCT_SPECS
    DISTINCT_SPECS = a.distinct_specs
    load0 = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    with cluster.etcd_server() as etcd:
        print(f"etcd {cluster.ETCD_BIN} on {etcd.url} (data on /dev/shm, --unsafe-no-fsync); 1 KiB values; "
              f"{CONC} in flight for concurrent runs; {cores} cores shared by all processes")
        assert etcd.proc is not None
        with cluster.apiserver(etcd.url, prefix="/bench-registry",
                               extra_args=["--workers", str(a.api_workers), *a.api_arg]) as server:
            assert server.proc is not None
            pids = {"apiserver": server.proc.pid, "etcd": etcd.proc.pid}
            w = await run_interleaved(etcd.url, server.url, a.seq, a.conc, pids, a.rounds)
            made_conc = a.conc // a.rounds * a.rounds
            have = 2 * (a.seq // a.rounds * a.rounds + made_conc) + 100
            api = await api_reads(server.url, a.pods, have, [f"lconc-{i:06d}" for i in range(made_conc)], a.watchers)
            api_rss = rss_mib(server.proc.pid)
    report(a, w, api, api_rss, load0, cores)


if __name__ == "__main__":
    gc.freeze()                          # the measuring client: keep GC pauses out of its timings
    gc.set_threshold(50_000, 20, 100)
    asyncio.run(main())

"""What the apiserver's metrics cost per request.

1. The middleware alone (classify the path, inflight gauge, counter, histogram) around a handler that
   does nothing, against calling that handler directly (its peer): pure CPU, stable on a busy machine.
2. The same in-process app on the memory store with metrics and without (the peer), GET and POST,
   interleaved rounds (noisy when the machine is busy).

    python -m bench.metrics_overhead [--requests 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from aiohttp.test_utils import TestClient, TestServer

from apiserver import metrics
from apiserver.app import make_app
from apiserver.handlers.common import Settings
from apiserver.storage.memory import MemoryStore


def _app(with_metrics: bool):  # type: ignore[no-untyped-def]
    store = MemoryStore()
    app = make_app(Settings(etcd_servers=[], bookmark_interval=60), store_factory=lambda _s: store)
    if not with_metrics:
        del app[metrics.METRICS]            # middleware and store wrapper become pass-through
    return app


async def _run(with_metrics: bool, n: int) -> tuple[float, float]:
    async with TestClient(TestServer(_app(with_metrics))) as c:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}}
        t0 = time.perf_counter()
        for i in range(n):
            body["metadata"]["name"] = f"cm{i}"
            r = await c.post("/api/v1/namespaces/default/configmaps", json=body)
            assert r.status == 201
            await r.release()
        post = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for i in range(n):
            r = await c.get(f"/api/v1/namespaces/default/configmaps/cm{i}")
            assert r.status == 200
            await r.release()
        get = (time.perf_counter() - t0) / n
        return post, get


async def _micro(n: int) -> None:
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    app = web.Application()
    m = metrics.install(app)

    async def handler(_: web.Request) -> web.Response:
        return web.Response()
    req = make_mocked_request("GET", "/api/v1/namespaces/default/pods/web-1", app=app)
    req.match_info.add_app(app)
    assert m is app[metrics.METRICS]
    best = {}
    for label, call in (("direct (peer)", lambda: handler(req)), ("through middleware", lambda: metrics.middleware(
            req, handler))):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(n):
                await call()
            times.append((time.perf_counter() - t0) / n)
        best[label] = min(times) * 1e6
    print(f"middleware: {best['through middleware']:.1f} µs/request vs direct (peer) {best['direct (peer)']:.1f} "
          f"µs/request → metrics add {best['through middleware'] - best['direct (peer)']:.1f} µs")


async def main(n: int, rounds: int) -> None:
    await _micro(20000)
    res: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _ in range(rounds):
        for flag in (False, True):
            res[flag].append(await _run(flag, n))
    for name, idx in (("POST", 0), ("GET", 1)):
        off = statistics.median(r[idx] for r in res[False]) * 1e6
        on = statistics.median(r[idx] for r in res[True]) * 1e6
        print(f"{name:4}  with metrics {on:7.1f} µs/request   without (peer) {off:7.1f} µs/request   "
              f"overhead {on - off:+.1f} µs ({(on / off - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.requests, a.rounds))

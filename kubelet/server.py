"""The kubelet's HTTP API (aiohttp): logs, exec, stats, pods, health and metrics.

Routes (what the apiserver proxies ``pods/log``, ``pods/exec`` and ``nodes/<n>/proxy/<path>`` to):
``GET /containerLogs/{ns}/{pod}/{container}`` (follow, tailLines, sinceSeconds, timestamps, previous,
limitBytes), ``GET|POST /exec/{ns}/{pod}/{container}`` (WebSocket, see :mod:`kubelet.streaming`),
``GET|POST /portForward/{ns}/{pod}`` (SPDY in a WebSocket, see :mod:`kubelet.portforward`),
``GET /stats/summary``, ``/pods``, ``/healthz``, ``/metrics``, ``/metrics/cadvisor``, ``/metrics/probes``.
Listens on loopback by default; elsewhere a bearer token is required.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily

from kubelet import inspect as inspection
from kubelet import logs as logfiles
from kubelet.cri import ContainerState, ContainerStatus, CriError, PodSandboxState
from kubelet.kubelet import Kubelet
from kubelet.portforward import serve_portforward

from kubelet.stats import cadvisor_families, summary
from kubelet.streaming import serve_exec, status_failure

logger = logging.getLogger(__name__)
KUBELET = web.AppKey("kubelet", Kubelet)
TOKEN = web.AppKey("token", str)


def _error(message: str, code: int, reason: str) -> web.Response:
    return web.json_response(status_failure(message, code, reason), status=code)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


@web.middleware
async def _auth(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                ) -> web.StreamResponse:
    token = request.app[TOKEN]
    if token and request.path != "/healthz":
        got = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(got.encode(), token.encode()):
            return _error("Unauthorized", 401, "Unauthorized")
    return await handler(request)


async def _find(kubelet: Kubelet, ns: str, pod_name: str, container: str, previous: bool = False
                ) -> tuple[dict[str, Any], ContainerStatus]:
    pod = next((p for p in kubelet.pods.values() if (p.get("metadata") or {}).get("namespace") == ns and
                (p.get("metadata") or {}).get("name") == pod_name), None)
    if pod is None:
        raise web.HTTPNotFound(text=f'pod "{pod_name}" not found on this node')
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []] + \
        [c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []]
    if not container:
        container = names[0] if len(names) == 1 else ""
    if container not in names:
        raise web.HTTPBadRequest(text=f"container {container!r} is not valid for pod {pod_name}")
    rp = await kubelet.rm.runtime_pod(pod["metadata"]["uid"])
    instances = rp.instances(container)
    idx = 1 if previous else 0
    if len(instances) <= idx:
        what = "previous terminated container" if previous else "container"
        raise web.HTTPBadRequest(text=f'{what} "{container}" in pod "{pod_name}" not found'
                                 if previous else f'container "{container}" in pod "{pod_name}" is waiting to start')
    return pod, instances[idx]


def _log_path(kubelet: Kubelet, pod: dict[str, Any], c: ContainerStatus) -> Path:
    if c.log_path:
        return Path(c.log_path)
    meta = pod["metadata"]
    return kubelet.config.log_dir / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / c.metadata.name / \
        f"{c.metadata.attempt}.log"


async def container_logs(request: web.Request) -> web.StreamResponse:
    kubelet = request.app[KUBELET]
    m = request.match_info
    try:
        pod, c = await _find(kubelet, m["ns"], m["pod"], m.get("container", ""), _flag(request, "previous"))
    except web.HTTPException as exc:
        return _error(exc.text or exc.reason, exc.status, "NotFound" if exc.status == 404 else "BadRequest")
    path = _log_path(kubelet, pod, c)
    q = request.query
    tail = int(q["tailLines"]) if q.get("tailLines", "").lstrip("-").isdigit() else None
    since = time.time() - int(q["sinceSeconds"]) if q.get("sinceSeconds", "").isdigit() else None
    if q.get("sinceTime"):
        since = logfiles.parse_time(q["sinceTime"])
    limit = int(q["limitBytes"]) if q.get("limitBytes", "").isdigit() else None
    timestamps = _flag(request, "timestamps")
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await resp.prepare(request)
    lines = await asyncio.to_thread(logfiles.select, path, tail=tail, since=since)
    sent = 0
    for line in lines:
        data = logfiles.render(line, timestamps)
        if limit is not None and sent + len(data) > limit:
            await resp.write(data[:limit - sent])
            return resp
        sent += len(data)
        await resp.write(data)
    if _flag(request, "follow") and not _flag(request, "previous"):
        await _follow(kubelet, resp, path, c, timestamps)
    await resp.write_eof()
    return resp


async def _follow(kubelet: Kubelet, resp: web.StreamResponse, path: Path, c: ContainerStatus, timestamps: bool
                  ) -> None:
    """Stream new lines until the container has exited and its log is drained."""
    offset = await asyncio.to_thread(lambda: path.stat().st_size if path.exists() else 0)
    pending = b""
    while True:
        size, chunk = await asyncio.to_thread(_read_from, path, offset)
        if size < offset:                      # rotated (copy-truncate): start over on the new file
            offset, pending = 0, b""
            continue
        offset += len(chunk)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            line = logfiles.parse_line(raw)
            if line is not None:
                await resp.write(logfiles.render(line, timestamps))
        if not chunk:
            try:
                st = await kubelet.runtime.container_status(c.id)
            except CriError:
                return
            if st.state != ContainerState.RUNNING:
                size, chunk = await asyncio.to_thread(_read_from, path, offset)
                if not chunk:
                    return
                continue
            await asyncio.sleep(0.1)


def _read_from(path: Path, offset: int) -> tuple[int, bytes]:
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            if size < offset:
                return size, b""
            fh.seek(offset)
            return size, fh.read(1 << 20)
    except FileNotFoundError:
        return 0, b""


async def exec_handler(request: web.Request) -> web.StreamResponse:
    kubelet = request.app[KUBELET]
    m = request.match_info
    try:
        _, c = await _find(kubelet, m["ns"], m["pod"], m.get("container", ""))
    except web.HTTPException as exc:
        return _error(exc.text or exc.reason, exc.status, "NotFound" if exc.status == 404 else "BadRequest")
    if c.state != ContainerState.RUNNING:
        return _error(f"container {c.metadata.name} is not running", 400, "BadRequest")
    cmd = request.query.getall("command", [])
    if not cmd:
        return _error("you must specify at least 1 command", 400, "BadRequest")
    return await serve_exec(request, kubelet.runtime, c.id, cmd, tty=_flag(request, "tty"),
                            stdin=_flag(request, "stdin"), stdout=_flag(request, "stdout") or
                            "stdout" not in request.query, stderr=_flag(request, "stderr"))


async def port_forward(request: web.Request) -> web.StreamResponse:
    kubelet = request.app[KUBELET]
    m = request.match_info
    pod = next((p for p in kubelet.pods.values() if (p.get("metadata") or {}).get("namespace") == m["ns"] and
                (p.get("metadata") or {}).get("name") == m["pod"]), None)
    if pod is None:
        return _error(f'pod "{m["pod"]}" not found on this node', 404, "NotFound")
    uid = pod["metadata"]["uid"]
    rp = await kubelet.rm.runtime_pod(uid)
    sandbox = next((s for s in rp.sandboxes if s.state == PodSandboxState.READY), None)
    if sandbox is None:
        return _error(f'pod "{m["pod"]}" has no running sandbox', 400, "BadRequest")
    host_network = bool((pod.get("spec") or {}).get("hostNetwork"))
    netns = None if host_network else sandbox.netns_path or (f"/proc/{sandbox.pid}/ns/net" if sandbox.pid else None)
    if netns is None and not host_network:
        return _error(f'pod "{m["pod"]}" has no network namespace', 400, "BadRequest")
    return await serve_portforward(request, netns, f"{m['ns']}/{m['pod']}, uid {uid}")


async def healthz(request: web.Request) -> web.Response:
    kubelet = request.app[KUBELET]
    if not kubelet.pleg.healthy():
        return web.Response(status=500, text="pleg was last seen active too long ago")
    return web.Response(text="ok")


async def pods(request: web.Request) -> web.Response:
    kubelet = request.app[KUBELET]
    items = []
    for uid, pod in kubelet.pods.items():
        p = dict(pod)
        p["status"] = kubelet.status.get(uid) or pod.get("status") or {}
        items.append(p)
    return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})


async def debug_pods(request: web.Request) -> web.Response:
    """kubelite's own: per pod the wall-clock times seen/sandbox/started/running-written, and its containers
    (id, pid, state), for benchmarks and debugging; ``runtimeOnly``: uids the runtime still holds sandboxes or
    containers of while no API pod has them (being torn down)."""
    kubelet = request.app[KUBELET]
    rps = await kubelet.rm.runtime_pods()
    out = []
    for uid, pod in kubelet.pods.items():
        meta = pod.get("metadata") or {}
        times = dict(kubelet.timing.get(uid, {}))
        if uid in kubelet.status.running_written:
            times["runningWritten"] = kubelet.status.running_written[uid]
        rp = rps.get(uid)
        containers = [{"name": c.metadata.name, "id": c.id, "pid": c.pid, "state": c.state.value,
                       "attempt": c.metadata.attempt} for c in (rp.containers if rp else ())]
        out.append({"namespace": meta.get("namespace"), "name": meta.get("name"), "uid": uid, "times": times,
                    "containers": containers})
    return web.json_response({"pods": out, "runtimeOnly": sorted(set(rps) - set(kubelet.pods))})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(request.app[KUBELET].metrics.registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


async def metrics_cadvisor(request: web.Request) -> web.Response:
    kubelet = request.app[KUBELET]
    families = await cadvisor_families(kubelet)
    registry = CollectorRegistry()
    registry.register(_Snapshot(families))
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


class _Snapshot:
    def __init__(self, families: list[GaugeMetricFamily | CounterMetricFamily]) -> None:
        self.families = families

    def collect(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        return self.families


async def stats_summary(request: web.Request) -> web.Response:
    return web.json_response(await summary(request.app[KUBELET]))


def make_app(kubelet: Kubelet, token: str = "") -> web.Application:
    app = web.Application(middlewares=[_auth])
    app[KUBELET] = kubelet
    app[TOKEN] = token
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/pods", pods)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/metrics/cadvisor", metrics_cadvisor)
    app.router.add_get("/metrics/probes", metrics)          # prober_probe_total lives in the main registry
    app.router.add_get("/stats/summary", stats_summary)
    app.router.add_get("/debug/pods", debug_pods)
    app.router.add_get("/containerLogs/{ns}/{pod}/{container}", container_logs)
    for path in ("/exec/{ns}/{pod}/{container}", "/exec/{ns}/{pod}/{uid}/{container}"):
        app.router.add_get(path, exec_handler)
        app.router.add_post(path, exec_handler)
    for path in ("/portForward/{ns}/{pod}", "/portForward/{ns}/{pod}/{uid}"):
        app.router.add_get(path, port_forward)
        app.router.add_post(path, port_forward)
    inspection.add_routes(app, KUBELET)
    return app


async def serve(kubelet: Kubelet, host: str, port: int, token: str = "") -> web.AppRunner:
    """Start listening; returns the runner (``await runner.cleanup()`` to stop). ``port`` 0 picks one."""
    runner = web.AppRunner(make_app(kubelet, token), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    for addr in runner.addresses:
        return int(addr[1])
    return 0

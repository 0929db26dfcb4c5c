"""``metrics.k8s.io/v1beta1`` (PodMetrics, NodeMetrics) from the kubelets' ``/stats/summary``, for ``top``.

What metrics-server does, without a separate process: on a request the apiserver reads the summary of
each node involved (through the kubelet address of :mod:`apiserver.proxy`) and reports CPU as the rate
between two samples (``usageCoreNanoSeconds`` over the window) and memory as the working set. A
node's previous sample is reused when it is 0.5–60 s old; otherwise two samples are taken 1 s apart.
The group is added to discovery (legacy and aggregated) so kubectl finds it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from apiserver import discovery
from apiserver.handlers.common import json_response, state
from apiserver.proxy import CLIENT, kubelet_address
from kubelite.api import codec, errors
from kubelite.api.resources import NODES, PODS
from kubelite.api.selectors import FieldSelector, SelectorError, parse_field_selector, parse_label_selector

logger = logging.getLogger(__name__)

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
GV = f"{GROUP}/{VERSION}"
_PREFIX = f"/apis/{GROUP}/{VERSION}"
MIN_WINDOW, MAX_AGE, FRESH_WAIT = 0.5, 60.0, 1.0


@dataclass(frozen=True, slots=True)
class Sample:
    at: float                       # monotonic seconds when read
    wall: str                       # RFC 3339 time of the read
    summary: dict[str, Any]


class Sampler:
    """The last two summaries per node."""

    def __init__(self) -> None:
        self.pairs: dict[str, tuple[Sample, Sample]] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    async def _read(self, session: aiohttp.ClientSession, node: dict[str, Any]) -> Sample:
        host, port = kubelet_address(node)
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        async with session.get(f"{url}/stats/summary", timeout=aiohttp.ClientTimeout(total=10)) as r:
            if r.status != 200:
                raise errors.ServiceUnavailable(f"kubelet of node {node['metadata']['name']} answered {r.status}")
            body = codec.loads(await r.read())
        return Sample(time.monotonic(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), body)

    async def window(self, session: aiohttp.ClientSession, node: dict[str, Any]) -> tuple[Sample, Sample]:
        name = node["metadata"]["name"]
        async with self.locks.setdefault(name, asyncio.Lock()):
            pair = self.pairs.get(name)
            now = time.monotonic()
            if pair is not None and now - pair[1].at < MIN_WINDOW:
                return pair
            cur = await self._read(session, node)
            if pair is not None and MIN_WINDOW <= cur.at - pair[1].at <= MAX_AGE:
                pair = (pair[1], cur)
            else:
                await asyncio.sleep(FRESH_WAIT)
                pair = (cur, await self._read(session, node))
            self.pairs[name] = pair
            return pair


SAMPLER = web.AppKey("kubelite_metrics_sampler", Sampler)


def _cpu(prev: dict[str, Any] | None, cur: dict[str, Any] | None, seconds: float) -> int:
    """nanocores from two cumulative ``cpu`` blocks."""
    if not cur or seconds <= 0:
        return 0
    a = int((prev or {}).get("usageCoreNanoSeconds") or 0)
    b = int(cur.get("usageCoreNanoSeconds") or 0)
    if prev is None or b < a:
        return int(cur.get("usageNanoCores") or 0)
    return int((b - a) / seconds)


def cpu_quantity(nanocores: int) -> str:
    return f"{max(0, nanocores)}n"


def memory_quantity(b: int) -> str:
    return f"{max(0, b) // 1024}Ki"


def node_metrics(node: dict[str, Any], pair: tuple[Sample, Sample]) -> dict[str, Any]:
    a, b = pair
    secs = b.at - a.at
    na, nb = a.summary.get("node") or {}, b.summary.get("node") or {}
    meta = node["metadata"]
    return {"metadata": {"name": meta["name"], "creationTimestamp": meta.get("creationTimestamp"),
                         "labels": meta.get("labels") or {}},
            "timestamp": b.wall, "window": f"{max(1, round(secs))}s",
            "usage": {"cpu": cpu_quantity(_cpu(na.get("cpu"), nb.get("cpu"), secs)),
                      "memory": memory_quantity(int((nb.get("memory") or {}).get("workingSetBytes") or 0))}}


def _pods_of(summary: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {((p.get("podRef") or {}).get("namespace"), (p.get("podRef") or {}).get("name")): p
            for p in summary.get("pods") or []}


def pod_metrics(pod: dict[str, Any], pair: tuple[Sample, Sample]) -> dict[str, Any] | None:
    a, b = pair
    meta = pod["metadata"]
    key = (meta.get("namespace"), meta["name"])
    cur = _pods_of(b.summary).get(key)
    if cur is None or not cur.get("containers"):
        return None
    prev = {c["name"]: c for c in (_pods_of(a.summary).get(key) or {}).get("containers") or []}
    secs = b.at - a.at
    containers = [{"name": c["name"],
                   "usage": {"cpu": cpu_quantity(_cpu((prev.get(c["name"]) or {}).get("cpu"), c.get("cpu"), secs)),
                             "memory": memory_quantity(int((c.get("memory") or {}).get("workingSetBytes") or 0))}}
                  for c in cur["containers"]]
    return {"metadata": {"name": meta["name"], "namespace": meta.get("namespace"),
                         "creationTimestamp": meta.get("creationTimestamp"), "labels": meta.get("labels") or {}},
            "timestamp": b.wall, "window": f"{max(1, round(secs))}s", "containers": containers}


def _selectors(request: web.Request) -> tuple[Any, FieldSelector]:
    try:
        return (parse_label_selector(request.query.get("labelSelector")),
                parse_field_selector(request.query.get("fieldSelector"), ("metadata.name", "metadata.namespace")))
    except SelectorError as e:
        raise errors.BadRequest(str(e)) from e


async def _windows(request: web.Request, nodes: list[dict[str, Any]]) -> dict[str, tuple[Sample, Sample]]:
    session, sampler = request.app[CLIENT], request.app[SAMPLER]

    async def one(n: dict[str, Any]) -> tuple[str, tuple[Sample, Sample] | None]:
        try:
            return n["metadata"]["name"], await sampler.window(session, n)
        except (errors.ApiError, aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
            logger.info("no stats from node %s: %s", n["metadata"]["name"], e)
            return n["metadata"]["name"], None
    return {k: v for k, v in await asyncio.gather(*(one(n) for n in nodes)) if v is not None}


def _list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": f"{kind}List", "apiVersion": GV, "metadata": {}, "items": items}


async def handle_nodes(request: web.Request) -> web.Response:
    objects = state(request).objects
    name = request.match_info.get("name")
    if name:
        nodes = [await objects.get(NODES, None, name)]
    else:
        labels, fields = _selectors(request)
        nodes = (await objects.list(NODES, None, labels=labels, fields=fields))["items"]
    windows = await _windows(request, nodes)
    items = [node_metrics(n, windows[n["metadata"]["name"]]) for n in nodes if n["metadata"]["name"] in windows]
    if name:
        if not items:
            raise errors.NotFound(f'nodemetrics.metrics.k8s.io "{name}" not found', details={})
        return json_response({"kind": "NodeMetrics", "apiVersion": GV, **items[0]})
    return json_response(_list("NodeMetrics", items))


async def handle_pods(request: web.Request) -> web.Response:
    st = state(request)
    ns, name = request.match_info.get("ns"), request.match_info.get("name")
    if name:
        pods = [await st.objects.get(PODS, ns, name)]
    else:
        labels, fields = _selectors(request)
        pods = (await st.objects.list(PODS, ns, labels=labels, fields=fields))["items"]
    pods = [p for p in pods if (p.get("spec") or {}).get("nodeName")]
    node_names = sorted({p["spec"]["nodeName"] for p in pods})
    nodes = []
    for n in node_names:
        try:
            nodes.append(await st.objects.get(NODES, None, n))
        except errors.NotFound:
            pass
    windows = await _windows(request, nodes)
    items = [m for p in pods if p["spec"]["nodeName"] in windows
             and (m := pod_metrics(p, windows[p["spec"]["nodeName"]])) is not None]
    if name:
        if not items:
            raise errors.NotFound(f'podmetrics.metrics.k8s.io "{ns}/{name}" not found', details={})
        return json_response({"kind": "PodMetrics", "apiVersion": GV, **items[0]})
    return json_response(_list("PodMetrics", items))


# ------------------------------------------------------------------------------------------- discovery
_RESOURCES = [("nodes", "NodeMetrics", False), ("pods", "PodMetrics", True)]


def _legacy_resources() -> dict[str, Any]:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GV,
            "resources": [{"name": r, "singularName": "", "namespaced": nsd, "kind": k, "verbs": ["get", "list"]}
                          for r, k, nsd in _RESOURCES]}


def _aggregated_group() -> dict[str, Any]:
    return {"metadata": {"name": GROUP}, "versions": [{"version": VERSION, "freshness": "Current", "resources": [
        {"resource": r, "singularResource": "", "scope": "Namespaced" if nsd else "Cluster",
         "responseKind": {"group": GROUP, "version": VERSION, "kind": k}, "verbs": ["get", "list"]}
        for r, k, nsd in _RESOURCES]}]}


async def handle_apis(request: web.Request) -> web.Response:
    """``/apis`` as :mod:`apiserver.discovery` answers it, plus metrics.k8s.io."""
    resp = await discovery.handle_apis(request)
    assert isinstance(resp.body, bytes)
    doc = codec.loads(resp.body)
    gv = {"groupVersion": GV, "version": VERSION}
    if doc.get("kind") == "APIGroupDiscoveryList":
        doc["items"].append(_aggregated_group())
    else:
        doc["groups"].append({"name": GROUP, "versions": [gv], "preferredVersion": gv})
    resp.body = codec.dumps(doc)
    return resp


async def handle_group(request: web.Request) -> web.Response:
    gv = {"groupVersion": GV, "version": VERSION}
    return json_response({"kind": "APIGroup", "apiVersion": "v1", "name": GROUP, "versions": [gv],
                          "preferredVersion": gv})


async def handle_group_version(request: web.Request) -> web.Response:
    return json_response(_legacy_resources())


def add_routes(app: web.Application) -> None:
    """Register metrics.k8s.io; call before the discovery and generic ``/apis/...`` routes (first match wins)."""
    app[SAMPLER] = Sampler()
    r = app.router
    r.add_get("/apis", handle_apis)
    r.add_get("/apis/", handle_apis)
    r.add_get(f"/apis/{GROUP}", handle_group)
    r.add_get(_PREFIX, handle_group_version)
    r.add_get(f"{_PREFIX}/nodes", handle_nodes)
    r.add_get(f"{_PREFIX}/nodes/{{name}}", handle_nodes)
    r.add_get(f"{_PREFIX}/pods", handle_pods)
    r.add_get(f"{_PREFIX}/namespaces/{{ns}}/pods", handle_pods)
    r.add_get(f"{_PREFIX}/namespaces/{{ns}}/pods/{{name}}", handle_pods)

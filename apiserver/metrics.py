"""The apiserver's Prometheus metrics, with kube-apiserver's names, and the hooks that feed them.

* :func:`middleware` — per request: ``apiserver_request_total{verb,dry_run,group,version,resource,
  subresource,scope,component,code}``, ``apiserver_request_duration_seconds`` (long-running WATCH and
  CONNECT requests excluded, as upstream), ``apiserver_current_inflight_requests{request_kind}`` and
  ``apiserver_longrunning_requests``.
* :class:`InstrumentedStore` — wraps the :class:`~apiserver.storage.Store` in one place:
  ``etcd_request_duration_seconds{operation,type}`` and ``etcd_requests_total``.
* A collector read at scrape time: ``apiserver_registered_watchers{group,version,kind}`` (client watches
  open on the watch cache) and ``apiserver_storage_objects{resource}``.

``GET /metrics`` serves this app's registry plus the process-wide one; ``GET /metrics/objects`` the
kube-state-metrics-style object metrics of :mod:`apiserver.object_metrics`.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from apiserver import object_metrics, prometheus_sd
from apiserver.handlers.common import STATE
from apiserver.handlers.dispatch import parse
from apiserver.storage import KeyValue, ListResult, Store, WatchEvent
from kubelite.api import errors
from kubelite.metrics import metrics_handler

# kube-apiserver's buckets for apiserver_request_duration_seconds
REQUEST_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30,
                   45, 60)
ETCD_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45,
                60)
_LABELS = ["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component"]


class ApiserverMetrics:
    """The metric objects of one apiserver app, on a registry of their own (tests run several apps)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("apiserver_request", "Counter of apiserver requests broken out for each verb, "
                                "dry run value, group, version, resource, scope, component, and HTTP response code.",
                                [*_LABELS, "code"], registry=r)
        self.duration = Histogram("apiserver_request_duration_seconds", "Response latency distribution in seconds "
                                  "for each verb, dry run value, group, version, resource, subresource, scope and "
                                  "component.", _LABELS, buckets=REQUEST_BUCKETS, registry=r)
        self.inflight = Gauge("apiserver_current_inflight_requests", "Maximal number of currently used inflight "
                              "request limit of this apiserver per request kind in last second.", ["request_kind"],
                              registry=r)
        self.longrunning = Gauge("apiserver_longrunning_requests", "Gauge of all active long-running apiserver "
                                 "requests broken out by verb, group, version, resource, scope and component.",
                                 ["verb", "group", "version", "resource", "subresource", "scope", "component"],
                                 registry=r)
        self.etcd_duration = Histogram("etcd_request_duration_seconds", "Etcd request latency in seconds for each "
                                       "operation and object type.", ["operation", "type"], buckets=ETCD_BUCKETS,
                                       registry=r)
        self.etcd_requests = Counter("etcd_requests", "Etcd request counts for each operation and object type.",
                                     ["operation", "type"], registry=r)
        for kind in ("readOnly", "mutating"):
            self.inflight.labels(kind).set(0)
        self.app: web.Application | None = None     # whose ApiState the scrape-time collector reads
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r.register(_StateCollector(self))  # type: ignore[arg-type]


    def child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        """``metric.labels(*labels)``, cached (prometheus-client's lookup is the costly part per request)."""
        key = (id(metric), labels)
        got = self._children.get(key)
        if got is None:
            got = self._children[key] = metric.labels(*labels)
        return got


METRICS = web.AppKey("kubelite_api_metrics", ApiserverMetrics)


class _StateCollector:
    def __init__(self, m: ApiserverMetrics) -> None:
        self.m = m

    def collect(self) -> Iterator[Metric]:
        watchers = GaugeMetricFamily("apiserver_registered_watchers", "Number of currently registered watchers for "
                                     "a given resources", labels=["group", "version", "kind"])
        objects = GaugeMetricFamily("apiserver_storage_objects", "Number of stored objects at the time of last "
                                    "check split by kind.", labels=["resource"])
        st = self.m.app.get(STATE) if self.m.app is not None else None
        if st is not None:
            for rc in st.cache.caches.values():
                info = rc.info
                watchers.add_metric([info.group, info.version, info.kind], len(rc.watchers))
                objects.add_metric([info.qualified], len(rc.objects))
        yield watchers
        yield objects


_VERBS = {"POST": "POST", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE"}


_API_PATH = re.compile(r"^/(?:api/(?P<cv>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/(?P<tail>.+)$")


def classify(request: web.Request) -> tuple[str, list[str]] | None:
    """(verb, label values) of an API request, or None for a non-resource path (/healthz, /openapi...)."""
    q = request.query
    return _classify(request.method, request.path, q.get("watch") in ("1", "true"), bool(q.get("dryRun")))


@functools.lru_cache(maxsize=4096)
def _classify(method: str, path: str, watch_query: bool, dry_run: bool) -> tuple[str, list[str]] | None:
    m = _API_PATH.match(path)
    if m is None:
        return None
    group, version, tail = m.group("group") or "", m.group("version") or "v1", m.group("tail")
    if "/proxy/" in tail:                                   # nodes/<n>/proxy/<anything>
        tail = tail[:tail.index("/proxy/") + len("/proxy")]
    try:
        t = parse(group, version, tail)
    except errors.ApiError:
        return None
    watch = t.watch_path or watch_query
    if method == "GET":
        verb = "WATCH" if watch else ("GET" if t.name else "LIST")
    elif method == "DELETE" and t.name is None:
        verb = "DELETECOLLECTION"
    else:
        verb = _VERBS.get(method, method)
    if t.subresource in ("exec", "proxy", "attach", "portforward"):
        verb = "CONNECT"
    if t.name is None and (t.namespace is None or not t.info.namespaced):
        scope = "cluster"
    else:
        scope = "namespace" if t.name is None else "resource"
    return verb, [verb, "All" if dry_run else "", t.info.group, t.info.version, t.info.resource,
                  t.subresource or "", scope, "apiserver"]


@web.middleware
async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
    m = request.app.get(METRICS)
    what = classify(request) if m is not None else None
    if m is None or what is None:
        return await handler(request)
    verb, labels = what
    long_running = verb in ("WATCH", "CONNECT")
    kind = "readOnly" if request.method == "GET" else "mutating"
    gauge = m.child(m.longrunning, tuple(labels[:1] + labels[2:])) if long_running else m.child(m.inflight, (kind,))
    gauge.inc()
    start = time.perf_counter()
    code = 500
    try:
        resp = await handler(request)
        code = resp.status
        return resp
    except web.HTTPException as e:
        code = e.status
        raise
    except errors.ApiError as e:
        code = e.status_code
        raise
    finally:
        gauge.dec()
        key = tuple(labels)
        m.child(m.requests, (*key, str(code))).inc()
        if not long_running:
            m.child(m.duration, key).observe(time.perf_counter() - start)


class InstrumentedStore:
    """A :class:`Store` that times every call into the real one (``etcd_request_duration_seconds``)."""

    def __init__(self, inner: Store, metrics: ApiserverMetrics, prefix: str) -> None:
        self.inner = inner
        self.metrics = metrics
        self.prefix = prefix.rstrip("/") + "/"

    def _type(self, key: str) -> str:
        rest = key[len(self.prefix):] if key.startswith(self.prefix) else key.lstrip("/")
        return rest.split("/", 1)[0] or "unknown"

    def _observe(self, op: str, key: str, start: float) -> None:
        m = self.metrics
        labels = (op, self._type(key))
        m.child(m.etcd_duration, labels).observe(time.perf_counter() - start)
        m.child(m.etcd_requests, labels).inc()

    async def get(self, key: str) -> KeyValue | None:
        start = time.perf_counter()
        try:
            return await self.inner.get(key)
        finally:
            self._observe("get", key, start)

    async def list(self, prefix: str, *, start: str | None = None, limit: int = 0, revision: int = 0) -> ListResult:
        t0 = time.perf_counter()
        try:
            return await self.inner.list(prefix, start=start, limit=limit, revision=revision)
        finally:
            self._observe("list", prefix, t0)

    async def create(self, key: str, value: bytes) -> int:
        start = time.perf_counter()
        try:
            return await self.inner.create(key, value)
        finally:
            self._observe("create", key, start)

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        start = time.perf_counter()
        try:
            return await self.inner.update(key, value, expected_revision)
        finally:
            self._observe("update", key, start)

    async def delete(self, key: str, expected_revision: int) -> int:
        start = time.perf_counter()
        try:
            return await self.inner.delete(key, expected_revision)
        finally:
            self._observe("delete", key, start)

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        self.metrics.etcd_requests.labels("watch", self._type(prefix)).inc()
        return self.inner.watch(prefix, start_revision)

    async def current_revision(self) -> int:
        start = time.perf_counter()
        try:
            return await self.inner.current_revision()
        finally:
            self._observe("getRevision", "", start)

    async def compact(self, revision: int) -> None:
        start = time.perf_counter()
        try:
            await self.inner.compact(revision)
        finally:
            self._observe("compact", "", start)

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> Any:      # anything else a concrete store offers
        return getattr(self.inner, name)


def instrument(app: web.Application, store: Store, prefix: str) -> Store:
    """Wrap ``store`` for ``app``'s metrics (no-op when the app has none)."""
    m = app.get(METRICS)
    return InstrumentedStore(store, m, prefix) if m is not None else store  # type: ignore[return-value]


def install(app: web.Application) -> ApiserverMetrics:
    """Give ``app`` metrics: the middleware (first, so it sees the final status), and ``GET /metrics``."""
    m = ApiserverMetrics()
    m.app = app
    app[METRICS] = m
    app.middlewares.insert(0, middleware)
    app.router.add_get("/metrics", metrics_handler(m.registry))
    object_metrics.add_route(app)
    prometheus_sd.add_route(app)
    return m

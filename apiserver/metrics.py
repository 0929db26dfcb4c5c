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
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from apiserver import object_metrics, prometheus_sd
from apiserver.metric_values import CounterFamily, HistogramFamily
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
        # per-request metrics are lock-free (apiserver.metric_values; the gauges of requests in flight:
        # plain counts read at scrape time by _StateCollector): updated from the event loop only
        self.requests = CounterFamily("apiserver_request", "Counter of apiserver requests broken out for each "
                                      "verb, dry run value, group, version, resource, scope, component, and HTTP "
                                      "response code.", [*_LABELS, "code"])
        self.duration = HistogramFamily("apiserver_request_duration_seconds", "Response latency distribution in "
                                        "seconds for each verb, dry run value, group, version, resource, "
                                        "subresource, scope and component.", _LABELS, REQUEST_BUCKETS)
        self.inflight: dict[tuple[str, ...], int] = {("readOnly",): 0, ("mutating",): 0}
        self.longrunning: dict[tuple[str, ...], int] = {}
        self.etcd_duration = HistogramFamily("etcd_request_duration_seconds", "Etcd request latency in seconds for "
                                             "each operation and object type.", ["operation", "type"], ETCD_BUCKETS)
        self.etcd_requests = CounterFamily("etcd_requests", "Etcd request counts for each operation and object type.",
                                           ["operation", "type"])
        for family in (self.requests, self.duration, self.etcd_duration, self.etcd_requests):
            r.register(family)  # type: ignore[arg-type]
        self.app: web.Application | None = None     # whose ApiState the scrape-time collector reads
        self.series: dict[tuple[str, ...], _Series] = {}    # see middleware()
        r.register(_StateCollector(self))  # type: ignore[arg-type]


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
        inflight = GaugeMetricFamily("apiserver_current_inflight_requests", "Maximal number of currently used "
                                     "inflight request limit of this apiserver per request kind in last second.",
                                     labels=["request_kind"])
        longrunning = GaugeMetricFamily("apiserver_longrunning_requests", "Gauge of all active long-running "
                                        "apiserver requests broken out by verb, group, version, resource, scope and "
                                        "component.", labels=["verb", "group", "version", "resource", "subresource",
                                                              "scope", "component"])
        for family, counts in ((inflight, self.m.inflight), (longrunning, self.m.longrunning)):
            for labels, count in list(counts.items()):
                family.add_metric(list(labels), count)
            yield family
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


class _Series:
    """The metric children one kind of request (one set of label values) touches, looked up once."""

    __slots__ = ("m", "key", "long_running", "gauge", "gauge_key", "duration", "by_code")

    def __init__(self, m: ApiserverMetrics, verb: str, labels: tuple[str, ...], method: str) -> None:
        self.m, self.key = m, labels
        self.long_running = verb in ("WATCH", "CONNECT")
        kind = "readOnly" if method == "GET" else "mutating"
        self.gauge = m.longrunning if self.long_running else m.inflight       # counts by label values
        self.gauge_key = (labels[0], *labels[2:]) if self.long_running else (kind,)
        self.gauge.setdefault(self.gauge_key, 0)
        self.duration = None if self.long_running else m.duration.labels(*labels)
        self.by_code: dict[int, Any] = {}

    def requests(self, code: int) -> Any:
        found = self.by_code.get(code)
        if found is None:
            found = self.by_code[code] = self.m.requests.labels(*self.key, str(code))
        return found


def _series(m: ApiserverMetrics, request: web.Request) -> _Series | None:
    what = classify(request)
    if what is None:
        return None
    verb, labels = what
    key = (request.method, *labels)
    found = m.series.get(key)
    if found is None:
        found = m.series[key] = _Series(m, verb, tuple(labels), request.method)
    return found


@web.middleware
async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
    m = request.app.get(METRICS)
    series = _series(m, request) if m is not None else None
    if series is None:
        return await handler(request)
    gauge, gauge_key = series.gauge, series.gauge_key
    gauge[gauge_key] += 1
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
        gauge[gauge_key] -= 1
        series.requests(code).inc()
        if series.duration is not None:
            series.duration.observe(time.perf_counter() - start)


class InstrumentedStore:
    """A :class:`Store` that times every call into the real one (``etcd_request_duration_seconds``)."""

    def __init__(self, inner: Store, metrics: ApiserverMetrics, prefix: str) -> None:
        self.inner = inner
        self.metrics = metrics
        self.prefix = prefix.rstrip("/") + "/"
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def _type(self, key: str) -> str:
        rest = key[len(self.prefix):] if key.startswith(self.prefix) else key.lstrip("/")
        return rest.split("/", 1)[0] or "unknown"

    def _observe(self, op: str, key: str, start: float) -> None:
        elapsed = time.perf_counter() - start
        labels = (op, self._type(key))
        children = self._children.get(labels)
        if children is None:
            m = self.metrics
            children = self._children[labels] = (m.etcd_duration.labels(*labels), m.etcd_requests.labels(*labels))
        children[0].observe(elapsed)
        children[1].inc()

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

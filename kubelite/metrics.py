"""Shared Prometheus helpers for every component: the ``/metrics`` handler and client-go's work-queue timings.

* :func:`metrics_handler` / :func:`exposition` — one aiohttp handler that renders several registries
  (a component's own plus the process-wide ``REGISTRY``) as one text exposition, each metric family
  once, so ``promtool check metrics`` passes.
* Work-queue timings with client-go's names (``workqueue_queue_duration_seconds``,
  ``workqueue_work_duration_seconds``, ``workqueue_unfinished_work_seconds``,
  ``workqueue_longest_running_processor_seconds``), fed by :class:`WorkqueueTimer` hooks that
  :mod:`kubelite.workqueue` calls on add/get/done; ``workqueue_depth``, ``workqueue_adds_total`` and
  ``workqueue_retries_total`` stay where they are (in :mod:`kubelite.workqueue`).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Hashable, Iterable, Iterator
from typing import Awaitable, Callable

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# client-go: prometheus.ExponentialBuckets(10e-9, 10, 10)
_WQ_BUCKETS = tuple(1e-8 * 10 ** i for i in range(10))

_QUEUE_DURATION = Histogram("workqueue_queue_duration_seconds",
                            "How long in seconds an item stays in workqueue before being requested.",
                            ["name"], buckets=_WQ_BUCKETS)
_WORK_DURATION = Histogram("workqueue_work_duration_seconds",
                           "How long in seconds processing an item from workqueue takes.",
                           ["name"], buckets=_WQ_BUCKETS)


class WorkqueueTimer:
    """Per-queue timestamps behind the work-queue histograms and gauges (client-go's ``queueMetrics``)."""

    _live: "weakref.WeakSet[WorkqueueTimer]" = weakref.WeakSet()

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.clock = clock
        self.added: dict[Hashable, float] = {}
        self.processing: dict[Hashable, float] = {}
        WorkqueueTimer._live.add(self)
        _QUEUE_DURATION.labels(name)
        _WORK_DURATION.labels(name)

    def on_add(self, item: Hashable) -> None:
        self.added.setdefault(item, self.clock())

    def on_get(self, item: Hashable) -> None:
        now = self.clock()
        start = self.added.pop(item, None)
        if start is not None:
            _QUEUE_DURATION.labels(self.name).observe(now - start)
        self.processing[item] = now

    def on_done(self, item: Hashable) -> None:
        start = self.processing.pop(item, None)
        if start is not None:
            _WORK_DURATION.labels(self.name).observe(self.clock() - start)

    def unfinished(self) -> tuple[float, float]:
        """(sum of, longest) seconds that items in processing have been running."""
        now = self.clock()
        ages = [now - t for t in self.processing.values()]
        return sum(ages), max(ages, default=0.0)


class _WorkqueueCollector:
    """Reads the live timers at scrape time (the gauges client-go updates from a ticker)."""

    def collect(self) -> Iterator[Metric]:
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has done that is in progress and hasn't been observed by work_duration. "
            "Large values indicate stuck threads.", labels=["name"])
        longest = GaugeMetricFamily(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.", labels=["name"])
        per_name: dict[str, tuple[float, float]] = {}
        for timer in list(WorkqueueTimer._live):
            total, top = timer.unfinished()
            prev = per_name.get(timer.name, (0.0, 0.0))
            per_name[timer.name] = (prev[0] + total, max(prev[1], top))
        for name, (total, top) in sorted(per_name.items()):
            unfinished.add_metric([name], total)
            longest.add_metric([name], top)
        yield unfinished
        yield longest


REGISTRY.register(_WorkqueueCollector())  # type: ignore[arg-type]


def exposition(registries: Iterable[CollectorRegistry]) -> bytes:
    """The text exposition of ``registries`` (each rendered once, in order)."""
    seen: set[int] = set()
    parts = []
    for r in registries:
        if id(r) not in seen:
            seen.add(id(r))
            parts.append(generate_latest(r))
    return b"".join(parts)


def metrics_handler(*registries: CollectorRegistry, include_default: bool = True
                    ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler serving ``registries`` (and the process-wide ``REGISTRY`` unless told not to)."""
    regs = [*registries, *([REGISTRY] if include_default else [])]

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=exposition(regs), headers={"Content-Type": CONTENT_TYPE_LATEST})
    return handle

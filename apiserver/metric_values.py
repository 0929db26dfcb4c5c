"""Counters and histograms updated from the event loop only, without locks, rendered at scrape time.

prometheus-client's ``Counter`` and ``Histogram`` take a threading lock on every update (an
observation takes two) and check their state first; a pod create updates four of them (request
count and latency, etcd count and latency), which cost it about 10 us. The apiserver updates these
metrics from its one event-loop thread only, so plain numbers do: :class:`CounterFamily` and
:class:`HistogramFamily` keep a child per label values, and, registered in a ``CollectorRegistry``,
render as prometheus-client's own metric families (same names, ``_total``/``_bucket``/``_sum``/
``_count`` samples, ``le`` labels).
"""

from __future__ import annotations

import bisect
from typing import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString


class Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class Observations:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)     # the last one: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


class CounterFamily:
    """A counter by label values (``name`` without ``_total``), e.g. ``apiserver_request``."""

    def __init__(self, name: str, documentation: str, labelnames: list[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.children: dict[tuple[str, ...], Count] = {}

    def labels(self, *values: str) -> Count:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = Count()
        return child

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in list(self.children.items()):
            family.add_metric(list(values), child.value)
        yield family


class HistogramFamily:
    """A histogram by label values with fixed bucket bounds."""

    def __init__(self, name: str, documentation: str, labelnames: list[str], buckets: tuple[float, ...]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self.bounds = tuple(sorted(buckets))
        self.children: dict[tuple[str, ...], Observations] = {}

    def labels(self, *values: str) -> Observations:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = Observations(self.bounds)
        return child

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        for values, child in list(self.children.items()):
            running, buckets = 0, []
            for le, count in zip(les, child.counts):
                running += count
                buckets.append((le, running))
            family.add_metric(list(values), buckets, child.sum)
        yield family

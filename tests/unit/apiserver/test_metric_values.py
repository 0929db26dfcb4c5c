"""The lock-free metric families render exactly what prometheus-client's Counter and Histogram do."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from apiserver.metric_values import CounterFamily, HistogramFamily

BUCKETS = (0.005, 0.025, 0.05, 0.1, 1.0, 10)


def _render(*families: object) -> list[str]:
    r = CollectorRegistry()
    for f in families:
        r.register(f)  # type: ignore[arg-type]
    return [line for line in generate_latest(r).decode().splitlines() if "_created" not in line]


def test_same_exposition_as_prometheus_client() -> None:
    ref = CollectorRegistry()
    counter = Counter("things", "Things counted.", ["kind", "code"], registry=ref)
    hist = Histogram("thing_seconds", "Thing latency.", ["kind"], buckets=BUCKETS, registry=ref)
    ours_counter = CounterFamily("things", "Things counted.", ["kind", "code"])
    ours_hist = HistogramFamily("thing_seconds", "Thing latency.", ["kind"], BUCKETS)
    for kind, code, seconds in (("a", "200", 0.001), ("a", "200", 0.005), ("a", "404", 0.07), ("b", "200", 42.0),
                                ("b", "200", 0.025)):
        counter.labels(kind, code).inc()
        ours_counter.labels(kind, code).inc()
        hist.labels(kind).observe(seconds)
        ours_hist.labels(kind).observe(seconds)
    want = [line for line in generate_latest(ref).decode().splitlines() if "_created" not in line]
    assert _render(ours_counter, ours_hist) == want
    assert 'thing_seconds_bucket{kind="a",le="0.005"} 2.0' in want       # le is inclusive

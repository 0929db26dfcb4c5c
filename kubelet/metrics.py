"""The kubelet's Prometheus metrics, by Kubernetes' names, in a registry per kubelet (several may share
a process in tests). Served at ``/metrics`` by the kubelet server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class KubeletMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.running_pods = Gauge("kubelet_running_pods", "Number of pods that have a running pod sandbox",
                                  registry=r)
        self.running_containers = Gauge("kubelet_running_containers", "Number of containers currently running",
                                        ["container_state"], registry=r)
        self.pod_start_duration = Histogram("kubelet_pod_start_duration_seconds",
                                            "Duration in seconds from the pod's creation to it running",
                                            buckets=_BUCKETS, registry=r)
        self.pod_worker_duration = Histogram("kubelet_pod_worker_duration_seconds",
                                             "Duration in seconds to sync a single pod", buckets=_BUCKETS, registry=r)
        self.pleg_relist_duration = Histogram("kubelet_pleg_relist_duration_seconds",
                                              "Duration in seconds for relisting pods in PLEG", buckets=_BUCKETS,
                                              registry=r)
        self.prober_probe_total = Counter("prober_probe_total", "Cumulative number of liveness, readiness or "
                                          "startup probes", ["probe_type", "result"], registry=r)
        self.started_containers = Counter("kubelet_started_containers_total", "Cumulative number of containers "
                                          "started", ["container_type"], registry=r)
        self.node_name = Gauge("kubelet_node_name", "The node's name. The count is always 1.", ["node"], registry=r)

"""kube-state-metrics-style object metrics, served by the apiserver at ``/metrics/objects``.

Computed at scrape time from the watch cache (which already holds every object; each is decoded
from its JSON as the scrape reaches it), with
kube-state-metrics' names and labels: ``kube_pod_info``, ``kube_pod_status_phase``,
``kube_pod_status_ready``, ``kube_pod_container_status_restarts_total``, ``kube_pod_container_status_running``,
``kube_pod_container_resource_requests|limits``, ``kube_replicaset_spec_replicas``,
``kube_replicaset_status_replicas``, ``kube_replicaset_status_ready_replicas``, ``kube_replicaset_owner``,
``kube_deployment_spec_replicas``, ``kube_deployment_status_replicas[_available|_updated|_unavailable]``,
``kube_deployment_metadata_generation``, ``kube_deployment_status_observed_generation``,
``kube_node_info``, ``kube_node_status_condition``, ``kube_node_status_allocatable``,
``kube_node_spec_unschedulable``, ``kube_namespace_status_phase``.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from apiserver.handlers.common import STATE
from kubelite.api.quantity import parse_value
from kubelite.metrics import metrics_handler

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


def _g(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _objects(app: web.Application, qualified: str) -> Iterable[dict[str, Any]]:
    st = app.get(STATE)
    if st is None or qualified not in st.cache.caches:
        return []
    return (o for _, o in st.cache.caches[qualified].items())


def _m(o: dict[str, Any]) -> dict[str, Any]:
    return o.get("metadata") or {}


def _controller(o: dict[str, Any]) -> tuple[str, str]:
    for ref in _m(o).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("kind", ""), ref.get("name", "")
    return "<none>", "<none>"


def _resource(kind: str, q: Any) -> tuple[str, float]:
    """(unit, value) as kube-state-metrics reports requests and limits."""
    try:
        v = float(parse_value(q))
    except (ValueError, TypeError, ArithmeticError):
        return "", 0.0
    return ("core" if kind == "cpu" else "byte" if kind in ("memory", "ephemeral-storage") else "integer"), v


def pod_families(pods: Iterable[dict[str, Any]]) -> Iterator[Metric]:
    base = ["namespace", "pod", "uid"]
    info = _g("kube_pod_info", "Information about pod.", base + ["host_ip", "pod_ip", "node", "created_by_kind",
                                                                  "created_by_name"])
    phase = _g("kube_pod_status_phase", "The pods current phase.", base + ["phase"])
    ready = _g("kube_pod_status_ready", "Describes whether the pod is ready to serve requests.", base + ["condition"])
    restarts = CounterMetricFamily("kube_pod_container_status_restarts", "The number of container restarts per "
                                   "container.", labels=base + ["container"])
    running = _g("kube_pod_container_status_running", "Describes whether the container is currently in running "
                 "state.", base + ["container"])
    requests = _g("kube_pod_container_resource_requests", "The number of requested request resource by a "
                  "container.", base + ["container", "node", "resource", "unit"])
    limits = _g("kube_pod_container_resource_limits", "The number of requested limit resource by a container.",
                base + ["container", "node", "resource", "unit"])
    for p in pods:
        meta, spec, status = _m(p), p.get("spec") or {}, p.get("status") or {}
        lv = [meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", "")]
        node = spec.get("nodeName", "")
        info.add_metric(lv + [status.get("hostIP", ""), status.get("podIP", ""), node, *_controller(p)], 1)
        current = status.get("phase", "Pending")
        for ph in PHASES:
            phase.add_metric(lv + [ph], 1 if ph == current else 0)
        cond = next((c.get("status", "Unknown") for c in status.get("conditions") or [] if c.get("type") == "Ready"),
                    None)
        if cond is not None:
            for v in ("true", "false", "unknown"):
                ready.add_metric(lv + [v], 1 if cond.lower() == v else 0)
        for cs in status.get("containerStatuses") or []:
            restarts.add_metric(lv + [cs.get("name", "")], int(cs.get("restartCount") or 0))
            running.add_metric(lv + [cs.get("name", "")], 1 if "running" in (cs.get("state") or {}) else 0)
        for c in spec.get("containers") or []:
            res = c.get("resources") or {}
            for fam, key in ((requests, "requests"), (limits, "limits")):
                for kind, q in sorted((res.get(key) or {}).items()):
                    unit, v = _resource(kind, q)
                    if unit:
                        fam.add_metric(lv + [c.get("name", ""), node, kind.replace("-", "_"), unit], v)
    yield from (info, phase, ready, restarts, running, requests, limits)


def replicaset_families(items: Iterable[dict[str, Any]]) -> Iterator[Metric]:
    base = ["namespace", "replicaset"]
    spec = _g("kube_replicaset_spec_replicas", "Number of desired pods for a ReplicaSet.", base)
    cur = _g("kube_replicaset_status_replicas", "The number of replicas per ReplicaSet.", base)
    ready = _g("kube_replicaset_status_ready_replicas", "The number of ready replicas per ReplicaSet.", base)
    avail = _g("kube_replicaset_status_available_replicas", "The number of available replicas per ReplicaSet.",
               base)
    owner = _g("kube_replicaset_owner", "Information about the ReplicaSet's owner.",
               base + ["owner_kind", "owner_name", "owner_is_controller"])
    for o in items:
        lv = [_m(o).get("namespace", ""), _m(o).get("name", "")]
        s, st = o.get("spec") or {}, o.get("status") or {}
        spec.add_metric(lv, int(s.get("replicas", 1)))
        cur.add_metric(lv, int(st.get("replicas") or 0))
        ready.add_metric(lv, int(st.get("readyReplicas") or 0))
        avail.add_metric(lv, int(st.get("availableReplicas") or 0))
        kind, name = _controller(o)
        owner.add_metric(lv + [kind, name, "true" if kind != "<none>" else "false"], 1)
    yield from (spec, cur, ready, avail, owner)


def deployment_families(items: Iterable[dict[str, Any]]) -> Iterator[Metric]:
    base = ["namespace", "deployment"]
    fams = {k: _g(f"kube_deployment_{k}", doc, base) for k, doc in (
        ("spec_replicas", "Number of desired pods for a deployment."),
        ("status_replicas", "The number of replicas per deployment."),
        ("status_replicas_available", "The number of available replicas per deployment."),
        ("status_replicas_updated", "The number of updated replicas per deployment."),
        ("status_replicas_ready", "The number of ready replicas per deployment."),
        ("status_replicas_unavailable", "The number of unavailable replicas per deployment."),
        ("metadata_generation", "Sequence number representing a specific generation of the desired state."),
        ("status_observed_generation", "The generation observed by the deployment controller."),
        ("spec_paused", "Whether the deployment is paused and will not be processed by the deployment controller."))}
    for o in items:
        lv = [_m(o).get("namespace", ""), _m(o).get("name", "")]
        s, st = o.get("spec") or {}, o.get("status") or {}
        fams["spec_replicas"].add_metric(lv, int(s.get("replicas", 1)))
        fams["status_replicas"].add_metric(lv, int(st.get("replicas") or 0))
        fams["status_replicas_available"].add_metric(lv, int(st.get("availableReplicas") or 0))
        fams["status_replicas_updated"].add_metric(lv, int(st.get("updatedReplicas") or 0))
        fams["status_replicas_ready"].add_metric(lv, int(st.get("readyReplicas") or 0))
        fams["status_replicas_unavailable"].add_metric(lv, int(st.get("unavailableReplicas") or 0))
        fams["metadata_generation"].add_metric(lv, int(_m(o).get("generation") or 0))
        fams["status_observed_generation"].add_metric(lv, int(st.get("observedGeneration") or 0))
        fams["spec_paused"].add_metric(lv, 1 if s.get("paused") else 0)
    yield from fams.values()


def node_families(items: Iterable[dict[str, Any]]) -> Iterator[Metric]:
    info = _g("kube_node_info", "Information about a cluster node.",
              ["node", "kernel_version", "os_image", "container_runtime_version", "kubelet_version", "internal_ip",
               "pod_cidr"])
    cond = _g("kube_node_status_condition", "The condition of a cluster node.", ["node", "condition", "status"])
    alloc = _g("kube_node_status_allocatable", "The allocatable for different resources of a node that are "
               "available for scheduling.", ["node", "resource", "unit"])
    unsched = _g("kube_node_spec_unschedulable", "Whether a node can schedule new pods.", ["node"])
    for o in items:
        name = _m(o).get("name", "")
        st = o.get("status") or {}
        ni = st.get("nodeInfo") or {}
        ip = next((a.get("address", "") for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), "")
        info.add_metric([name, ni.get("kernelVersion", ""), ni.get("osImage", ""),
                         ni.get("containerRuntimeVersion", ""), ni.get("kubeletVersion", ""), ip,
                         (o.get("spec") or {}).get("podCIDR", "")], 1)
        for c in st.get("conditions") or []:
            for v in ("true", "false", "unknown"):
                cond.add_metric([name, c.get("type", ""), v], 1 if str(c.get("status", "")).lower() == v else 0)
        for kind, q in sorted((st.get("allocatable") or {}).items()):
            unit, v = _resource(kind, q)
            if unit:
                alloc.add_metric([name, kind.replace("-", "_").replace(".", "_").replace("/", "_"), unit], v)
        unsched.add_metric([name], 1 if (o.get("spec") or {}).get("unschedulable") else 0)
    yield from (info, cond, alloc, unsched)


def namespace_families(items: Iterable[dict[str, Any]]) -> Iterator[Metric]:
    phase = _g("kube_namespace_status_phase", "kubernetes namespace status phase.", ["namespace", "phase"])
    for o in items:
        current = (o.get("status") or {}).get("phase", "Active")
        for ph in ("Active", "Terminating"):
            phase.add_metric([_m(o).get("name", ""), ph], 1 if ph == current else 0)
    yield phase


class ObjectCollector:
    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        yield from pod_families(_objects(self.app, "pods"))
        yield from replicaset_families(_objects(self.app, "replicasets.apps"))
        yield from deployment_families(_objects(self.app, "deployments.apps"))
        yield from node_families(_objects(self.app, "nodes"))
        yield from namespace_families(_objects(self.app, "namespaces"))


def add_route(app: web.Application) -> None:
    """``GET /metrics/objects`` on ``app``."""
    registry = CollectorRegistry()
    registry.register(ObjectCollector(app))  # type: ignore[arg-type]
    app.router.add_get("/metrics/objects", metrics_handler(registry, include_default=False))

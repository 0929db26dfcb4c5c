"""Builders for node and pod dicts used by the scheduler unit tests."""

from __future__ import annotations

from typing import Any

from scheduler.framework import NodeInfo, PodInfo


def make_node(name: str, cpu: str = "4", memory: str = "8Gi", pods: str = "110", labels: dict | None = None,
              taints: list | None = None, unschedulable: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}},
    }


def make_pod(name: str, cpu: str | None = None, memory: str | None = None, ns: str = "default",
             labels: dict | None = None, node: str | None = None, **spec: Any) -> dict[str, Any]:
    requests = {}
    if cpu:
        requests["cpu"] = cpu
    if memory:
        requests["memory"] = memory
    pod_spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox",
                                                "resources": {"requests": requests} if requests else {}}]}
    if node:
        pod_spec["nodeName"] = node
    pod_spec.update(spec)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}, "uid": f"uid-{name}"},
            "spec": pod_spec, "status": {"phase": "Pending"}}


def node_info(node: dict[str, Any], *pods: dict[str, Any]) -> NodeInfo:
    ni = NodeInfo(node["metadata"]["name"])
    ni.set_node(node)
    for p in pods:
        ni.add_pod(PodInfo.of(p))
    return ni

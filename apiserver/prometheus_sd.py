"""``GET /metrics/sd/nodes``: Prometheus HTTP service discovery of the cluster's kubelets.

The same targets and ``__meta_kubernetes_node_*`` labels Prometheus' own Kubernetes discovery (role
``node``) produces — address ``<InternalIP>:<kubelet port>``, node name, labels, annotations and
addresses — for Prometheus builds without ``kubernetes_sd_configs`` (Debian's package drops it). The
relabelling that sends scrapes through ``nodes/<name>/proxy`` works unchanged on either.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from apiserver.handlers.common import STATE, json_response


def _label_name(key: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def node_target(node: dict[str, Any]) -> dict[str, Any] | None:
    """One HTTP SD target group for a Node, or None when it has no address yet."""
    meta, status = node.get("metadata") or {}, node.get("status") or {}
    addrs = status.get("addresses") or []
    ip = next((a.get("address") for a in addrs if a.get("type") == "InternalIP"), None) or \
        next((a.get("address") for a in addrs), None)
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not ip or not port:
        return None
    labels = {"__meta_kubernetes_node_name": meta.get("name", ""),
              "__meta_kubernetes_node_provider_id": (node.get("spec") or {}).get("providerID", "")}
    for k, v in (meta.get("labels") or {}).items():
        labels[f"__meta_kubernetes_node_label_{_label_name(k)}"] = v
        labels[f"__meta_kubernetes_node_labelpresent_{_label_name(k)}"] = "true"
    for k, v in (meta.get("annotations") or {}).items():
        labels[f"__meta_kubernetes_node_annotation_{_label_name(k)}"] = v
        labels[f"__meta_kubernetes_node_annotationpresent_{_label_name(k)}"] = "true"
    for a in addrs:
        labels.setdefault(f"__meta_kubernetes_node_address_{a.get('type', '')}", a.get("address", ""))
    host = f"[{ip}]" if ":" in ip else ip
    return {"targets": [f"{host}:{port}"], "labels": labels}


async def handle_nodes(request: web.Request) -> web.Response:
    st = request.app.get(STATE)
    nodes = [n for _, n in st.cache.caches["nodes"].items()] if st is not None else []
    groups = [g for n in sorted(nodes, key=lambda n: (n.get("metadata") or {}).get("name", ""))
              if (g := node_target(n)) is not None]
    return json_response(groups)


def add_route(app: web.Application) -> None:
    app.router.add_get("/metrics/sd/nodes", handle_nodes)

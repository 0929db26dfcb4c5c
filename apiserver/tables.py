"""``meta.k8s.io/v1 Table`` responses with kubectl's columns, as kube-apiserver's printers compute them.

Columns, cell types and values follow pkg/printers/internalversion/printers.go (server side, so every
column is filled; ``priority: 1`` columns show with ``-o wide``). Ages are computed here with
apimachinery's ``duration.HumanDuration``. Pure functions; ``now`` can be passed for tests.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from kubelite.api import schema
from kubelite.api.duration import human_duration
from kubelite.api.resources import ResourceInfo

Obj = dict[str, Any]
Column = tuple[str, str, int, str]          # name, type, priority, description
NONE = "<none>"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def since(value: Any, now: datetime) -> str:
    """``translateTimestampSince``: ``<unknown>`` for a missing time."""
    t = _parse_time(value)
    if t is None:
        return "<unknown>"
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return human_duration((now - t).total_seconds())


def _doc(definition: str, field: str) -> str:
    try:
        node = schema.definitions().get(definition) or {}
    except RuntimeError:
        return ""
    return str(((node.get("properties") or {}).get(field) or {}).get("description") or "")


def _meta(o: Obj) -> Obj:
    return o.get("metadata") or {}


def format_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: requirements sorted by key; ``<none>`` when empty."""
    if not isinstance(selector, dict):
        return NONE
    reqs: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        reqs.append((key, f"{key}={value}"))
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator"), sorted(expr.get("values") or [])
        text = {"In": f"{key} in ({','.join(values)})", "NotIn": f"{key} notin ({','.join(values)})",
                "Exists": key, "DoesNotExist": f"!{key}"}.get(str(op), "<error>")
        reqs.append((key, text))
    text = ",".join(t for _, t in sorted(reqs, key=lambda r: r[0]))
    return text or NONE


def _template_cells(spec: Obj) -> list[Any]:
    containers = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or []
    return [",".join(str(c.get("name", "")) for c in containers), ",".join(str(c.get("image", "")) for c in containers),
            format_selector(spec.get("selector"))]


# --- pods ---------------------------------------------------------------------------------------------

def _latest(current: datetime | None, value: Any) -> datetime | None:
    t = _parse_time(value)
    return t if t is not None and (current is None or t > current) else current


def _restartable(container: Any) -> bool:
    return isinstance(container, dict) and container.get("restartPolicy") == "Always"


def pod_row(pod: Obj, now: datetime) -> tuple[list[Any], list[Obj]]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or [] if isinstance(c, dict)}
    total = len(spec.get("containers") or []) + sum(1 for c in init_specs.values() if _restartable(c))
    ready = restarts = sidecar_restarts = 0
    last: datetime | None = None
    sidecar_last: datetime | None = None
    initializing = False
    n_init = len(spec.get("initContainers") or [])
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        state, last_state = cs.get("state") or {}, cs.get("lastState") or {}
        restarts += int(cs.get("restartCount") or 0)
        last = _latest(last, (last_state.get("terminated") or {}).get("finishedAt"))
        sidecar = _restartable(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            sidecar_last = _latest(sidecar_last, (last_state.get("terminated") or {}).get("finishedAt"))
        term, wait = state.get("terminated"), state.get("waiting")
        if term is not None and int(term.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if term is not None:
            if term.get("reason"):
                reason = "Init:" + term["reason"]
            elif term.get("signal"):
                reason = f"Init:Signal:{term['signal']}"
            else:
                reason = f"Init:ExitCode:{term.get('exitCode', 0)}"
        elif wait is not None and wait.get("reason") and wait.get("reason") != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break
    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True" for c in status.get("conditions") or [])
    if not initializing or initialized:
        restarts, last = sidecar_restarts, sidecar_last
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            state, last_state = cs.get("state") or {}, cs.get("lastState") or {}
            restarts += int(cs.get("restartCount") or 0)
            last = _latest(last, (last_state.get("terminated") or {}).get("finishedAt"))
            wait, term = state.get("waiting"), state.get("terminated")
            if wait is not None and wait.get("reason"):
                reason = wait["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
            reason = "Running" if pod_ready else "NotReady"
    deleting = _meta(pod).get("deletionTimestamp")
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restarts_text = str(restarts)
    if restarts and last is not None:
        restarts_text = f"{restarts} ({human_duration((now - last).total_seconds())} ago)"
    ips = status.get("podIPs") or []
    ip = (ips[0].get("ip") if ips and isinstance(ips[0], dict) else None) or status.get("podIP") or NONE
    gates = spec.get("readinessGates") or []
    gates_text = NONE
    if gates:
        true = sum(1 for g in gates for c in status.get("conditions") or []
                   if c.get("type") == g.get("conditionType") and c.get("status") == "True")
        gates_text = f"{true}/{len(gates)}"
    cells = [_meta(pod).get("name", ""), f"{ready}/{total}", reason, restarts_text,
             since(_meta(pod).get("creationTimestamp"), now), ip, spec.get("nodeName") or NONE,
             status.get("nominatedNodeName") or NONE, gates_text]
    conditions: list[Obj] = []
    if phase == "Succeeded":
        conditions = [{"type": "Completed", "status": "True", "reason": "Succeeded",
                       "message": "The pod has completed successfully."}]
    elif phase == "Failed":
        conditions = [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return cells, conditions


# --- other kinds --------------------------------------------------------------------------------------

def _node_roles(labels: dict[str, str]) -> str:
    roles = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/"):]:
            roles.add(key[len("node-role.kubernetes.io/"):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or NONE


def _node_address(node: Obj, kind: str) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == kind:
            return str(a.get("address", ""))
    return NONE


def node_cells(node: Obj, now: datetime) -> list[Any]:
    status = node.get("status") or {}
    words = []
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            words = ["Ready" if cond.get("status") == "True" else "NotReady"]
    words = words or ["Unknown"]
    if (node.get("spec") or {}).get("unschedulable"):
        words.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    return [_meta(node).get("name", ""), ",".join(words), _node_roles(_meta(node).get("labels") or {}),
            since(_meta(node).get("creationTimestamp"), now), info.get("kubeletVersion", ""),
            _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def event_cells(ev: Obj, now: datetime) -> list[Any]:
    first = since(ev.get("firstTimestamp"), now) if ev.get("firstTimestamp") else since(ev.get("eventTime"), now)
    last = since(ev.get("lastTimestamp"), now) if ev.get("lastTimestamp") else first
    count = ev.get("count") or 0
    if isinstance(ev.get("series"), dict):
        last = since(ev["series"].get("lastObservedTime"), now)
        count = ev["series"].get("count") or 0
    elif not count:
        count = 1
    inv = ev.get("involvedObject") or {}
    kind = str(inv.get("kind", "")).lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    source = ev.get("source") or {}
    component, host = source.get("component") or "", source.get("host") or ""
    if not component:
        component, host = ev.get("reportingComponent") or "", ev.get("reportingInstance") or ""
    src = f"{component}, {host}" if host else component
    return [last, ev.get("type", ""), ev.get("reason", ""), target, inv.get("fieldPath", ""), src,
            str(ev.get("message", "")).strip(), first, int(count), _meta(ev).get("name", "")]


def _name_age(o: Obj, now: datetime) -> list[Any]:
    return [_meta(o).get("name", ""), since(_meta(o).get("creationTimestamp"), now)]


_NAME: Column = ("Name", "string", 0, "name")
_AGE: Column = ("Age", "string", 0, "age")
_WIDE_TEMPLATE: list[Column] = [("Containers", "string", 1, "Names of each container in the template."),
                                ("Images", "string", 1, "Images referenced by each container in the template."),
                                ("Selector", "string", 1, "selector")]

_PRINTERS: dict[tuple[str, str], tuple[list[Column], Callable[[Obj, datetime], list[Any]]]] = {
    ("", "pods"): ([_NAME, ("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
                    ("Status", "string", 0, "The aggregate status of the containers in this pod."),
                    ("Restarts", "string", 0, "The number of times the containers in this pod have been restarted "
                     "and when the last container in this pod has restarted."), _AGE,
                    ("IP", "string", 1, "io.k8s.api.core.v1.PodStatus:podIP"),
                    ("Node", "string", 1, "io.k8s.api.core.v1.PodSpec:nodeName"),
                    ("Nominated Node", "string", 1, "io.k8s.api.core.v1.PodStatus:nominatedNodeName"),
                    ("Readiness Gates", "string", 1, "io.k8s.api.core.v1.PodSpec:readinessGates")],
                   lambda o, now: pod_row(o, now)[0]),
    ("apps", "replicasets"): ([_NAME, ("Desired", "integer", 0, "io.k8s.api.apps.v1.ReplicaSetSpec:replicas"),
                               ("Current", "integer", 0, "io.k8s.api.apps.v1.ReplicaSetStatus:replicas"),
                               ("Ready", "integer", 0, "io.k8s.api.apps.v1.ReplicaSetStatus:readyReplicas"), _AGE,
                               *_WIDE_TEMPLATE],
                              lambda o, now: [_meta(o).get("name", ""), int((o.get("spec") or {}).get("replicas") or 0),
                                              int((o.get("status") or {}).get("replicas") or 0),
                                              int((o.get("status") or {}).get("readyReplicas") or 0),
                                              since(_meta(o).get("creationTimestamp"), now),
                                              *_template_cells(o.get("spec") or {})]),
    ("apps", "deployments"): ([_NAME, ("Ready", "string", 0, "Number of the pod with ready state"),
                               ("Up-to-date", "integer", 0, "io.k8s.api.apps.v1.DeploymentStatus:updatedReplicas"),
                               ("Available", "integer", 0, "io.k8s.api.apps.v1.DeploymentStatus:availableReplicas"),
                               _AGE, *_WIDE_TEMPLATE],
                              lambda o, now: [_meta(o).get("name", ""),
                                              f"{int((o.get('status') or {}).get('readyReplicas') or 0)}/"
                                              f"{int((o.get('spec') or {}).get('replicas') or 0)}",
                                              int((o.get("status") or {}).get("updatedReplicas") or 0),
                                              int((o.get("status") or {}).get("availableReplicas") or 0),
                                              since(_meta(o).get("creationTimestamp"), now),
                                              *_template_cells(o.get("spec") or {})]),
    ("", "nodes"): ([_NAME, ("Status", "string", 0, "The status of the node"),
                     ("Roles", "string", 0, "The roles of the node"), _AGE,
                     ("Version", "string", 0, "io.k8s.api.core.v1.NodeSystemInfo:kubeletVersion"),
                     ("Internal-IP", "string", 1, "io.k8s.api.core.v1.NodeStatus:addresses"),
                     ("External-IP", "string", 1, "io.k8s.api.core.v1.NodeStatus:addresses"),
                     ("OS-Image", "string", 1, "io.k8s.api.core.v1.NodeSystemInfo:osImage"),
                     ("Kernel-Version", "string", 1, "io.k8s.api.core.v1.NodeSystemInfo:kernelVersion"),
                     ("Container-Runtime", "string", 1, "io.k8s.api.core.v1.NodeSystemInfo:containerRuntimeVersion")],
                    node_cells),
    ("", "namespaces"): ([_NAME, ("Status", "string", 0, "The status of the namespace"), _AGE],
                         lambda o, now: [_meta(o).get("name", ""), (o.get("status") or {}).get("phase", ""),
                                         since(_meta(o).get("creationTimestamp"), now)]),
    ("", "events"): ([("Last Seen", "string", 0, "io.k8s.api.core.v1.Event:lastTimestamp"),
                      ("Type", "string", 0, "io.k8s.api.core.v1.Event:type"),
                      ("Reason", "string", 0, "io.k8s.api.core.v1.Event:reason"),
                      ("Object", "string", 0, "io.k8s.api.core.v1.Event:involvedObject"),
                      ("Subobject", "string", 1, "io.k8s.api.core.v1.ObjectReference:fieldPath"),
                      ("Source", "string", 1, "io.k8s.api.core.v1.Event:source"),
                      ("Message", "string", 0, "io.k8s.api.core.v1.Event:message"),
                      ("First Seen", "string", 1, "io.k8s.api.core.v1.Event:firstTimestamp"),
                      ("Count", "string", 1, "io.k8s.api.core.v1.Event:count"),
                      ("Name", "string", 1, "name")], event_cells),
    ("", "configmaps"): ([_NAME, ("Data", "integer", 0, "io.k8s.api.core.v1.ConfigMap:data"), _AGE],
                         lambda o, now: [_meta(o).get("name", ""), len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                                         since(_meta(o).get("creationTimestamp"), now)]),
    ("", "secrets"): ([_NAME, ("Type", "string", 0, "io.k8s.api.core.v1.Secret:type"),
                       ("Data", "integer", 0, "io.k8s.api.core.v1.Secret:data"), _AGE],
                      lambda o, now: [_meta(o).get("name", ""), o.get("type", ""), len(o.get("data") or {}),
                                      since(_meta(o).get("creationTimestamp"), now)]),
    ("coordination.k8s.io", "leases"): ([_NAME, ("Holder", "string", 0, "io.k8s.api.coordination.v1.LeaseSpec:holderIdentity"), _AGE],
                                        lambda o, now: [_meta(o).get("name", ""),
                                                        (o.get("spec") or {}).get("holderIdentity") or "",
                                                        since(_meta(o).get("creationTimestamp"), now)]),
    ("node.k8s.io", "runtimeclasses"): ([_NAME, ("Handler", "string", 0, "io.k8s.api.node.v1.RuntimeClass:handler"), _AGE],
                                        lambda o, now: [_meta(o).get("name", ""), o.get("handler", ""),
                                                        since(_meta(o).get("creationTimestamp"), now)]),
}


def _describe(ref: str, selector_of: str) -> str:
    if ref == "name":
        return _doc("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "name")
    if ref == "age":
        return _doc("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "creationTimestamp")
    if ref == "selector":
        return _doc(selector_of, "selector")
    if ":" in ref and ref.startswith("io.k8s."):
        definition, field = ref.split(":", 1)
        return _doc(definition, field)
    return ref


def column_definitions(info: ResourceInfo) -> list[Obj]:
    columns = _PRINTERS.get((info.group, info.resource), ([_NAME, _AGE], _name_age))[0]
    spec_def = f"io.k8s.api.apps.v1.{info.kind}Spec"
    return [{"name": n, "type": t, "format": "name" if n == "Name" else "", "description": _describe(d, spec_def),
             "priority": p} for n, t, p, d in columns]


def to_table(info: ResourceInfo, objects: list[dict[str, Any]], *, include_object: str = "Metadata",
             list_meta: dict[str, Any] | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Render ``objects`` of ``info`` as a Table; ``include_object`` is None | Metadata | Object."""
    now = now or datetime.now(timezone.utc)
    _, cells_of = _PRINTERS.get((info.group, info.resource), ([], _name_age))
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells_of(obj, now)}
        if info.resource == "pods" and not info.group:
            conditions = pod_row(obj, now)[1]
            if conditions:
                row["conditions"] = conditions
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": _meta(obj)}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta or {},
            "columnDefinitions": column_definitions(info), "rows": rows}

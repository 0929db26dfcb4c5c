"""``kubelite describe``: kubectl's human-readable detail view of pods, replicasets, deployments, nodes.

The describers follow kubectl's (``k8s.io/kubectl/pkg/describe``) line for line; the shared layout
(tabwriter, sections) lives in :mod:`kubelite.cli.describe_layout`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from kubelite.api.errors import ApiError, NotFound
from kubelite.api.resources import EVENTS, LEASES, PODS, REPLICASETS, ResourceInfo
from kubelite.cli import common, printers
from kubelite.cli.describe_layout import (LAST_APPLIED, Obj, Out, containers, controller_of, events_section,
                                          labels_multiline, pod_template, qos_class, rfc1123z, selector_text,
                                          tolerations_multiline, volumes)

__all__ = ["main", "DESCRIBERS"]


def describe_pod(c: Any, pod: Obj, events: list[Obj] | None) -> str:
    out = Out()
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    out.w(0, f"Name:\t{meta.get('name')}\n")
    out.w(0, f"Namespace:\t{meta.get('namespace')}\n")
    if spec.get("priority") is not None:
        out.w(0, f"Priority:\t{spec['priority']}\n")
    if spec.get("priorityClassName"):
        out.w(0, f"Priority Class Name:\t{spec['priorityClassName']}\n")
    if spec.get("runtimeClassName"):
        out.w(0, f"Runtime Class Name:\t{spec['runtimeClassName']}\n")
    if spec.get("serviceAccountName"):
        out.w(0, f"Service Account:\t{spec['serviceAccountName']}\n")
    node = spec.get("nodeName")
    out.w(0, f"Node:\t{node + '/' + status.get('hostIP', '') if node else '<none>'}\n")
    if status.get("startTime"):
        out.w(0, f"Start Time:\t{rfc1123z(status['startTime'])}\n")
    labels_multiline(out, 0, "Labels", meta.get("labels"))
    labels_multiline(out, 0, "Annotations", meta.get("annotations"), skip=(LAST_APPLIED,), sep=": ")
    if meta.get("deletionTimestamp"):
        out.w(0, f"Status:\tTerminating (lasts {printers.age(meta['deletionTimestamp'])})\n")
        out.w(0, f"Termination Grace Period:\t{meta.get('deletionGracePeriodSeconds', 0)}s\n")
    else:
        out.w(0, f"Status:\t{status.get('phase', '')}\n")
    if status.get("reason"):
        out.w(0, f"Reason:\t{status['reason']}\n")
    if status.get("message"):
        out.w(0, f"Message:\t{status['message']}\n")
    out.w(0, f"IP:\t{status.get('podIP', '')}\n")
    ips = status.get("podIPs") or []
    if not ips:
        out.w(0, "IPs:\t<none>\n")
    else:
        out.w(0, "IPs:\n")
        for ip in ips:
            out.w(1, f"IP:\t{ip.get('ip')}\n")
    if controller_of(pod):
        out.w(0, f"Controlled By:\t{controller_of(pod)}\n")
    if status.get("nominatedNodeName"):
        out.w(0, f"NominatedNodeName:\t{status['nominatedNodeName']}\n")
    if spec.get("initContainers"):
        containers(out, "Init Containers", spec["initContainers"], status.get("initContainerStatuses"))
    containers(out, "Containers", spec.get("containers") or [], status.get("containerStatuses"))
    if status.get("conditions"):
        out.w(0, "Conditions:\n")
        out.w(1, "Type\tStatus\n")
        for cond in status["conditions"]:
            out.w(1, f"{cond.get('type')} \t{cond.get('status')} \n")
    volumes(out, spec.get("volumes"))
    out.w(0, f"QoS Class:\t{qos_class(pod)}\n")
    labels_multiline(out, 0, "Node-Selectors", spec.get("nodeSelector"))
    tolerations_multiline(out, 0, "Tolerations", spec.get("tolerations"))
    events_section(out, events)
    return out.render()


def _pods_status(c: Any, ns: str, selector: Obj | None, owner_uid: str) -> str:
    counts = {"Running": 0, "Pending": 0, "Succeeded": 0, "Failed": 0}
    try:
        pods = c.list(PODS, ns, label_selector=selector_text(selector) if selector else None)["items"]
    except ApiError:
        pods = []
    for p in pods:
        refs = (p.get("metadata") or {}).get("ownerReferences") or []
        if owner_uid and not any(r.get("uid") == owner_uid for r in refs):
            continue
        phase = (p.get("status") or {}).get("phase", "Pending")
        counts[phase] = counts.get(phase, 0) + 1
    return (f"{counts['Running']} Running / {counts['Pending']} Waiting / {counts['Succeeded']} Succeeded / "
            f"{counts['Failed']} Failed")


def _conditions3(out: Out, conds: list[Obj] | None) -> None:
    if conds:
        out.w(0, "Conditions:\n")
        out.w(1, "Type\tStatus\tReason\n")
        out.w(1, "----\t------\t------\n")
        for cond in conds:
            out.w(1, f"{cond.get('type')} \t{cond.get('status')}\t{cond.get('reason', '')}\n")


def describe_replicaset(c: Any, rs: Obj, events: list[Obj] | None) -> str:
    out = Out()
    meta, spec, status = rs.get("metadata") or {}, rs.get("spec") or {}, rs.get("status") or {}
    out.w(0, f"Name:\t{meta.get('name')}\n")
    out.w(0, f"Namespace:\t{meta.get('namespace')}\n")
    out.w(0, f"Selector:\t{selector_text(spec.get('selector'))}\n")
    labels_multiline(out, 0, "Labels", meta.get("labels"))
    labels_multiline(out, 0, "Annotations", meta.get("annotations"), skip=(LAST_APPLIED,), sep=": ")
    if controller_of(rs):
        out.w(0, f"Controlled By:\t{controller_of(rs)}\n")
    out.w(0, f"Replicas:\t{status.get('replicas', 0)} current / {spec.get('replicas', 1)} desired\n")
    out.w(0, f"Pods Status:\t{_pods_status(c, meta.get('namespace', ''), spec.get('selector'), meta.get('uid', ''))}\n")
    pod_template(out, spec.get("template"))
    _conditions3(out, status.get("conditions"))
    events_section(out, events)
    return out.render()


def _template_equal(a: Obj | None, b: Obj | None) -> bool:
    def strip(t: Obj | None) -> Obj:
        import copy
        t = copy.deepcopy(t or {})
        (t.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
        return t
    return strip(a) == strip(b)


def describe_deployment(c: Any, d: Obj, events: list[Obj] | None) -> str:
    out = Out()
    meta, spec, status = d.get("metadata") or {}, d.get("spec") or {}, d.get("status") or {}
    out.w(0, f"Name:\t{meta.get('name')}\n")
    out.w(0, f"Namespace:\t{meta.get('namespace')}\n")
    out.w(0, f"CreationTimestamp:\t{rfc1123z(meta.get('creationTimestamp'))}\n")
    labels_multiline(out, 0, "Labels", meta.get("labels"))
    labels_multiline(out, 0, "Annotations", meta.get("annotations"), skip=(LAST_APPLIED,), sep=": ")
    out.w(0, f"Selector:\t{selector_text(spec.get('selector'))}\n")
    out.w(0, f"Replicas:\t{spec.get('replicas', 1)} desired | {status.get('updatedReplicas', 0)} updated | "
             f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
             f"{status.get('unavailableReplicas', 0)} unavailable\n")
    strategy = spec.get("strategy") or {}
    out.w(0, f"StrategyType:\t{strategy.get('type', 'RollingUpdate')}\n")
    out.w(0, f"MinReadySeconds:\t{spec.get('minReadySeconds', 0)}\n")
    if strategy.get("rollingUpdate"):
        ru = strategy["rollingUpdate"]
        out.w(0, f"RollingUpdateStrategy:\t{ru.get('maxUnavailable', '25%')} max unavailable, "
                 f"{ru.get('maxSurge', '25%')} max surge\n")
    pod_template(out, spec.get("template"))
    _conditions3(out, status.get("conditions"))
    try:
        rss = c.list(REPLICASETS, meta.get("namespace"), label_selector=selector_text(spec.get("selector")))["items"]
    except ApiError:
        rss = []
    owned = [r for r in rss if any(o.get("uid") == meta.get("uid") and o.get("controller")
                                   for o in (r.get("metadata") or {}).get("ownerReferences") or [])]
    new = [r for r in owned if _template_equal((r.get("spec") or {}).get("template"), spec.get("template"))][:1]
    old = [r for r in owned if r not in new and ((r.get("spec") or {}).get("replicas") or 0) > 0]

    def rs_text(items: list[Obj]) -> str:
        return ", ".join(f"{r['metadata']['name']} ({(r.get('status') or {}).get('replicas', 0)}/"
                         f"{(r.get('spec') or {}).get('replicas', 0)} replicas created)" for r in items) or "<none>"
    if owned:
        out.w(0, f"OldReplicaSets:\t{rs_text(old)}\n")
        out.w(0, f"NewReplicaSet:\t{rs_text(new)}\n")
    events_section(out, events)
    return out.render()


def describe_node(c: Any, node: Obj, events: list[Obj] | None) -> str:
    out = Out()
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    labels = meta.get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    out.w(0, f"Name:\t{meta.get('name')}\n")
    out.w(0, f"Roles:\t{','.join(roles) or '<none>'}\n")
    labels_multiline(out, 0, "Labels", labels)
    labels_multiline(out, 0, "Annotations", meta.get("annotations"), skip=(LAST_APPLIED,), sep=": ")
    out.w(0, f"CreationTimestamp:\t{rfc1123z(meta.get('creationTimestamp'))}\n")
    taints = spec.get("taints") or []
    if not taints:
        out.w(0, "Taints:\t<none>\n")
    for i, t in enumerate(taints):
        value = f"={t['value']}" if t.get("value") else ""
        out.w(0, f"{'Taints:' if i == 0 else ''}\t{t.get('key')}{value}:{t.get('effect')}\n")
    out.w(0, f"Unschedulable:\t{'true' if spec.get('unschedulable') else 'false'}\n")
    try:
        lease = c.get(LEASES, meta.get("name"), "kube-node-lease")
        ls = lease.get("spec") or {}
        out.w(0, "Lease:\n")
        out.w(1, f"HolderIdentity:\t{ls.get('holderIdentity') or '<unset>'}\n")
        out.w(1, f"AcquireTime:\t{rfc1123z(ls['acquireTime']) if ls.get('acquireTime') else '<unset>'}\n")
        out.w(1, f"RenewTime:\t{rfc1123z(ls['renewTime']) if ls.get('renewTime') else '<unset>'}\n")
    except ApiError as exc:
        out.w(0, f"Lease:\tFailed to get lease: {exc.message}\n")
    conds = status.get("conditions") or []
    if conds:
        out.w(0, "Conditions:\n")
        out.w(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n")
        out.w(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for cond in conds:
            out.w(1, f"{cond.get('type')} \t{cond.get('status')} \t{rfc1123z(cond.get('lastHeartbeatTime'))} \t"
                     f"{rfc1123z(cond.get('lastTransitionTime'))} \t{cond.get('reason', '')} \t"
                     f"{cond.get('message', '')}\n")
    addrs = status.get("addresses") or []
    if addrs:
        out.w(0, "Addresses:\n")
        for a in addrs:
            out.w(1, f"{a.get('type')}:\t{a.get('address')}\n")
    for key, title in (("capacity", "Capacity"), ("allocatable", "Allocatable")):
        if status.get(key):
            out.w(0, f"{title}:\n")
            for k, v in sorted(status[key].items()):
                out.w(1, f"{k}:\t{v}\n")
    info = status.get("nodeInfo") or {}
    out.w(0, "System Info:\n")
    for k, title in (("machineID", "Machine ID"), ("systemUUID", "System UUID"), ("bootID", "Boot ID"),
                     ("kernelVersion", "Kernel Version"), ("osImage", "OS Image"), ("operatingSystem", "Operating System"),
                     ("architecture", "Architecture"), ("containerRuntimeVersion", "Container Runtime Version"),
                     ("kubeletVersion", "Kubelet Version"), ("kubeProxyVersion", "Kube-Proxy Version")):
        out.w(1, f"{title}:\t{info.get(k, '')}\n")
    if spec.get("podCIDR"):
        out.w(0, f"PodCIDR:\t{spec['podCIDR']}\n")
    if spec.get("podCIDRs"):
        out.w(0, f"PodCIDRs:\t{','.join(spec['podCIDRs'])}\n")
    try:
        pods = c.list(PODS, None, field_selector=f"spec.nodeName={meta.get('name')},status.phase!=Succeeded,"
                                                 f"status.phase!=Failed")["items"]
    except ApiError:
        pods = None
    if pods is not None:
        out.w(0, f"Non-terminated Pods:\t({len(pods)} in total)\n")
        out.w(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n")
        out.w(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n")
        alloc = status.get("allocatable") or {}
        for p in pods:
            pm = p.get("metadata") or {}
            cells = []
            for key in ("cpu", "memory"):
                for kind in ("requests", "limits"):
                    cells.append(_share([p], kind, key, alloc))
            out.w(1, f"{pm.get('namespace')}\t{pm.get('name')}\t\t{cells[0]}\t{cells[1]}\t{cells[2]}\t{cells[3]}\t"
                     f"{printers.age(pm.get('creationTimestamp'))}\n")
        allocated_resources(out, pods, status.get("allocatable") or {})
    events_section(out, events)
    return out.render()


def _sum(pods: list[Obj], kind: str, key: str) -> Any:
    from fractions import Fraction

    from kubelite.api import quantity
    total = Fraction(0)
    fmt = "DecimalSI"
    for p in pods:
        for c_ in (p.get("spec") or {}).get("containers") or []:
            res = c_.get("resources") or {}
            value = (res.get(kind) or {}).get(key)
            if value is None and kind == "requests":
                value = (res.get("limits") or {}).get(key)
            if value is not None:
                q = quantity.parse(value)
                total += q.value
                fmt = q.format
    return total, fmt


def allocated_resources(out: Out, pods: list[Obj], allocatable: dict[str, Any]) -> None:
    """kubectl's "Allocated resources" table: summed requests/limits and their share of allocatable."""
    out.w(0, "Allocated resources:\n")
    out.w(1, "(Total limits may be over 100 percent, i.e., overcommitted.)\n")
    out.w(1, "Resource\tRequests\tLimits\n")
    out.w(1, "--------\t--------\t------\n")
    hugepages = sorted(k for k in allocatable if k.startswith("hugepages-"))
    for key in ("cpu", "memory", "ephemeral-storage", *hugepages):
        out.w(1, f"{key}\t{_share(pods, 'requests', key, allocatable)}\t{_share(pods, 'limits', key, allocatable)}\n")
    standard = {"cpu", "memory", "ephemeral-storage", "storage", "pods"}
    for key in sorted(k for k in allocatable if k not in standard and not k.startswith("hugepages-")):
        from kubelite.api import quantity
        req, lim = _sum(pods, "requests", key)[0], _sum(pods, "limits", key)[0]
        out.w(1, f"{key}\t{quantity.format_quantity(req)}\t{quantity.format_quantity(lim)}\n")


def _share(pods: list[Obj], kind: str, key: str, allocatable: dict[str, Any]) -> str:
    """``100m (5%)``: the pods' summed requests or limits and their share of the node's allocatable."""
    from kubelite.api import quantity

    cap = quantity.parse(allocatable[key]).value if allocatable.get(key) else 0
    total, fmt = _sum(pods, kind, key)
    pct = int(total * 100 / cap) if cap else 0
    text = quantity.format_quantity(total, "BinarySI" if key != "cpu" and fmt == "BinarySI" else "DecimalSI")
    return f"{text} ({pct}%)"


def describe_namespace(c: Any, ns: Obj, events: list[Obj] | None) -> str:
    out = Out()
    meta = ns.get("metadata") or {}
    out.w(0, f"Name:\t{meta.get('name')}\n")
    labels_multiline(out, 0, "Labels", meta.get("labels"))
    labels_multiline(out, 0, "Annotations", meta.get("annotations"), skip=(LAST_APPLIED,), sep=": ")
    out.w(0, f"Status:\t{(ns.get('status') or {}).get('phase', '')}\n")
    return out.render()


DESCRIBERS: dict[str, Callable[[Any, Obj, list[Obj] | None], str]] = {
    "pods": describe_pod, "replicasets.apps": describe_replicaset, "deployments.apps": describe_deployment,
    "nodes": describe_node, "namespaces": describe_namespace,
}


def describe_generic(c: Any, obj: Obj, events: list[Obj] | None) -> str:
    out = Out()
    meta = obj.get("metadata") or {}
    out.w(0, f"Name:\t{meta.get('name')}\n")
    if meta.get("namespace"):
        out.w(0, f"Namespace:\t{meta['namespace']}\n")
    labels_multiline(out, 0, "Labels", meta.get("labels"))
    labels_multiline(out, 0, "Annotations", meta.get("annotations"), skip=(LAST_APPLIED,), sep=": ")
    out.w(0, f"API Version:\t{obj.get('apiVersion', '')}\n")
    out.w(0, f"Kind:\t{obj.get('kind', '')}\n")
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    text = printers.to_yaml(body) if body else ""
    out.flush()
    for line in text.splitlines():
        out.w(0, line + "\n")
    events_section(out, events)
    return out.render()


def _events_for(c: Any, info: ResourceInfo, obj: Obj) -> list[Obj] | None:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace", "") if info.namespaced else ""
    fs = f"involvedObject.name={meta.get('name')},involvedObject.namespace={ns},involvedObject.kind={info.kind}," \
         f"involvedObject.uid={meta.get('uid', '')}"
    try:
        return c.list(EVENTS, ns or None, field_selector=fs)["items"]
    except ApiError:
        return []


def main(argv: list[str]) -> int:
    return common.run(_describe, argv)


def _describe(argv: list[str]) -> int:
    p = common.parser("describe", "Show details of a specific resource or group of resources.")
    p.add_argument("words", nargs="*", metavar="TYPE [NAME_PREFIX] | TYPE/NAME")
    p.add_argument("-l", "--selector", default=None)
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--show-events", default="true")
    p.add_argument("-f", "--filename", action="append", default=[])
    args = p.parse_args(argv)
    c = common.client(args)
    namespace = None if args.all_namespaces else (args.namespace or c.namespace)
    objs: list[tuple[ResourceInfo, Obj]] = []
    failed = False
    if args.filename:
        for m in common.read_manifests(args.filename):
            ns = common.namespace_of(c, args, m.info, m.obj)
            objs.append((m.info, c.get(m.info, m.obj["metadata"]["name"], ns)))
    else:
        for info, name in common.split_type_names(args.words):
            ns = namespace if info.namespaced else None
            if name is None or args.selector:
                items = c.list(info, ns, label_selector=args.selector)["items"]
                if name is not None:    # kubectl: a name prefix
                    items = [i for i in items if i["metadata"]["name"].startswith(name)]
                objs.extend((info, printers.with_kind(info, i)) for i in items)
                continue
            try:
                objs.append((info, c.get(info, name, ns)))
            except NotFound:
                # kubectl falls back to a name prefix match
                items = [i for i in c.list(info, ns)["items"] if i["metadata"]["name"].startswith(name)]
                if not items:
                    print(common.api_error_text(NotFound(f'{info.qualified} "{name}" not found')), file=sys.stderr)
                    failed = True
                objs.extend((info, printers.with_kind(info, i)) for i in items)
    if not objs and not failed:
        where = f" in {namespace} namespace" if namespace else ""
        print(f"No resources found{where}.", file=sys.stderr)
    show_events = args.show_events.lower() not in ("false", "0")
    texts = []
    for info, obj in objs:
        events = _events_for(c, info, obj) if show_events and info.resource != "namespaces" else None
        texts.append(DESCRIBERS.get(info.qualified, describe_generic)(c, obj, events))
    sys.stdout.write("\n\n".join(t.rstrip("\n") for t in texts) + ("\n" if texts else ""))
    return 1 if failed else 0

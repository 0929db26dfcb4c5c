"""The layout kubectl's describers use: Go-tabwriter alignment, ``Key:\\tvalue`` lines indented two
spaces per level, and the sections shared by several kinds (labels, tolerations, containers, volumes,
pod templates, events) — as in ``k8s.io/kubectl/pkg/describe``. Text only, no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubelite.cli import common, printers

LAST_APPLIED = common.LAST_APPLIED
Obj = dict[str, Any]


def tabwrite(text: str, padding: int = 2) -> str:
    """Go's text/tabwriter (minwidth 0, padding ``padding``, no flags): align tab-terminated cells."""
    lines = [line.split("\t") for line in text.split("\n")]
    widths: list[list[int]] = [[0] * (len(cells) - 1) for cells in lines]

    def fmt(line0: int, line1: int, col: int) -> None:
        i = line0
        while i < line1:
            if col >= len(lines[i]) - 1:
                i += 1
                continue
            j, width = i, 0
            while j < line1 and col < len(lines[j]) - 1:
                width = max(width, len(lines[j][col]) + padding)
                j += 1
            for k in range(i, j):
                widths[k][col] = width
            fmt(i, j, col + 1)
            i = j

    fmt(0, len(lines), 0)
    return "\n".join("".join(c.ljust(widths[n][i]) for i, c in enumerate(cells[:-1])) + cells[-1]
                     for n, cells in enumerate(lines))


class Out:
    """Collects ``Write(level, ...)`` lines; sections separated by :meth:`flush` are aligned separately."""

    def __init__(self) -> None:
        self.blocks: list[list[str]] = [[]]

    def w(self, level: int, text: str) -> None:
        self.blocks[-1].append("  " * level + text)

    def flush(self) -> None:
        self.blocks.append([])

    def render(self) -> str:
        return "".join(tabwrite("".join(b)) for b in self.blocks if b)


def rfc1123z(ts: str | None) -> str:
    if not ts:
        return "<unknown>"
    try:
        dt = datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return ts
    return dt.strftime("%a, %d %b %Y %H:%M:%S +0000")


def labels_multiline(out: Out, level: int, title: str, labels: dict[str, str] | None, skip: tuple[str, ...] = (),
                     sep: str = "=") -> None:
    items = [(k, v) for k, v in sorted((labels or {}).items()) if k not in skip]
    if not items:
        out.w(level, f"{title}:\t<none>\n")
        return
    for i, (k, v) in enumerate(items):
        if sep == ": " and len(v) > 140:
            v = v[:137] + "..."
        out.w(level, f"{title + ':' if i == 0 else ''}\t{k}{sep}{v}\n")


def toleration_text(t: dict[str, Any]) -> str:
    s = t.get("key", "")
    if t.get("value"):
        s += f"={t['value']}"
    if t.get("effect"):
        s += f":{t['effect']}"
    if t.get("operator") == "Exists" and not t.get("value"):
        s += " op=Exists" if t.get("key") else "op=Exists"
    if t.get("tolerationSeconds") is not None:
        s += f" for {t['tolerationSeconds']}s"
    return s


def tolerations_multiline(out: Out, level: int, title: str, tolerations: list[dict[str, Any]] | None) -> None:
    if not tolerations:
        out.w(level, f"{title}:\t<none>\n")
        return
    for i, t in enumerate(tolerations):
        out.w(level, f"{title + ':' if i == 0 else ''}\t{toleration_text(t)}\n")


def selector_text(sel: dict[str, Any] | None) -> str:
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op = e.get("operator", "")
        vals = ",".join(sorted(e.get("values") or []))
        parts.append({"In": f"{e['key']} in ({vals})", "NotIn": f"{e['key']} notin ({vals})",
                      "Exists": e["key"], "DoesNotExist": f"!{e['key']}"}.get(op, e["key"]))
    return ",".join(parts) or "<none>"


def _state(out: Out, level: int, title: str, state: dict[str, Any]) -> None:
    if "running" in state:
        out.w(level, f"{title}:\tRunning\n")
        out.w(level + 1, f"Started:\t{rfc1123z(state['running'].get('startedAt'))}\n")
    elif "waiting" in state:
        out.w(level, f"{title}:\tWaiting\n")
        if state["waiting"].get("reason"):
            out.w(level + 1, f"Reason:\t{state['waiting']['reason']}\n")
    elif "terminated" in state:
        t = state["terminated"]
        out.w(level, f"{title}:\tTerminated\n")
        if t.get("reason"):
            out.w(level + 1, f"Reason:\t{t['reason']}\n")
        if t.get("message"):
            out.w(level + 1, f"Message:\t{t['message']}\n")
        out.w(level + 1, f"Exit Code:\t{t.get('exitCode', 0)}\n")
        if t.get("signal"):
            out.w(level + 1, f"Signal:\t{t['signal']}\n")
        out.w(level + 1, f"Started:\t{rfc1123z(t.get('startedAt'))}\n")
        out.w(level + 1, f"Finished:\t{rfc1123z(t.get('finishedAt'))}\n")
    else:
        out.w(level, f"{title}:\tWaiting\n")


def containers(out: Out, title: str, specs: list[Obj], statuses: list[Obj] | None, space: str = "") -> None:
    """kubectl's describeContainers: ``space`` prefixes the title (and one space the names) in templates."""
    out.w(0, f"{space}{title}:{'' if specs else ' <none>'}\n")
    by_name = {s.get("name"): s for s in statuses or []}
    for c in specs:
        out.w(1, f"{' ' if space else ''}{c.get('name', '')}:\n")
        st = by_name.get(c.get("name"))
        lv = 2
        if st is not None:
            out.w(lv, f"Container ID:\t{st.get('containerID', '')}\n")
        out.w(lv, f"Image:\t{c.get('image', '')}\n")
        if st is not None:
            out.w(lv, f"Image ID:\t{st.get('imageID', '')}\n")
        ports = c.get("ports") or []
        port = ", ".join(f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"
        hport = ", ".join(f"{p.get('hostPort', 0)}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"
        out.w(lv, f"Port{'s' if len(ports) > 1 else ''}:\t{port}\n")
        out.w(lv, f"Host Port{'s' if len(ports) > 1 else ''}:\t{hport}\n")
        for key, name in (("command", "Command"), ("args", "Args")):
            if c.get(key):
                out.w(lv, f"{name}:\n")
                for arg in c[key]:
                    for piece in str(arg).split("\n"):
                        out.w(lv + 1, f"{piece}\n")
        if st is not None:
            _state(out, lv, "State", st.get("state") or {})
            if st.get("lastState"):
                _state(out, lv, "Last State", st["lastState"])
            out.w(lv, f"Ready:\t{'True' if st.get('ready') else 'False'}\n")
            out.w(lv, f"Restart Count:\t{st.get('restartCount', 0)}\n")
        res = c.get("resources") or {}
        for key, name in (("limits", "Limits"), ("requests", "Requests")):
            if res.get(key):
                out.w(lv, f"{name}:\n")
                for k, v in sorted(res[key].items()):
                    out.w(lv + 1, f"{k}:\t{v}\n")
        env = c.get("env") or []
        if not env and not c.get("envFrom"):
            out.w(lv, "Environment:\t<none>\n")
        else:
            out.w(lv, "Environment:\n")
            for e in env:
                if "value" in e or "valueFrom" not in e:
                    out.w(lv + 1, f"{e.get('name')}:\t{e.get('value', '')}\n")
                else:
                    out.w(lv + 1, f"{e.get('name')}:\t<set to a reference>\n")
        mounts = c.get("volumeMounts") or []
        if not mounts:
            out.w(lv, "Mounts:\t<none>\n")
        else:
            out.w(lv, "Mounts:\n")
            for m in sorted(mounts, key=lambda m: m.get("mountPath", "")):
                flags = "ro" if m.get("readOnly") else "rw"
                out.w(lv + 1, f"{m.get('mountPath')} from {m.get('name')} ({flags})\n")


def volumes(out: Out, vols: list[Obj] | None, space: str = "") -> None:
    level = 0
    if not vols:
        out.w(0, f"{space}Volumes:\t<none>\n")
        return
    out.w(0, f"{space}Volumes:\n")
    for v in vols:
        out.w(1, f"{' ' if space else ''}{v.get('name')}:\n")
        if "emptyDir" in v:
            ed = v["emptyDir"] or {}
            out.w(level + 2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n")
            out.w(level + 2, f"Medium:\t{ed.get('medium', '')}\n")
            out.w(level + 2, f"SizeLimit:\t{ed.get('sizeLimit', '<unset>')}\n")
        elif "hostPath" in v:
            hp = v["hostPath"] or {}
            out.w(level + 2, "Type:\tHostPath (bare host directory volume)\n")
            out.w(level + 2, f"Path:\t{hp.get('path', '')}\n")
            out.w(level + 2, f"HostPathType:\t{hp.get('type', '')}\n")
        else:
            kind = next((k for k in v if k != "name"), "<unknown>")
            out.w(level + 2, f"Type:\t{kind}\n")


def qos_class(pod: Obj) -> str:
    q = (pod.get("status") or {}).get("qosClass")
    if q:
        return q
    cs = (pod.get("spec") or {}).get("containers") or []
    res = [c.get("resources") or {} for c in cs]
    if not any(r.get("requests") or r.get("limits") for r in res):
        return "BestEffort"
    guaranteed = all(
        all((r.get("limits") or {}).get(k) and (r.get("requests") or r.get("limits") or {}).get(k) ==
            (r.get("limits") or {}).get(k) for k in ("cpu", "memory")) for r in res)
    return "Guaranteed" if guaranteed else "Burstable"


def controller_of(obj: Obj) -> str:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')}/{ref.get('name')}"
    return ""


def events_section(out: Out, events: list[Obj] | None) -> None:
    if events is None:
        return
    if not events:
        out.w(0, "Events:\t<none>\n")
        return
    out.flush()
    events = sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    out.w(0, "Events:\n")
    out.w(1, "Type\tReason\tAge\tFrom\tMessage\n")
    out.w(1, "----\t------\t----\t----\t-------\n")
    for e in events:
        first = printers.age(e.get("firstTimestamp") or e.get("eventTime"))
        interval = first
        if int(e.get("count") or 1) > 1:
            interval = f"{printers.age(e.get('lastTimestamp'))} (x{e['count']} over {first})"
        source = (e.get("source") or {}).get("component") or e.get("reportingComponent", "")
        out.w(1, f"{e.get('type', '')}\t{e.get('reason', '')}\t{interval}\t{source}\t"
                 f"{str(e.get('message', '')).strip()}\n")


def pod_template(out: Out, template: Obj | None) -> None:
    out.w(0, "Pod Template:\n")
    if not template:
        out.w(1, "<unset>\n")
        return
    meta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    labels_multiline(out, 1, "Labels", meta.get("labels"))
    if meta.get("annotations"):
        labels_multiline(out, 1, "Annotations", meta.get("annotations"), sep=": ")
    if spec.get("serviceAccountName"):
        out.w(1, f"Service Account:\t{spec['serviceAccountName']}\n")
    if spec.get("initContainers"):
        containers(out, "Init Containers", spec["initContainers"], None, "  ")
    containers(out, "Containers", spec.get("containers") or [], None, "  ")
    volumes(out, spec.get("volumes"), "  ")
    labels_multiline(out, 1, "Node-Selectors", spec.get("nodeSelector"))
    tolerations_multiline(out, 1, "Tolerations", spec.get("tolerations"))

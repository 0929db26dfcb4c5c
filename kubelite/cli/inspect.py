"""``kubelite inspect pod NAME [-n NS] [-o json]`` and ``kubelite inspect node NAME``: what is under the hood.

Asks the pod's kubelet through the apiserver (``nodes/<node>/proxy/inspect/...``), so it works from
wherever the kubeconfig works, and prints the answer as a tree: host PIDs, namespaces and who shares
them, cgroups with their limit files, the overlay layers with the instruction that made each one, and
the veth and bridge. ``-o json`` prints the kubelet's document as it is.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from kubelite.api.resources import NODES, PODS
from kubelite.cli import common

_LIMIT_FILES = ("memory.limit_in_bytes", "memory.max", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.max",
                "cpu.shares", "cpu.weight", "pids.max")
_USAGE_FILES = ("memory.usage_in_bytes", "memory.current", "cpuacct.usage", "pids.current")
_UNLIMITED = 2 ** 63 - 4096


def main(argv: list[str]) -> int:
    return common.run(_inspect, argv)


def _inspect(argv: list[str]) -> int:
    p = common.parser("inspect", "Show the kernel objects behind a pod or a node.")
    p.add_argument("kind", choices=["pod", "pods", "po", "node", "nodes", "no"], help="pod or node")
    p.add_argument("name")
    p.add_argument("-o", "--output", default="", choices=["", "json", "tree"])
    args = p.parse_args(argv)
    c = common.client(args)
    colour = common.use_colour(sys.stdout)
    try:
        if args.kind in ("pod", "pods", "po"):
            pod = c.get(PODS, args.name, args.namespace)
            node = (pod.get("spec") or {}).get("nodeName")
            if not node:
                raise common.CliError(f'pod "{args.name}" is not scheduled to a node yet')
            ns = pod["metadata"]["namespace"]
            doc = c.request("GET", f"/api/v1/nodes/{node}/proxy/inspect/pods/{ns}/{args.name}")
            text = json.dumps(doc, indent=2) if args.output == "json" else render_pod(doc, colour)
        else:
            c.get(NODES, args.name)
            doc = c.request("GET", f"/api/v1/nodes/{args.name}/proxy/inspect/node")
            text = json.dumps(doc, indent=2) if args.output == "json" else render_node(doc, colour)
    finally:
        c.close()
    sys.stdout.write(text + "\n")
    return 0


def human_bytes(n: int | str | None) -> str:
    try:
        v = int(n or 0)
    except ValueError:
        return str(n)
    if v >= _UNLIMITED:
        return "unlimited"
    for unit in ("", "Ki", "Mi", "Gi", "Ti"):
        if abs(v) < 1024 or unit == "Ti":
            return f"{v}{unit}" if unit == "" else f"{v:.1f}{unit}".replace(".0", "")
        v = v / 1024  # type: ignore[assignment]
    return str(v)


def explain(files: dict[str, str]) -> list[str]:
    """One line per limit, with what it means (``cpu.cfs_quota_us 50000 / period 100000 = 0.5 CPU``)."""
    out = []
    if "memory.limit_in_bytes" in files:
        v = files["memory.limit_in_bytes"]
        out.append(f"memory.limit_in_bytes = {v} ({human_bytes(v)})")
    if "memory.max" in files:
        v = files["memory.max"]
        out.append(f"memory.max = {v} ({human_bytes(v) if v != 'max' else 'unlimited'})")
    if "cpu.cfs_quota_us" in files:
        q, per = int(files["cpu.cfs_quota_us"]), int(files.get("cpu.cfs_period_us") or 100000)
        out.append(f"cpu.cfs_quota_us = {q} / cpu.cfs_period_us = {per}" + (f" → {q / per:g} CPU" if q > 0 else
                                                                            " → no CPU limit"))
    if "cpu.max" in files:
        q, _, per = files["cpu.max"].partition(" ")
        out.append(f"cpu.max = {files['cpu.max']}" + (f" → {int(q) / int(per):g} CPU" if q != "max" else
                                                      " → no CPU limit"))
    if "cpu.shares" in files:
        out.append(f"cpu.shares = {files['cpu.shares']} (≈ {int(files['cpu.shares']) * 1000 // 1024}m CPU request)")
    if "cpu.weight" in files:
        out.append(f"cpu.weight = {files['cpu.weight']}")
    if "pids.max" in files:
        out.append(f"pids.max = {files['pids.max']}")
    usage = []
    for f in _USAGE_FILES:
        if f in files:
            v = files[f]
            usage.append(f"{f} = {v}" + (f" ({human_bytes(v)})" if f.startswith("memory") else
                                         f" ({int(v) / 1e9:.2f}s CPU)" if f == "cpuacct.usage" else ""))
    if usage:
        out.append("usage: " + ", ".join(usage))
    return out


class Tree:
    """Lines drawn with box characters; the root and its direct items in bold when ``colour``."""

    def __init__(self, colour: bool = False) -> None:
        self.lines: list[str] = []
        self.colour = colour

    def add(self, depth: int, last: list[bool], text: str) -> None:
        """``last``: for each level down to this line, whether it is the last item at that level."""
        prefix = ""
        if depth:
            prefix = "".join("   " if done else "│  " for done in last[:-1]) + ("└─ " if last[-1] else "├─ ")
        if self.colour and depth <= 1:
            text = f"\x1b[1m{text}\x1b[0m"
        self.lines.append(prefix + text)

    def render(self) -> str:
        return "\n".join(self.lines)


def _walk(tree: Tree, items: list[tuple[str, Any]], last: list[bool]) -> None:
    """Add ``(text, children)`` items; children is a list of the same or None."""
    for i, (text, children) in enumerate(items):
        here = last + [i == len(items) - 1]
        tree.add(len(here), here, text)
        if children:
            _walk(tree, children, here)


def _namespaces(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for ns, info in (doc.get("namespaces") or {}).items():
        members = info.get("members") or {}
        groups: dict[Any, list[str]] = {}
        for who, m in members.items():
            groups.setdefault(m.get("inode"), []).append(who)
        parts = []
        for inode, who in groups.items():
            host = " = the host's" if inode == info.get("host") else ""
            label = "shared by " + ", ".join(who) if len(who) > 1 else f"{who[0]} only"
            parts.append(f"{inode} ({label}{host})")
        out.append((f"{ns:<7} " + "; ".join(parts), None))
    return out


def _rootfs(c: dict[str, Any]) -> list[tuple[str, Any]]:
    root = c.get("rootfs") or {}
    if root.get("type") != "overlay":
        return [(f"rootfs: {root.get('type', 'unknown')}", None)]
    layers = []
    for i, l in enumerate(root.get("layers") or []):
        what = (l.get("createdBy") or "").replace("/bin/sh -c #(nop) ", "").strip()
        digest = (l.get("digest") or "?")[:19]
        layers.append((f"lower {i} (top first) {digest} {human_bytes(l.get('size'))}  {what[:70]}",
                       [(f"{l['lowerdir']}", None)]))
    upper = root.get("upper") or {}
    changes = [(("+ " if ch["change"] == "written" else "- " if ch["change"] == "deleted" else "∅ ") + ch["path"]
                + (f" ({human_bytes(ch['size'])})" if ch["change"] == "written" else ""), None)
               for ch in (upper.get("changes") or [])[:15]]
    if upper.get("count", 0) > len(changes):
        changes.append((f"… {upper['count'] - len(changes)} more", None))
    return [*layers, (f"upper {root.get('upperdir')}  ({upper.get('count', 0)} changes, "
                      f"{human_bytes(upper.get('bytes', 0))} written)", changes or None)]


def render_pod(doc: dict[str, Any], colour: bool = False) -> str:
    tree = Tree(colour)
    tree.add(0, [True], f"pod {doc['namespace']}/{doc['name']}  uid {doc['uid']}  node {doc['node']}  "
                        f"QoS {doc.get('qosClass') or '-'}  cgroup v{doc.get('cgroupVersion')}")
    items: list[tuple[str, Any]] = []
    sb = doc.get("sandbox")
    if sb:
        items.append((f"sandbox {sb['id'][:12]}  host PID {sb.get('pid')}  {sb.get('state')}", None))
    containers = []
    for c in doc.get("containers") or []:
        procs = [(f"host PID {p['hostPID']} = PID {p['pidInContainer']} inside: {p['command'][:60]}", None)
                 for p in (c.get("processes") or [])]
        containers.append((f"{c['name']}  host PID {c.get('pid')}  image {c.get('image')}  "
                           f"id {c['id'][:12]}", procs or None))
    items.append(("containers", containers))
    items.append(("namespaces", _namespaces(doc)))
    cg: list[tuple[str, Any]] = []
    if doc.get("podCgroup"):
        pc = doc["podCgroup"]
        cg.append((f"pod {pc.get('path') or pc.get('dir')}", [(l, None) for l in explain(pc.get("files") or {})]))
    for c in doc.get("containers") or []:
        if c.get("cgroup"):
            cg.append((f"{c['name']} {c['cgroup'].get('path')}",
                       [(l, None) for l in explain(c["cgroup"].get("files") or {})]))
    items.append(("cgroups", cg))
    items.append(("rootfs (overlay: image layers read-only below, the container's upper dir on top)",
                  [(c["name"], _rootfs(c)) for c in doc.get("containers") or [] if c.get("rootfs")]))
    net = doc.get("network") or {}
    if net.get("hostNetwork"):
        items.append(("network: the host's (hostNetwork)", None))
    elif net:
        ifs = [(f"{i['name']} {' '.join(i.get('addresses') or [])}" +
                (f"  ⇄ host veth {i['hostVeth']} on bridge {i.get('bridge') or '-'}" if i.get("hostVeth") else ""),
                None) for i in net.get("interfaces") or []]
        items.append((f"network  IP {net.get('ip', '-')}", ifs))
    _walk(tree, items, [])
    return tree.render()


def render_node(doc: dict[str, Any], colour: bool = False) -> str:
    tree = Tree(colour)
    tree.add(0, [True], f"node {doc['name']}  kernel {doc.get('kernel')}  cgroup v{doc.get('cgroupVersion')}  "
                        f"root {doc.get('cgroupRoot')}")
    qos = [(f"{name}", [(l, None) for l in explain(info.get("files") or {})])
           for name, info in (doc.get("qosCgroups") or {}).items()]
    pods = [(f"{p.get('namespace')}/{p.get('name')}  sandbox PID {p.get('sandboxPID')}  IP {p.get('ip')}",
             [(f"{c['name']} PID {c.get('pid')} {c.get('state')}", None) for c in p.get("containers") or []])
            for p in doc.get("pods") or []]
    bridges = [(f"{b['name']}  veths: {', '.join(b.get('members') or []) or '-'}", None)
               for b in doc.get("bridges") or []]
    shared = doc.get("sharedLayers") or {}
    images = [(f"{', '.join(i.get('names') or []) or i['id'][:19]}  {len(i.get('layers') or [])} layers"
               + (f", {sum(1 for d in i['layers'] if d in shared)} shared" if shared else ""), None)
              for i in doc.get("images") or []]
    _walk(tree, [("QoS cgroups", qos), ("pods", pods), ("bridges", bridges), ("images", images)], [])
    return tree.render()

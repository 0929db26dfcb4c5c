"""``kubelite top pod|node``: CPU and memory use from ``metrics.k8s.io/v1beta1``, laid out like ``kubectl top``.

CPU is shown in millicores (``250m``), memory in MiB (``12Mi``); ``top node`` adds the share of the
node's allocatable. ``--containers`` lists each container of a pod.
"""

from __future__ import annotations

import sys
from typing import Any

from kubelite.api.errors import NotFound
from kubelite.api.quantity import bytes_, cpu_millis
from kubelite.cli import common

GV = "/apis/metrics.k8s.io/v1beta1"


def main(argv: list[str]) -> int:
    return common.run(_top, argv)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def cpu_milli(q: str) -> int:
    return cpu_millis(q)


def mem_mi(q: str) -> int:
    return bytes_(q) // (1024 * 1024)


def _top(argv: list[str]) -> int:
    p = common.parser("top", "Display resource (CPU/memory) usage of pods or nodes.")
    p.add_argument("kind", choices=["pod", "pods", "po", "node", "nodes", "no"])
    p.add_argument("name", nargs="?")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-l", "--selector", default=None)
    p.add_argument("--containers", action="store_true", help="show each container of a pod")
    p.add_argument("--no-headers", action="store_true")
    p.add_argument("--sort-by", choices=["cpu", "memory"], default=None)
    args = p.parse_args(argv)
    c = common.client(args)
    try:
        try:
            c.request("GET", GV)
        except NotFound:
            raise common.CliError("Metrics API not available") from None
        params = {"labelSelector": args.selector} if args.selector else None
        if args.kind.startswith("no"):
            rows = _nodes(c, args, params)
        else:
            rows = _pods(c, args, params)
    finally:
        c.close()
    if rows is None:
        raise common.CliError("metrics not available yet")
    sys.stdout.write(_table(rows[1:] if args.no_headers else rows) + "\n" if len(rows) > 1 or not args.no_headers
                     else "")
    return 0


def _sort(items: list[dict[str, Any]], key: str | None, usage: Any) -> list[dict[str, Any]]:
    if key == "cpu":
        return sorted(items, key=lambda i: -cpu_milli(usage(i).get("cpu", "0")))
    if key == "memory":
        return sorted(items, key=lambda i: -mem_mi(usage(i).get("memory", "0")))
    return items


def _nodes(c: Any, args: Any, params: Any) -> list[list[str]] | None:
    if args.name:
        items = [c.request("GET", f"{GV}/nodes/{args.name}")]
    else:
        items = c.request("GET", f"{GV}/nodes", params=params).get("items") or []
    if not items:
        return None
    alloc = {n["metadata"]["name"]: (n.get("status") or {}).get("allocatable") or {}
             for n in c.request("GET", "/api/v1/nodes").get("items") or []}
    rows = [["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]]
    for m in _sort(items, args.sort_by, lambda i: i.get("usage") or {}):
        name = m["metadata"]["name"]
        cpu, mem = cpu_milli(m["usage"]["cpu"]), mem_mi(m["usage"]["memory"])
        a = alloc.get(name) or {}
        cpu_pct = f"{cpu * 100 // max(1, cpu_milli(a['cpu']))}%" if a.get("cpu") else "<unknown>"
        mem_pct = f"{mem * 100 // max(1, mem_mi(a['memory']))}%" if a.get("memory") else "<unknown>"
        rows.append([name, f"{cpu}m", cpu_pct, f"{mem}Mi", mem_pct])
    return rows


def _pods(c: Any, args: Any, params: Any) -> list[list[str]] | None:
    ns = None if args.all_namespaces else (args.namespace or c.namespace or "default")
    base = f"{GV}/namespaces/{ns}/pods" if ns else f"{GV}/pods"
    if args.name:
        items = [c.request("GET", f"{base}/{args.name}")]
    else:
        items = c.request("GET", base, params=params).get("items") or []
    if not items:
        return None
    head = (["NAMESPACE"] if ns is None else []) + (["POD", "NAME"] if args.containers else ["NAME"])
    rows = [head + ["CPU(cores)", "MEMORY(bytes)"]]

    def total(i: dict[str, Any]) -> dict[str, str]:
        cpu = sum(cpu_milli(x["usage"]["cpu"]) for x in i.get("containers") or [])
        mem = sum(mem_mi(x["usage"]["memory"]) for x in i.get("containers") or [])
        return {"cpu": f"{cpu}m", "memory": f"{mem}Mi"}
    for m in _sort(items, args.sort_by, total):
        prefix = [m["metadata"].get("namespace", "")] if ns is None else []
        if args.containers:
            for x in m.get("containers") or []:
                rows.append(prefix + [m["metadata"]["name"], x["name"], f"{cpu_milli(x['usage']['cpu'])}m",
                                      f"{mem_mi(x['usage']['memory'])}Mi"])
        else:
            t = total(m)
            rows.append(prefix + [m["metadata"]["name"], t["cpu"], t["memory"]])
    return rows

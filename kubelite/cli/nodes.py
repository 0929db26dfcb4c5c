"""``kubelite cordon|uncordon|drain|taint``: node maintenance with kubectl's wording. ``drain``
cordons, then evicts each pod through ``pods/eviction`` (falling back to delete where the server
has no eviction), retrying while a disruption budget refuses (429), and waits for them to go."""

from __future__ import annotations

import sys
import time
from typing import Any

from kubelite.api.errors import ApiError, NotFound, TooManyRequests
from kubelite.api.resources import NODES, PODS
from kubelite.cli import common

EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def cordon(argv: list[str]) -> int:
    return common.run(lambda a: _cordon("cordon", True, a), argv)


def uncordon(argv: list[str]) -> int:
    return common.run(lambda a: _cordon("uncordon", False, a), argv)


def drain(argv: list[str]) -> int:
    return common.run(_drain, argv)


def taint(argv: list[str]) -> int:
    return common.run(_taint, argv)


def _node_names(c: Any, words: list[str], selector: str | None) -> list[str]:
    names = [w.split("/", 1)[1] if w.startswith(("node/", "nodes/", "no/")) else w for w in words]
    if selector:
        names += [n["metadata"]["name"] for n in c.list(NODES, label_selector=selector).get("items") or []]
    if not names:
        raise common.CliError("USAGE: kubelite cordon|uncordon|drain NODE [flags]")
    return names


def _set_unschedulable(c: Any, name: str, value: bool, verb: str) -> None:
    node = c.get(NODES, name)
    if bool((node.get("spec") or {}).get("unschedulable")) == value:
        print(f"node/{name} already {verb}ed")
        return
    c.patch(NODES, name, {"spec": {"unschedulable": True if value else None}}, patch_type="merge")
    print(f"node/{name} {verb}ed")


def _cordon(command: str, value: bool, argv: list[str]) -> int:
    p = common.parser(command, f"Mark node as {'un' if value else ''}schedulable.")
    p.add_argument("nodes", nargs="*")
    p.add_argument("-l", "--selector", default=None)
    args = p.parse_args(argv)
    c = common.client(args)
    for name in _node_names(c, args.nodes, args.selector):
        _set_unschedulable(c, name, value, "cordon" if value else "uncordon")
    return 0


def _controller(pod: dict) -> dict | None:
    return next((r for r in pod["metadata"].get("ownerReferences") or () if r.get("controller")), None)


def _drain(argv: list[str]) -> int:
    p = common.parser("drain", "Drain node in preparation for maintenance.")
    p.add_argument("nodes", nargs="*")
    p.add_argument("-l", "--selector", default=None)
    p.add_argument("--force", action="store_true", help="also delete pods no controller manages")
    p.add_argument("--ignore-daemonsets", action="store_true")
    p.add_argument("--delete-emptydir-data", "--delete-local-data", dest="delete_emptydir", action="store_true")
    p.add_argument("--grace-period", type=int, default=-1)
    p.add_argument("--timeout", type=float, default=0.0, help="seconds to wait for the pods to go (0 = forever)")
    p.add_argument("--disable-eviction", action="store_true", help="delete instead of evicting")
    args = p.parse_args(argv)
    c = common.client(args)
    for name in _node_names(c, args.nodes, args.selector):
        _set_unschedulable(c, name, True, "cordon")
        pods = [q for q in c.list(PODS, field_selector=f"spec.nodeName={name}").get("items") or []
                if (q.get("spec") or {}).get("nodeName") == name]
        problems: list[str] = []
        victims = []
        for pod in pods:
            ref = _controller(pod)
            meta = pod["metadata"]
            key = f"{meta['namespace']}/{meta['name']}"
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                victims.append(pod)
                continue
            if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
                continue
            if ref is not None and ref.get("kind") == "DaemonSet":
                if not args.ignore_daemonsets:
                    problems.append(f"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {key}")
                continue
            if ref is None and not args.force:
                problems.append(f"cannot delete Pods that declare no controller (use --force to override): {key}")
                continue
            if any("emptyDir" in v for v in (pod.get("spec") or {}).get("volumes") or ()) and not args.delete_emptydir:
                problems.append(f"cannot delete Pods with local storage (use --delete-emptydir-data to override): {key}")
                continue
            victims.append(pod)
        if problems:
            raise common.CliError(f'unable to drain node "{name}" due to error: ' + ", ".join(problems) +
                                  ", continuing command...\nThere are pending nodes to be drained:\n " + name)
        deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
        for pod in victims:
            _evict(c, pod, args, deadline)
        for pod in victims:
            _wait_gone(c, pod, deadline)
        print(f"node/{name} drained")
    return 0


def _evict(c: Any, pod: dict, args: Any, deadline: float | None) -> None:
    meta = pod["metadata"]
    print(f"evicting pod {meta['namespace']}/{meta['name']}", flush=True)
    options: dict[str, Any] = {"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"}
    if args.grace_period >= 0:
        options["gracePeriodSeconds"] = args.grace_period
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]}, "deleteOptions": options}
    while True:
        try:
            if args.disable_eviction:
                raise _NoEviction
            c.create_subresource(PODS, meta["name"], "eviction", body, meta["namespace"])
            return
        except TooManyRequests as exc:
            print(f"error when evicting pods/\"{meta['name']}\" -n \"{meta['namespace']}\" (will retry after 5s): "
                  f"{exc}", file=sys.stderr)
            if deadline is not None and time.monotonic() > deadline:
                raise common.CliError(f"drain did not complete within {args.timeout}s") from None
            time.sleep(5)
        except (NotFound, _NoEviction) as exc:
            if isinstance(exc, NotFound) and _pod_gone(c, pod):
                return
            grace = args.grace_period if args.grace_period >= 0 else None
            try:
                c.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=grace)
            except NotFound:
                pass
            return


class _NoEviction(Exception):
    pass


def _pod_gone(c: Any, pod: dict) -> bool:
    meta = pod["metadata"]
    try:
        now = c.get(PODS, meta["name"], meta["namespace"])
    except NotFound:
        return True
    return now["metadata"].get("uid") != meta.get("uid")


def _wait_gone(c: Any, pod: dict, deadline: float | None) -> None:
    meta = pod["metadata"]
    while not _pod_gone(c, pod):
        if deadline is not None and time.monotonic() > deadline:
            raise common.CliError(f"drain did not complete: pod {meta['namespace']}/{meta['name']} still there")
        time.sleep(0.2)
    print(f"pod/{meta['name']} evicted", flush=True)


def parse_taint(spec: str) -> tuple[dict[str, str], bool]:
    """``key=value:Effect`` / ``key:Effect`` to add; ``key-`` / ``key:Effect-`` to remove."""
    remove = spec.endswith("-")
    if remove:
        spec = spec[:-1]
    key_value, _, effect = spec.partition(":")
    key, _, value = key_value.partition("=")
    if not key or (effect and effect not in EFFECTS) or (not remove and not effect):
        raise common.CliError(f'invalid taint spec: {spec}{"-" if remove else ""}, unsupported taint effect '
                              f'"{effect}"' if effect and effect not in EFFECTS else f"invalid taint spec: {spec}")
    t = {"key": key, "effect": effect}
    if value:
        t["value"] = value
    return t, remove


def _taint(argv: list[str]) -> int:
    p = common.parser("taint", "Update the taints on one or more nodes.")
    p.add_argument("words", nargs="+", metavar="node NAME KEY_1=VAL_1:TAINT_EFFECT_1 ...")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("-l", "--selector", default=None)
    args = p.parse_args(argv)
    words = list(args.words)
    if words and words[0] in ("node", "nodes", "no"):
        words = words[1:]
    names = [w for w in words if ":" not in w and "=" not in w and not w.endswith("-")]
    specs = [parse_taint(w) for w in words if w not in names]
    if not specs:
        raise common.CliError("at least one taint update is required")
    c = common.client(args)
    for name in _node_names(c, names, args.selector):
        node = c.get(NODES, name)
        taints = list((node.get("spec") or {}).get("taints") or [])
        for t, remove in specs:
            if remove:
                before = len(taints)
                taints = [x for x in taints if not (x.get("key") == t["key"] and
                                                    (not t["effect"] or x.get("effect") == t["effect"]))]
                if len(taints) == before:
                    raise common.CliError(f"taint \"{t['key']}\" not found")
                continue
            same = [x for x in taints if x.get("key") == t["key"] and x.get("effect") == t["effect"]]
            if same and not args.overwrite:
                raise common.CliError(f"node {name} already has {t['key']} taint(s) with same effect(s) and "
                                      f"--overwrite is false")
            taints = [x for x in taints if x not in same] + [t]
        body = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}, "spec": {"taints": taints or None}}
        try:
            c.patch(NODES, name, body, patch_type="merge")
        except ApiError:
            raise
        print(f"node/{name} {'untainted' if all(r for _, r in specs) else 'tainted'}")
    return 0

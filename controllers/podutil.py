"""Pod helpers the workload controllers share: owner references, readiness and availability,
pods from a template, and kube's ActivePods ordering (least progressed first). Pure functions.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any, Iterable

from kubelite.api.selectors import selector_matches  # noqa: F401  (re-exported for the controllers)

Obj = dict[str, Any]

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def key_of(obj: Obj) -> str:
    m = obj["metadata"]
    return f"{m['namespace']}/{m['name']}" if m.get("namespace") else m["name"]


def controller_ref(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def owner_ref_for(owner: Obj, block: bool = True) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": block}


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_active(pod: Obj) -> bool:
    """kube's IsPodActive: not terminal and not being deleted."""
    return not is_terminal(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp")


def ready_condition(pod: Obj) -> Obj | None:
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return c
    return None


def is_ready(pod: Obj) -> bool:
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least ``min_ready_seconds``."""
    c = ready_condition(pod)
    if c is None or c.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time(c.get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds <= now


def pod_from_template(template: Obj, owner: Obj, namespace: str) -> Obj:
    tmeta = template.get("metadata") or {}
    meta: Obj = {
        "generateName": f"{owner['metadata']['name']}-",
        "namespace": namespace,
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner_ref_for(owner)],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _restarts(pod: Obj) -> int:
    return max((int(s.get("restartCount") or 0) for s in (pod.get("status") or {}).get("containerStatuses") or ()),
               default=0)


def deletion_order(pods: Iterable[Obj], related: Iterable[Obj] = ()) -> list[Obj]:
    """Pods sorted least-progressed first, as kube's ``ActivePodsWithRanks`` (delete from the front).

    unassigned < assigned; Pending < Unknown < Running; not ready < ready; lower deletion cost;
    more of ``related`` on the same node (doubled up) first; ready for less time; more restarts;
    newer first.
    """
    pods = list(pods)
    per_node: dict[str, int] = {}
    for p in (list(related) or pods):
        n = (p.get("spec") or {}).get("nodeName")
        if n and is_active(p):
            per_node[n] = per_node.get(n, 0) + 1

    def sort_key(p: Obj) -> tuple:
        node = (p.get("spec") or {}).get("nodeName") or ""
        phase = (p.get("status") or {}).get("phase") or "Pending"
        ready = is_ready(p)
        try:
            cost = int(((p.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST, 0))
        except ValueError:
            cost = 0
        c = ready_condition(p)
        ready_since = parse_time(c.get("lastTransitionTime")) if ready and c else None
        created = parse_time((p.get("metadata") or {}).get("creationTimestamp")) or 0.0
        return (
            1 if node else 0,
            _PHASE_RANK.get(phase, 1),
            1 if ready else 0,
            cost,
            -per_node.get(node, 0) if node else 0,
            -(ready_since or 0.0),
            -_restarts(p),
            -created,
        )

    return sorted(pods, key=sort_key)


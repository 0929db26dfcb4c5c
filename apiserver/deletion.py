"""Graceful deletion, decided: what a DELETE does to one object (no I/O here).

Kubernetes' ``rest.BeforeDelete`` and the generic store's delete: the uid/resourceVersion preconditions,
a pod's grace period (0 for a pod on no node or already finished), the propagation policy's finalizer
(``orphan``, ``foregroundDeletion``), a namespace going Terminating with its ``kubernetes`` finalizer, and
``deletionTimestamp``/``deletionGracePeriodSeconds`` (only ever shortened). :func:`plan_delete` says
whether the object stays as it is, is marked as being deleted, or goes now; the store writes that.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Literal

from kubelite.api import errors
from kubelite.api.resources import NAMESPACES, PODS, ResourceInfo

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"

Action = Literal["keep", "mark", "remove"]


@dataclass(frozen=True, slots=True)
class DeleteOptions:
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None
    dry_run: bool = False


def grace_period(info: ResourceInfo, obj: dict[str, Any], options: DeleteOptions) -> int:
    """Seconds the object may take to go: a running pod's (the request's, else its spec's, else 30)."""
    if info is not PODS:
        return 0
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0
    if options.grace_period_seconds is not None:
        return max(0, int(options.grace_period_seconds))
    value = spec.get("terminationGracePeriodSeconds")
    return int(value) if isinstance(value, int) and value >= 0 else 30


def spec_finalizers(info: ResourceInfo, obj: dict[str, Any]) -> list[str]:
    """A namespace's ``spec.finalizers`` (what the namespace controller must finish before it goes)."""
    if info is not NAMESPACES:
        return []
    return list((obj.get("spec") or {}).get("finalizers") or [])


def plan_delete(info: ResourceInfo, name: str, obj: dict[str, Any], options: DeleteOptions,
                now: Callable[[int], str]) -> tuple[Action, dict[str, Any]]:
    """``("keep", obj)``: nothing to write; ``("mark", new)``: write ``new`` (deletionTimestamp, finalizers);
    ``("remove", obj)``: delete it now. ``now(offset)`` is the RFC 3339 time ``offset`` seconds ahead.
    A failed precondition is a 409 Conflict."""
    meta = obj["metadata"]
    if options.precondition_uid and options.precondition_uid != meta.get("uid"):
        raise errors.conflict(info.resource, name, info.group,
                              f"Precondition failed: UID in precondition: {options.precondition_uid}, "
                              f"UID in object meta: {meta.get('uid')}")
    if options.precondition_rv and options.precondition_rv != meta.get("resourceVersion"):
        raise errors.conflict(info.resource, name, info.group,
                              f"Precondition failed: ResourceVersion in precondition: {options.precondition_rv}, "
                              f"ResourceVersion in object meta: {meta.get('resourceVersion')}")
    grace = grace_period(info, obj, options)
    new = copy.deepcopy(obj)
    new_meta = new["metadata"]
    finalizers = list(new_meta.get("finalizers") or [])
    if not meta.get("deletionTimestamp"):
        policy = options.propagation_policy
        if policy == "Orphan" and ORPHAN not in finalizers:
            finalizers.append(ORPHAN)
        elif policy == "Foreground" and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
    if finalizers:
        new_meta["finalizers"] = finalizers
    if info is NAMESPACES:
        new.setdefault("spec", {})["finalizers"] = list((obj.get("spec") or {}).get("finalizers") or ["kubernetes"])
        new.setdefault("status", {})["phase"] = "Terminating"
    if not (finalizers or grace > 0 or spec_finalizers(info, new)):
        return "remove", obj
    if meta.get("deletionTimestamp"):
        current = int(meta.get("deletionGracePeriodSeconds") or 0)
        if grace >= current and new == obj:
            return "keep", obj
        if grace < current:
            new_meta["deletionTimestamp"] = now(grace)
            new_meta["deletionGracePeriodSeconds"] = grace
    else:
        new_meta["deletionTimestamp"] = now(grace)
        new_meta["deletionGracePeriodSeconds"] = grace
    if not finalizers and not spec_finalizers(info, new) and grace == 0:
        return "remove", obj
    return "mark", new

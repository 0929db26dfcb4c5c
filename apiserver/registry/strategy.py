"""Per-kind strategies: what happens to an object on create, update and status update.

The handlers call only ``strategy_for(info)`` and the five methods of :class:`Strategy`, in this
order: ``prepare_for_create`` → ``validate`` (create); ``prepare_for_update`` → ``validate_update``
(update/patch of the main resource); ``prepare_for_status_update`` (the status subresource).
As in kube-apiserver: defaults are applied on every write of the main resource, status is reset on
create and kept on spec writes where a status subresource exists, status writes keep spec and most
metadata, ``metadata.generation`` starts at 1 and is bumped when the spec changes (kinds with one).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from apiserver.registry import apps, core, pods
from apiserver.registry.canonical import canonicalize_quantities
from apiserver.registry import validation as v
from kubelite.api.errors import StatusCause
from kubelite.api.jsonmemo import JsonMemo
from kubelite.api.resources import ResourceInfo

Obj = dict[str, Any]
_STATUS_RESET_META = ("deletionTimestamp", "generation", "selfLink", "labels", "annotations", "finalizers",
                      "ownerReferences")


class Strategy(Protocol):
    def prepare_for_create(self, obj: Obj) -> None: ...
    def validate(self, obj: Obj) -> list[StatusCause]: ...
    def prepare_for_update(self, new: Obj, old: Obj) -> None: ...
    def validate_update(self, new: Obj, old: Obj) -> list[StatusCause]: ...
    def prepare_for_status_update(self, new: Obj, old: Obj) -> None: ...


def _none(*_: Any) -> None:
    return None


def _no_causes(*_: Any) -> list[StatusCause]:
    return []


@dataclass(frozen=True, slots=True)
class KindStrategy:
    """A strategy assembled from per-kind hooks (see :func:`strategy_for`)."""

    namespaced: bool
    name_fn: Callable[[Any], list[str]] = v.dns1123_subdomain
    defaults: Callable[[Obj], None] = _none
    check: Callable[[Obj], list[StatusCause]] = _no_causes
    check_update: Callable[[Obj, Obj], list[StatusCause]] = _no_causes
    update_hook: Callable[[Obj, Obj], None] = _none
    status_subresource: bool = False
    initial_status: Callable[[Obj], Any] | None = None
    generation: bool = False
    generation_includes_annotations: bool = False
    status_defaults: bool = False  # defaults that concern status (node allocatable) also on status writes

    def prepare_for_create(self, obj: Obj) -> None:
        meta = obj.setdefault("metadata", {})
        if self.generation and isinstance(meta, dict):
            meta["generation"] = 1
        self.defaults(obj)
        _canonicalize(obj)
        if self.initial_status is not None:
            status = self.initial_status(obj)
            if status is None:
                obj.pop("status", None)
            else:
                obj["status"] = status

    def validate(self, obj: Obj) -> list[StatusCause]:
        return v.object_meta(obj.get("metadata"), namespaced=self.namespaced, name_fn=self.name_fn) + self.check(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        if self.status_subresource:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        self.defaults(new)
        _canonicalize(new)
        self.update_hook(new, old)
        if self.generation:
            self._bump_generation(new, old)

    def _bump_generation(self, new: Obj, old: Obj) -> None:
        old_meta, new_meta = old.get("metadata") or {}, new.setdefault("metadata", {})
        generation = int(old_meta.get("generation") or 1)
        changed = new.get("spec") != old.get("spec")
        if self.generation_includes_annotations:
            changed = changed or (new_meta.get("annotations") or {}) != (old_meta.get("annotations") or {})
        new_meta["generation"] = generation + 1 if changed else generation

    def validate_update(self, new: Obj, old: Obj) -> list[StatusCause]:
        return v.object_meta_update(new, old) + self.validate(new) + self.check_update(new, old)

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        if "spec" in old:
            new["spec"] = copy.deepcopy(old["spec"])
        else:
            new.pop("spec", None)
        if self.status_defaults:
            self.defaults(new)
        _canonicalize(new)
        new_meta, old_meta = new.setdefault("metadata", {}), old.get("metadata") or {}
        for key in _STATUS_RESET_META:
            if key in old_meta:
                new_meta[key] = copy.deepcopy(old_meta[key])
            else:
                new_meta.pop(key, None)


def _canonicalize(obj: Obj) -> None:
    if obj.get("apiVersion") and obj.get("kind"):
        canonicalize_quantities(obj, str(obj["apiVersion"]), str(obj["kind"]))


# --- per-kind hooks ----------------------------------------------------------------------------------

def _pod_status(obj: Obj) -> Obj:
    return {"phase": "Pending", "qosClass": pods.qos_class(obj.get("spec") or {})}


def _pod_update_hook(new: Obj, old: Obj) -> None:
    ns, os_ = new.get("spec"), old.get("spec") or {}
    if isinstance(ns, dict):
        for key in ("priority", "priorityClassName", "preemptionPolicy", "nodeName"):
            if key not in ns and key in os_:
                ns[key] = os_[key]


_POD_SPEC_CAUSES: JsonMemo[list[StatusCause]] = JsonMemo()


def _pod_check(obj: Obj) -> list[StatusCause]:
    """:func:`pods.validate_pod_spec`, memoized by the spec's JSON (a controller's pods share one spec)."""
    spec = obj.get("spec")
    key = _POD_SPEC_CAUSES.key(spec) if isinstance(spec, dict) else None
    if key is None:
        return pods.validate_pod_spec("spec", spec)
    found = _POD_SPEC_CAUSES.get(None, key)
    if found is None:
        found = pods.validate_pod_spec("spec", spec)
        _POD_SPEC_CAUSES.put(None, key, found)
    return [StatusCause(**c) for c in found]      # copies: callers may extend or change them


def _pod_check_update(new: Obj, old: Obj) -> list[StatusCause]:
    return pods.validate_pod_update(new, old)


def _apps_update(new: Obj, old: Obj) -> list[StatusCause]:
    return apps.validate_selector_update(new, old)


def _configmap_update(new: Obj, old: Obj) -> list[StatusCause]:
    return core.validate_immutable_data(new, old)


_STRATEGIES: dict[tuple[str, str], KindStrategy] = {
    ("", "pods"): KindStrategy(True, defaults=pods.default_pod, check=_pod_check, check_update=_pod_check_update,
                               update_hook=_pod_update_hook, status_subresource=True, initial_status=_pod_status),
    ("", "nodes"): KindStrategy(False, defaults=core.default_node, check=core.validate_node,
                                check_update=core.validate_node_update, status_subresource=True,
                                status_defaults=True),
    ("", "namespaces"): KindStrategy(False, name_fn=v.dns1123_label, defaults=core.default_namespace,
                                     check=core.validate_namespace, update_hook=core.prepare_namespace_update,
                                     status_subresource=True, initial_status=core.namespace_status),
    ("", "events"): KindStrategy(True, check=core.validate_event),
    ("", "configmaps"): KindStrategy(True, check=core.validate_configmap, check_update=_configmap_update),
    ("", "secrets"): KindStrategy(True, defaults=core.default_secret, check=core.validate_secret,
                                  check_update=core.validate_secret_update),
    ("apps", "replicasets"): KindStrategy(True, defaults=apps.default_replicaset, check=apps.validate_replicaset,
                                          check_update=_apps_update, status_subresource=True,
                                          initial_status=lambda _: {"replicas": 0}, generation=True),
    ("apps", "deployments"): KindStrategy(True, defaults=apps.default_deployment, check=apps.validate_deployment,
                                          check_update=_apps_update, status_subresource=True,
                                          initial_status=lambda _: {}, generation=True,
                                          generation_includes_annotations=True),
    ("coordination.k8s.io", "leases"): KindStrategy(True, check=core.validate_lease),
    ("node.k8s.io", "runtimeclasses"): KindStrategy(False, check=core.validate_runtimeclass,
                                                    check_update=core.validate_runtimeclass_update),
}


def strategy_for(info: ResourceInfo) -> Strategy:
    """The strategy of a served resource (a metadata-only one for kinds without special rules)."""
    found = _STRATEGIES.get((info.group, info.resource))
    if found is not None:
        return found
    return KindStrategy(info.namespaced, status_subresource=info.subresource("status") is not None)

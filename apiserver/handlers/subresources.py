"""Subresources beyond status: ``scale`` (autoscaling/v1 Scale) and ``pods/binding``, ``pods/eviction``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from apiserver.handlers.common import (PATCH_TYPES, dry_run, field_manager, json_response, parse_document, read_object, read_raw,
                                       state)
from apiserver.handlers.delete import POLICIES
from apiserver.handlers.dispatch import Target
from apiserver.handlers.patch import apply_patch_document
from apiserver.listing import encode
from apiserver.objects import MAX_RETRIES, DeleteOptions
from apiserver.storage import RevisionMismatchError
from apiserver.watchcache import decode
from kubelite.api import errors
from kubelite.api.selectors import SelectorError, selector_to_string


def to_scale(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    try:
        selector = selector_to_string(spec.get("selector"))
    except SelectorError:
        selector = ""
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": int(spec.get("replicas", 1))},
            "status": {"replicas": int(status.get("replicas", 0)), "selector": selector}}


async def get_scale(request: web.Request, target: Target) -> web.StreamResponse:
    assert target.name is not None
    return json_response(to_scale(await state(request).objects.get(target.info, target.namespace, target.name)))


async def _write_scale(request: web.Request, target: Target, make_scale: Any) -> web.StreamResponse:
    info, name = target.info, target.name
    assert name is not None

    async def mutate(current: dict[str, Any]) -> dict[str, Any]:
        scale = make_scale(to_scale(current))
        if not isinstance(scale, dict):
            raise errors.BadRequest("the body must be a Scale object")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale", name, [errors.invalid_value("spec.replicas", replicas,
                                                                      "must be greater than or equal to 0")], "autoscaling")
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != current["metadata"].get("resourceVersion"):
            raise errors.conflict(info.resource, name, info.group)
        current.setdefault("spec", {})["replicas"] = replicas
        return current
    result = await state(request).objects.guaranteed_update(info, target.namespace, name, mutate,
                                                            subresource="scale", dry_run=dry_run(request),
                                                            manager=field_manager(request))
    return json_response(to_scale(result))


async def update_scale(request: web.Request, target: Target) -> web.StreamResponse:
    body, _ = await read_object(request)
    return await _write_scale(request, target, lambda _current: body)


async def patch_scale(request: web.Request, target: Target) -> web.StreamResponse:
    raw, kind = await read_raw(request, PATCH_TYPES)
    doc = parse_document(raw, kind)
    return await _write_scale(request, target, lambda current: apply_patch_document(kind, current, doc, request, "scale"))


async def create_binding(request: web.Request, target: Target) -> web.StreamResponse:
    """Bind a pod to a node: sets ``spec.nodeName``; 409 if the pod is bound already.

    The hot path of every scheduler: one conditional etcd write guarded by the mod revision of the
    pod the watch cache holds (no etcd read); if that copy is stale, the failed transaction returns the
    current pod and the bind is retried on it, so the outcome is that of a read-modify-write.
    """
    info, name = target.info, target.name
    assert name is not None
    body, _ = await read_object(request)
    node = (body.get("target") or {}).get("name") if isinstance(body.get("target"), dict) else None
    if not node:
        raise errors.invalid("Binding", name, [errors.required("target.name")])
    body_name = (body.get("metadata") or {}).get("name")
    if body_name and body_name != name:
        raise errors.BadRequest(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
    uid = ((body.get("metadata") or {}).get("uid"))
    objects = state(request).objects
    if dry_run(request):
        async def bind(current: dict[str, Any]) -> dict[str, Any]:
            return _bound(info, name, current, node, uid)
        await objects.guaranteed_update(info, target.namespace, name, bind, dry_run=True, binding=True)
    else:
        await _bind(objects, info, target.namespace, name, node, uid)
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                         status=201)


def _bound(info: Any, name: str, current: dict[str, Any], node: str, uid: str | None) -> dict[str, Any]:
    """``current`` bound to ``node`` as a new object sharing the unchanged parts (``current`` is not
    modified: it may be the watch cache's). Raises the 409 of a pod that cannot be bound."""
    meta = current["metadata"]
    if uid and uid != meta.get("uid"):
        raise errors.conflict(info.resource, name, why=f"Precondition failed: UID in precondition: {uid}, "
                              f"UID in object meta: {meta.get('uid')}")
    if meta.get("deletionTimestamp"):
        raise errors.conflict(info.resource, name, why="pod is being deleted, cannot be assigned to a host")
    spec = current.get("spec") or {}
    if spec.get("nodeName"):
        raise errors.conflict(info.resource, name, why=f"pod {name} is already assigned to node \"{spec['nodeName']}\"")
    status = dict(current.get("status") or {})
    conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                  "lastTransitionTime": meta.get("creationTimestamp")})
    status["conditions"] = conds
    new = dict(current)
    new["spec"] = dict(spec, nodeName=node)
    new["status"] = status
    return new


async def _bind(objects: Any, info: Any, namespace: str | None, name: str, node: str, uid: str | None) -> None:
    key = objects.key(info, namespace, name)
    cache = objects.cache.caches.get(info.qualified)
    current = cache.get(key) if cache is not None else None
    authoritative = current is None
    for _ in range(MAX_RETRIES):
        if current is None:
            current = await objects.get(info, namespace, name)        # 404 if there is no such pod
            authoritative = True
        try:
            new = _bound(info, name, current, node, uid)
        except errors.ApiError:
            if not authoritative:        # the cached copy may be older than the truth: ask etcd
                current = None
                continue
            raise
        try:
            await objects.store.update(key, encode(new), int(current["metadata"]["resourceVersion"]))
            return
        except RevisionMismatchError as exc:
            if exc.current is None:
                raise errors.not_found(info.resource, name, info.group) from None
            current, authoritative = decode(exc.current.value, exc.current.mod_revision), True
    raise errors.conflict(info.resource, name, info.group, "too many concurrent writers")


async def create_eviction(request: web.Request, target: Target) -> web.StreamResponse:
    """Evict a pod (no disruption budgets here): a delete with the Eviction's deleteOptions."""
    assert target.name is not None
    body, _ = await read_object(request)
    opts = body.get("deleteOptions") or {}
    if not isinstance(opts, dict) or not isinstance(opts.get("preconditions") or {}, dict):
        raise errors.BadRequest("deleteOptions must be a DeleteOptions object")
    grace = opts.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise errors.BadRequest("deleteOptions.gracePeriodSeconds must be an integer")
    policy = opts.get("propagationPolicy")
    if policy is not None and policy not in POLICIES:
        raise errors.invalid("Eviction", target.name, [errors.not_supported("deleteOptions.propagationPolicy", policy,
                                                                            list(POLICIES))], "policy")
    options = DeleteOptions(grace_period_seconds=opts.get("gracePeriodSeconds"), propagation_policy=policy,
                            precondition_uid=(opts.get("preconditions") or {}).get("uid"),
                            precondition_rv=(opts.get("preconditions") or {}).get("resourceVersion"),
                            dry_run=dry_run(request))
    await state(request).objects.delete(target.info, target.namespace, target.name, options)
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
                         status=201)

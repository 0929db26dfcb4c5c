"""Map a REST path and method to its handler: ``/api/v1/...`` and ``/apis/<group>/<version>/...``.

``[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]``, plus the legacy ``watch/`` prefix.
Unknown resources and subresources are 404, verbs a resource does not offer are 405 — always as
``Status`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from aiohttp import web

from kubelite.api import errors
from kubelite.api.resources import RESOURCES, ResourceInfo


@dataclass(frozen=True, slots=True)
class Target:
    info: ResourceInfo
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool = False


_BY_GV: dict[tuple[str, str], dict[str, ResourceInfo]] = {}
for _r in RESOURCES:
    _BY_GV.setdefault((_r.group, _r.version), {})[_r.resource] = _r


def served(group: str, version: str) -> bool:
    return (group, version) in _BY_GV


def _not_found() -> errors.NotFound:
    return errors.NotFound("the server could not find the requested resource", details={})


def parse(group: str, version: str, tail: str) -> Target:
    resources = _BY_GV.get((group, version))
    if resources is None:
        raise _not_found()
    segs = [s for s in tail.split("/")]
    if any(s == "" for s in segs):
        raise _not_found()
    watch_path = False
    if segs and segs[0] == "watch":
        watch_path, segs = True, segs[1:]
    namespace: str | None = None
    if len(segs) >= 3 and segs[0] == "namespaces" and segs[2] in resources and resources[segs[2]].namespaced:
        namespace, segs = segs[1], segs[2:]
    if not segs or segs[0] not in resources or len(segs) > 3:
        raise _not_found()
    info = resources[segs[0]]
    if namespace is not None and not info.namespaced:
        raise _not_found()
    name = segs[1] if len(segs) > 1 else None
    sub = segs[2] if len(segs) > 2 else None
    if sub is not None and info.subresource(sub) is None:
        raise _not_found()
    if info.namespaced and name is not None and namespace is None:
        raise _not_found()
    return Target(info, namespace, name, sub, watch_path)


Handler = Callable[[web.Request, Target], Awaitable[web.StreamResponse]]


def _method_not_allowed(method: str, target: Target) -> errors.MethodNotAllowed:
    what = target.info.qualified + (f"/{target.subresource}" if target.subresource else "")
    return errors.MethodNotAllowed(f"the server does not allow this method on the requested resource ({method} {what})",
                                   details={})


async def dispatch(request: web.Request, group: str, version: str, tail: str) -> web.StreamResponse:
    from apiserver.handlers import create, delete, get, patch, subresources, update, watch

    target = parse(group, version, tail)
    method = request.method
    sub = target.subresource
    handler: Handler | None = None
    if target.watch_path:
        handler = watch.handle_watch if method == "GET" and sub is None else None
    elif method == "GET":
        if target.name is None:
            handler = watch.handle_watch if request.query.get("watch") in ("true", "1") else get.handle_list
        elif sub in (None, "status"):
            handler = get.handle_get
        elif sub == "scale":
            handler = subresources.get_scale
    elif method == "POST":
        if target.name is None:
            handler = create.handle_create
        elif sub == "binding":
            handler = subresources.create_binding
        elif sub == "eviction":
            handler = subresources.create_eviction
    elif method == "PUT" and target.name is not None:
        if sub in (None, "status", "finalize"):
            handler = update.handle_update
        elif sub == "scale":
            handler = subresources.update_scale
    elif method == "PATCH" and target.name is not None:
        if sub in (None, "status"):
            handler = patch.handle_patch
        elif sub == "scale":
            handler = subresources.patch_scale
    elif method == "DELETE" and sub is None:
        handler = delete.handle_delete if target.name is not None else delete.handle_delete_collection
    if handler is None:
        if sub is not None and sub not in ("status", "scale", "binding", "eviction", "finalize"):
            raise errors.NotFound(f"the server could not find the requested resource ({sub} is not served)", details={})
        raise _method_not_allowed(method, target)
    return await handler(request, target)

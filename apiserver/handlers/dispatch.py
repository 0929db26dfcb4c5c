"""Map a REST path and method to its handler: ``/api/v1/...`` and ``/apis/<group>/<version>/...``.

``[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]``, plus the legacy ``watch/`` prefix.
Unknown resources and subresources are 404, verbs a resource does not offer are 405 — always as
``Status`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

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


_HANDLERS: dict[str, Any] = {}


def _handler_modules() -> dict[str, Any]:
    """The handler modules (imported on first use: they import this module)."""
    if not _HANDLERS:
        from apiserver.handlers import create, delete, get, patch, subresources, update, watch
        _HANDLERS.update(create=create, delete=delete, get=get, patch=patch, subresources=subresources,
                         update=update, watch=watch)
    return _HANDLERS


def route(method: str, target: Target, watch_query: bool) -> Handler | None:
    """The handler serving ``method`` on ``target`` (``watch_query``: ``?watch=true``), or None (404/405)."""
    h = _HANDLERS or _handler_modules()
    create, delete, get, patch = h["create"], h["delete"], h["get"], h["patch"]
    subresources, update, watch = h["subresources"], h["update"], h["watch"]
    sub = target.subresource
    if target.watch_path:
        return watch.handle_watch if method == "GET" and sub is None else None
    if method == "GET":
        if target.name is None:
            return watch.handle_watch if watch_query else get.handle_list
        if sub in (None, "status"):
            return get.handle_get
        return subresources.get_scale if sub == "scale" else None
    if method == "POST":
        if target.name is None:
            return create.handle_create
        return {"binding": subresources.create_binding, "eviction": subresources.create_eviction}.get(sub or "")
    if method == "PUT" and target.name is not None:
        if sub in (None, "status", "finalize"):
            return update.handle_update
        return subresources.update_scale if sub == "scale" else None
    if method == "PATCH" and target.name is not None:
        if sub in (None, "status"):
            return patch.handle_patch
        return subresources.patch_scale if sub == "scale" else None
    if method == "DELETE" and sub is None:
        return delete.handle_delete if target.name is not None else delete.handle_delete_collection
    return None


def is_watch(request: web.Request) -> bool:
    return request.query.get("watch") in ("true", "1")


async def dispatch(request: web.Request, group: str, version: str, tail: str) -> web.StreamResponse:
    target = parse(group, version, tail)
    handler = route(request.method, target, is_watch(request))
    if handler is None:
        sub = target.subresource
        if sub is not None and sub not in ("status", "scale", "binding", "eviction", "finalize"):
            raise errors.NotFound(f"the server could not find the requested resource ({sub} is not served)", details={})
        raise _method_not_allowed(request.method, target)
    return await handler(request, target)

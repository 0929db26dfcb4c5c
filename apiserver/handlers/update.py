"""PUT of an object or its status (409 on a stale resourceVersion); namespaces' ``finalize``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from apiserver.handlers.common import check_kind, dry_run, field_manager, json_response, read_object, state, validate_fields
from apiserver.handlers.dispatch import Target
from kubelite.api import errors
from kubelite.api.resources import EVENTS, LEASES

CREATE_ON_UPDATE = (EVENTS, LEASES)


async def handle_update(request: web.Request, target: Target) -> web.StreamResponse:
    info, name = target.info, target.name
    assert name is not None
    obj, raw = await read_object(request)
    check_kind(info, obj)
    obj, warnings = validate_fields(request, info, obj, raw)
    objects = state(request).objects
    if target.subresource == "finalize":
        wanted = list((obj.get("spec") or {}).get("finalizers") or [])
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")

        async def finalize(current: dict[str, Any]) -> dict[str, Any]:
            if rv and rv != current["metadata"].get("resourceVersion"):
                raise errors.conflict(info.resource, name, info.group)
            current.setdefault("spec", {})["finalizers"] = wanted
            return current
        result = await objects.guaranteed_update(info, target.namespace, name, finalize, dry_run=dry_run(request))
        return json_response(result, warnings=warnings)
    result, created = await objects.update(info, target.namespace, name, obj, subresource=target.subresource,
                                           dry_run=dry_run(request), create_missing=info in CREATE_ON_UPDATE,
                                           manager=field_manager(request))
    return json_response(result, status=201 if created else 200, warnings=warnings)

"""POST to a collection: create an object (201), with field validation and dry-run."""

from __future__ import annotations

from aiohttp import web

from apiserver.handlers.common import check_kind, dry_run, field_manager, json_response, read_object, state, validate_fields
from apiserver.handlers.dispatch import Target
from kubelite.api import errors


async def handle_create(request: web.Request, target: Target) -> web.StreamResponse:
    info = target.info
    if info.namespaced and target.namespace is None:
        raise errors.NotFound("the server could not find the requested resource", details={})
    obj, raw = await read_object(request)
    check_kind(info, obj)
    body_ns = (obj.get("metadata") or {}).get("namespace")
    if info.namespaced and body_ns and body_ns != target.namespace:
        raise errors.BadRequest("the namespace of the provided object does not match the namespace sent on the request")
    obj, warnings = validate_fields(request, info, obj, raw)
    created = await state(request).objects.create_json(info, target.namespace, obj, dry_run=dry_run(request),
                                                       manager=field_manager(request))
    return json_response(created, status=201, warnings=warnings)

"""PATCH of an object or its status: JSON merge, JSON patch, strategic merge, server-side apply.

The patch functions are :mod:`kubelite.api.patch`'s; this module reads the body, applies the
patch to the current object inside a conflict-retrying read-modify-write, and lets the generic
update path (strategies, validation, generation, finalizers) do the rest.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from apiserver.handlers.common import (PATCH_TYPES, dry_run, field_manager, json_response, parse_document, query_bool, read_raw,
                                       state, validate_fields)
from apiserver.handlers.dispatch import Target
from kubelite.api import errors
from kubelite.api import patch as patches


def apply_patch_document(kind: str, current: dict[str, Any] | None, doc: Any, request: web.Request,
                         subresource: str | None) -> dict[str, Any]:
    """The object after applying ``doc`` (of media ``kind``) to ``current``."""
    if kind == "application/merge-patch+json":
        if not isinstance(doc, dict):
            raise errors.BadRequest("merge patch: the patch must be a JSON object")
        result = patches.json_merge_patch(current, doc)
    elif kind == "application/json-patch+json":
        result = patches.json_patch(current, doc)
    elif kind == "application/strategic-merge-patch+json":
        result = patches.strategic_merge_patch(current or {}, doc)
    else:
        result = patches.apply_patch(current, doc, request.query.get("fieldManager"), force=query_bool(request, "force"),
                                     subresource=subresource)
    if not isinstance(result, dict):
        raise errors.BadRequest("the patched object is not a JSON object")
    return result


async def handle_patch(request: web.Request, target: Target) -> web.StreamResponse:
    info, name = target.info, target.name
    assert name is not None
    raw, kind = await read_raw(request, PATCH_TYPES)
    doc = parse_document(raw, kind)
    objects = state(request).objects
    warnings: list[str] = []
    is_apply = kind == "application/apply-patch+yaml"
    manager = request.query.get("fieldManager") if is_apply else field_manager(request)

    async def mutate(current: dict[str, Any]) -> dict[str, Any]:
        patched = apply_patch_document(kind, current, doc, request, target.subresource)
        patched, found = validate_fields(request, info, patched, None)
        warnings[:] = found
        return patched

    if is_apply and target.subresource is None:
        try:
            await objects.get(info, target.namespace, name)
        except errors.NotFound:
            obj = apply_patch_document(kind, None, doc, request, None)
            meta = obj.setdefault("metadata", {})
            if meta.get("name") and meta["name"] != name:
                raise errors.BadRequest(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
            meta["name"] = name
            obj, warnings = validate_fields(request, info, obj, None)
            created = await objects.create(info, target.namespace, obj, dry_run=dry_run(request), track_fields=False)
            return json_response(created, status=201, warnings=warnings)
    result = await objects.guaranteed_update(info, target.namespace, name, mutate, subresource=target.subresource,
                                             dry_run=dry_run(request), manager=manager, track_fields=not is_apply)
    return json_response(result, warnings=warnings)

"""GET of one object and LIST of a collection (label/field selectors, limit/continue, Tables)."""

from __future__ import annotations

from aiohttp import web

from apiserver import tables
from apiserver.handlers.common import include_object, json_response, query_int, state, wants_table
from apiserver.handlers.dispatch import Target
from kubelite.api import codec, errors
from kubelite.api.selectors import (FieldSelector, LabelSelector, SelectorError, field_labels, parse_field_selector,
                                    parse_label_selector)


def selectors(request: web.Request, target: Target) -> tuple[LabelSelector, FieldSelector]:
    """The request's ``labelSelector`` and ``fieldSelector`` (400 BadRequest when they do not parse)."""
    try:
        labels = parse_label_selector(request.query.get("labelSelector"))
        fields = parse_field_selector(request.query.get("fieldSelector"), field_labels(target.info.resource))
    except SelectorError as e:
        raise errors.BadRequest(str(e)) from None
    return labels, fields


async def handle_get(request: web.Request, target: Target) -> web.StreamResponse:
    assert target.name is not None
    objects = state(request).objects
    if not wants_table(request):
        body = await objects.get_json(target.info, target.namespace, target.name)
        return web.Response(body=body, content_type="application/json")
    obj = await objects.get(target.info, target.namespace, target.name)
    return json_response(tables.to_table(target.info, [obj], include_object=include_object(request),
                                         list_meta={"resourceVersion": obj["metadata"].get("resourceVersion", "")}))


async def handle_list(request: web.Request, target: Target) -> web.StreamResponse:
    labels, fields = selectors(request, target)
    limit = query_int(request, "limit") or 0
    if limit < 0:
        raise errors.BadRequest("limit must be a non-negative integer")
    table = wants_table(request)
    raw = not table and labels.empty and fields.empty
    result = await state(request).objects.list(
        target.info, target.namespace, labels=labels, fields=fields, limit=limit,
        continue_=request.query.get("continue") or None, resource_version=request.query.get("resourceVersion"),
        raw=raw)
    if table:
        return json_response(tables.to_table(target.info, result["items"], include_object=include_object(request),
                                             list_meta=result["metadata"]))
    if raw:
        items = [i if isinstance(i, bytes) else codec.dumps(i) for i in result["items"]]
        head = codec.dumps({k: v for k, v in result.items() if k != "items"})
        body = b"".join((head[:-1], b',"items":[', b",".join(items), b"]}"))
        return web.Response(body=body, content_type="application/json")
    return json_response(result)

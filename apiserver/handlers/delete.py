"""DELETE of one object (DeleteOptions from the body or the query) and DELETE of a collection."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from apiserver.handlers.common import (BODY_TYPES, dry_run, json_response, parse_document, query_int, read_raw, state)
from apiserver.handlers.dispatch import Target
from apiserver.handlers.get import selectors
from apiserver.objects import DeleteOptions
from kubelite.api import errors

POLICIES = ("Orphan", "Background", "Foreground")


async def delete_options(request: web.Request) -> DeleteOptions:
    """DeleteOptions from a JSON body (kubectl) and/or query parameters."""
    body: dict[str, Any] = {}
    if request.can_read_body:
        raw, ctype = await read_raw(request, BODY_TYPES)
        if raw.strip():
            parsed = parse_document(raw, ctype)
            if not isinstance(parsed, dict):
                raise errors.BadRequest("DeleteOptions must be a JSON object")
            body = parsed
    grace = body.get("gracePeriodSeconds")
    if grace is None:
        grace = query_int(request, "gracePeriodSeconds")
    if grace is not None and not isinstance(grace, int):
        raise errors.BadRequest("gracePeriodSeconds must be an integer")
    policy = body.get("propagationPolicy") or request.query.get("propagationPolicy")
    orphan = body.get("orphanDependents", request.query.get("orphanDependents"))
    if policy is None and orphan is not None:
        policy = "Orphan" if orphan in (True, "true") else "Background"
    if policy is not None and policy not in POLICIES:
        raise errors.invalid("DeleteOptions", "", [errors.not_supported("propagationPolicy", policy, list(POLICIES))])
    pre = body.get("preconditions") or {}
    if not isinstance(pre, dict):
        raise errors.BadRequest("preconditions must be an object")
    dry = dry_run(request) or body.get("dryRun") == ["All"]
    return DeleteOptions(grace_period_seconds=grace, propagation_policy=policy,
                         precondition_uid=pre.get("uid"), precondition_rv=pre.get("resourceVersion"), dry_run=dry)


async def handle_delete(request: web.Request, target: Target) -> web.StreamResponse:
    assert target.name is not None
    options = await delete_options(request)
    obj, _ = await state(request).objects.delete(target.info, target.namespace, target.name, options)
    return json_response(obj)


async def handle_delete_collection(request: web.Request, target: Target) -> web.StreamResponse:
    info = target.info
    if "deletecollection" not in info.verbs:
        raise errors.MethodNotAllowed(f"the server does not allow this method on the requested resource "
                                      f"(DELETE {info.qualified})", details={})
    labels, fields = selectors(request, target)
    options = await delete_options(request)
    objects = state(request).objects
    listed = await objects.list(info, target.namespace, labels=labels, fields=fields)
    items = []
    for obj in listed["items"]:
        meta = obj["metadata"]
        try:
            deleted, _ = await objects.delete(info, meta.get("namespace"), meta["name"], options)
        except errors.NotFound:
            continue
        items.append(deleted)
    return json_response({"kind": info.list_kind, "apiVersion": info.api_version,
                          "metadata": {"resourceVersion": listed["metadata"]["resourceVersion"]}, "items": items})

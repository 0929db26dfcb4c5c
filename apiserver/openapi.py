"""OpenAPI documents kubectl asks for: ``/openapi/v2`` (empty) and ``/openapi/v3[/<group-version>]``.

v2 is a 200 with an empty protobuf body (kubectl-wire.md §2). v3 is built per group/version from
Kubernetes' own schemas (PyPI ``kubernetes-validate``): components for every definition the served
kinds reach (``$ref`` to ``#/components/schemas/``, list-valued ``x-kubernetes-group-version-kind``),
and paths for our resources carrying the GVK and a ``fieldValidation`` parameter, so ``kubectl
explain`` works and ``kubectl apply/create`` send ``fieldValidation=Strict``. No strategic-merge
request bodies: kubectl then computes patches from its compiled-in types. Documents are built once,
off the event loop, and served with a content hash (``?hash=``, ETag).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from typing import Any

import orjson
from aiohttp import web

from kubelite import KUBERNETES_VERSION
from kubelite.api import schema
from kubelite.api.resources import RESOURCES, ResourceInfo, group_versions

KUBE_VERSION = KUBERNETES_VERSION
_REF = "#/$defs/"


def gv_key(group: str, version: str) -> str:
    """``api/v1`` or ``apis/apps/v1``: the path segment of a group/version document."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _convert(node: Any, top_level_kind: bool = False) -> Any:
    """JSON-schema 2020-12 → OpenAPI 3.0 as kube-apiserver writes it."""
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "oneOf" in node and all(isinstance(o, dict) and "type" in o for o in node["oneOf"]):
        kinds = {t for o in node["oneOf"] for t in ([o["type"]] if isinstance(o["type"], str) else o["type"])}
        out = {k: _convert(v) for k, v in node.items() if k != "oneOf"}
        out["type"] = "string"
        if "integer" in kinds:
            out["format"] = "int-or-string"
        return out
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(_REF):
            ref = "#/components/schemas/" + value[len(_REF):]
            if len(node) == 1:
                return {"$ref": ref}
            out["allOf"] = [{"$ref": ref}]
        elif key == "type":
            types = [value] if isinstance(value, str) else [t for t in value if t != "null"]
            if types:
                out["type"] = types[0]
        elif key == "properties" and isinstance(value, dict):
            props = {}
            for name, sub in value.items():
                sub = _convert(sub)
                if top_level_kind and name in ("apiVersion", "kind") and isinstance(sub, dict):
                    sub.pop("enum", None)
                props[name] = sub
            out["properties"] = props
        elif key == "additionalProperties" or key == "items":
            out[key] = _convert(value)
        else:
            out[key] = _convert(value)
    return out


def _reachable(roots: list[str]) -> list[str]:
    defs = schema.definitions()
    seen: list[str] = []
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen or name not in defs:
            continue
        seen.append(name)

        def walk(n: Any) -> None:
            if isinstance(n, dict):
                ref = n.get("$ref")
                if isinstance(ref, str) and ref.startswith(_REF):
                    stack.append(ref[len(_REF):])
                for v in n.values():
                    walk(v)
            elif isinstance(n, list):
                for v in n:
                    walk(v)
        walk(defs[name])
    return sorted(seen)


def _param(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": kind, "uniqueItems": True}}


_FIELD_VALIDATION = _param("fieldValidation", "fieldValidation instructs the server on how to handle objects in the "
                           "request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: "
                           "Ignore, Warn (default), Strict.")
_FIELD_MANAGER = _param("fieldManager", "fieldManager is a name associated with the actor or entity that is making "
                        "these changes.")
_DRY_RUN = _param("dryRun", "When present, indicates that modifications should not be persisted.")
_FORCE = _param("force", "Force is going to \"force\" Apply requests.", "boolean")


def _op(action: str, gvk: dict[str, str], definition: str | None, params: list[dict[str, Any]],
        op_id: str) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
                          "responses": {"200": {"description": "OK"}, "401": {"description": "Unauthorized"}}}
    if definition:
        op["responses"]["200"]["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{definition}"}}}
    if params:
        op["parameters"] = params
    return op


def _paths_for(info: ResourceInfo) -> dict[str, Any]:
    gvk = {"group": info.group, "version": info.version, "kind": info.kind}
    definition = schema.definition_name(info.api_version, info.kind)
    list_def = schema.definition_name(info.api_version, info.list_kind)
    base = info.prefix + ("/namespaces/{namespace}" if info.namespaced else "") + f"/{info.resource}"
    write = [_FIELD_VALIDATION, _FIELD_MANAGER, _DRY_RUN]
    name = info.kind
    paths: dict[str, Any] = {
        base: {"get": _op("list", gvk, list_def, [], f"list{name}"),
               "post": _op("post", gvk, definition, write, f"create{name}"),
               "delete": _op("deletecollection", gvk, None, [], f"deletecollection{name}")},
        base + "/{name}": {"get": _op("get", gvk, definition, [], f"read{name}"),
                           "put": _op("put", gvk, definition, write, f"replace{name}"),
                           "patch": _op("patch", gvk, definition, write + [_FORCE], f"patch{name}"),
                           "delete": _op("delete", gvk, None, [], f"delete{name}")},
    }
    if info.namespaced:
        paths[f"{info.prefix}/{info.resource}"] = {"get": _op("list", gvk, list_def, [], f"list{name}ForAllNamespaces")}
    for sub in info.subresources:
        if sub.name not in ("status", "scale"):
            continue
        sub_gvk = {"group": sub.group if sub.group is not None else info.group,
                   "version": sub.version or info.version, "kind": sub.kind}
        sub_api = f"{sub_gvk['group']}/{sub_gvk['version']}" if sub_gvk["group"] else sub_gvk["version"]
        sub_def = schema.definition_name(sub_api, sub.kind)
        suffix = sub.name.capitalize()
        paths[f"{base}/{{name}}/{sub.name}"] = {
            "get": _op("get", sub_gvk, sub_def, [], f"read{name}{suffix}"),
            "put": _op("put", sub_gvk, sub_def, write, f"replace{name}{suffix}"),
            "patch": _op("patch", sub_gvk, sub_def, write + [_FORCE], f"patch{name}{suffix}")}
    return paths


@functools.cache
def document(group: str, version: str) -> bytes:
    """The OpenAPI v3 document of one served group/version, as JSON bytes (built once)."""
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    roots: list[str] = []
    paths: dict[str, Any] = {}
    for info in served:
        for kind_def in (schema.definition_name(info.api_version, info.kind),
                         schema.definition_name(info.api_version, info.list_kind)):
            if kind_def:
                roots.append(kind_def)
        for sub in info.subresources:
            if sub.name == "scale":
                scale = schema.definition_name(f"{sub.group}/{sub.version}" if sub.group else info.api_version, sub.kind)
                if scale:
                    roots.append(scale)
        paths.update(_paths_for(info))
    roots += ["io.k8s.apimachinery.pkg.apis.meta.v1.Status", "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]
    defs = schema.definitions()
    components = {name: _convert(defs[name], top_level_kind="x-kubernetes-group-version-kind" in defs[name])
                  for name in _reachable(roots)}
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": KUBE_VERSION}, "paths": paths,
           "components": {"schemas": components}}
    return orjson.dumps(doc)


@functools.cache
def document_hash(group: str, version: str) -> str:
    return hashlib.sha512(document(group, version)).hexdigest().upper()


def _served() -> dict[str, tuple[str, str]]:
    return {gv_key(g, v): (g, v) for g, v in group_versions()}


async def _hashes() -> dict[str, str]:
    loop = asyncio.get_running_loop()
    return {key: await loop.run_in_executor(None, document_hash, g, v) for key, (g, v) in _served().items()}


async def _openapi_v2(request: web.Request) -> web.Response:
    return web.Response(body=b"", content_type="application/octet-stream")


async def _openapi_v3_root(request: web.Request) -> web.Response:
    hashes = await _hashes()
    body = {"paths": {key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={h}"} for key, h in hashes.items()}}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _openapi_v3_gv(request: web.Request) -> web.StreamResponse:
    key = request.match_info["gv"].strip("/")
    gv = _served().get(key)
    if gv is None:
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": 'the server could not find the requested resource', "reason": "NotFound",
                  "details": {}, "code": 404}
        return web.Response(status=404, body=orjson.dumps(status), content_type="application/json")
    loop = asyncio.get_running_loop()
    body = await loop.run_in_executor(None, document, *gv)
    digest = await loop.run_in_executor(None, document_hash, *gv)
    wanted = request.query.get("hash")
    if wanted and wanted != digest:
        raise web.HTTPMovedPermanently(f"/openapi/v3/{key}?hash={digest}")
    headers = {"ETag": f'"{digest}"', "Vary": "Accept",
               "Cache-Control": "public, immutable" if wanted else "no-cache, private"}
    if request.headers.get("If-None-Match") == f'"{digest}"':
        return web.Response(status=304, headers=headers)
    resp = web.Response(body=body, content_type="application/json", headers=headers)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        resp.enable_compression()
    return resp


def add_routes(app: web.Application) -> None:
    app.router.add_get("/openapi/v2", _openapi_v2)
    app.router.add_get("/openapi/v3", _openapi_v3_root)
    app.router.add_get("/openapi/v3/{gv:.+}", _openapi_v3_gv)

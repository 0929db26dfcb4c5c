"""API discovery: aggregated (apidiscovery.k8s.io v2 and v2beta1) and legacy, and ``/version``.

kubectl decides the format by the reply's Content-Type (kubectl-wire.md §1): we answer v2 when
the Accept offers ``v=v2;``, v2beta1 when it offers only that, else the legacy documents.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from apiserver.handlers.dispatch import served
from kubelite import GIT_VERSION
from kubelite.api import codec, errors
from kubelite.api.resources import RESOURCES, ResourceInfo, group_versions

VERSION = {"major": "1", "minor": "32", "gitVersion": GIT_VERSION, "gitCommit": "", "gitTreeState": "clean",
           "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"}

_AGG = "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"


def _negotiate(request: web.Request) -> str | None:
    """``v2``, ``v2beta1`` or None (legacy), from the Accept header."""
    accept = request.headers.get("Accept", "").replace(" ", "")
    for part in accept.split(","):
        params = dict(p.split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList":
            if params.get("v") in ("v2", "v2beta1"):
                return params["v"]
    return None


def _resource_entry(info: ResourceInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": info.resource, "singularResource": info.singular,
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    if info.subresources:
        entry["subresources"] = [{
            "subresource": s.name,
            "responseKind": {"group": s.group if s.group is not None else info.group,
                             "version": s.version or info.version, "kind": s.kind},
            "verbs": list(s.verbs)} for s in info.subresources]
    return entry


def aggregated(core: bool, version: str) -> dict[str, Any]:
    items = []
    for group, ver in group_versions():
        if (group == "") != core:
            continue
        resources = [_resource_entry(r) for r in RESOURCES if r.group == group and r.version == ver]
        items.append({"metadata": {"name": group},
                      "versions": [{"version": ver, "freshness": "Current", "resources": resources}]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}


def _json(obj: Any, content_type: str = "application/json") -> web.Response:
    resp = web.Response(body=codec.dumps(obj))
    resp.headers["Content-Type"] = content_type
    resp.headers["Vary"] = "Accept"
    return resp


async def handle_api(request: web.Request) -> web.Response:
    version = _negotiate(request)
    if version:
        return _json(aggregated(True, version), _AGG.format(v=version))
    host = request.host or "127.0.0.1:6443"
    return _json({"kind": "APIVersions", "versions": ["v1"],
                  "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]})


async def handle_apis(request: web.Request) -> web.Response:
    version = _negotiate(request)
    if version:
        return _json(aggregated(False, version), _AGG.format(v=version))
    groups = []
    for group, ver in group_versions():
        if group:
            gv = {"groupVersion": f"{group}/{ver}", "version": ver}
            groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})


def resource_list(group: str, version: str) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        entry: dict[str, Any] = {"name": r.resource, "singularName": r.singular, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for s in r.subresources:
            sub: dict[str, Any] = {"name": f"{r.resource}/{s.name}", "singularName": "", "namespaced": r.namespaced,
                                   "kind": s.kind, "verbs": list(s.verbs)}
            if s.group is not None:
                sub["group"], sub["version"] = s.group, s.version
            resources.append(sub)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


async def handle_core_v1(request: web.Request) -> web.Response:
    return _json(resource_list("", "v1"))


async def handle_group(request: web.Request) -> web.Response:
    group = request.match_info["group"]
    versions = [v for g, v in group_versions() if g == group]
    if not versions:
        raise errors.NotFound("the server could not find the requested resource", details={})
    gv = {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]}
    return _json({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [gv], "preferredVersion": gv})


async def handle_group_version(request: web.Request) -> web.Response:
    group, version = request.match_info["group"], request.match_info["version"]
    if not served(group, version):
        raise errors.NotFound("the server could not find the requested resource", details={})
    return _json(resource_list(group, version))


async def handle_version(request: web.Request) -> web.Response:
    return _json(VERSION)

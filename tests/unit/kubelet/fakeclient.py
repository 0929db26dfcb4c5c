"""A fake API client for the kubelet's tests: objects in a dict, every write recorded."""

from __future__ import annotations

import copy
from typing import Any

from kubelite.api import errors
from kubelite.api.patch import json_merge_patch


class FakeClient:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.actions: list[tuple[str, str, str, Any]] = []

    def put(self, resource: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.objects[(resource, meta.get("namespace", ""), meta["name"])] = obj

    async def get(self, res: Any, name: str, namespace: str | None = None, **kw: Any) -> Any:
        key = (res.resource, namespace or "", name)
        if key not in self.objects:
            raise errors.not_found(res.resource, name)
        return copy.deepcopy(self.objects[key])

    async def patch(self, res: Any, name: str, body: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None, **kw: Any) -> Any:
        self.actions.append(("patch", res.resource + (f"/{subresource}" if subresource else ""), name,
                             copy.deepcopy(body)))
        key = (res.resource, namespace or "", name)
        if key not in self.objects:
            raise errors.not_found(res.resource, name)
        self.objects[key] = json_merge_patch(self.objects[key], body)
        return copy.deepcopy(self.objects[key])

    async def create(self, res: Any, obj: dict[str, Any], namespace: str | None = None, **kw: Any) -> Any:
        self.actions.append(("create", res.resource, obj["metadata"]["name"], copy.deepcopy(obj)))
        key = (res.resource, namespace or "", obj["metadata"]["name"])
        if key in self.objects:
            raise errors.already_exists(res.resource, obj["metadata"]["name"])
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("uid", f"uid-{obj['metadata']['name']}")
        obj["metadata"]["resourceVersion"] = "1"
        self.objects[key] = obj
        return copy.deepcopy(obj)

    async def update(self, res: Any, obj: dict[str, Any], subresource: str | None = None,
                     namespace: str | None = None, **kw: Any) -> Any:
        self.actions.append(("update", res.resource, obj["metadata"]["name"], copy.deepcopy(obj)))
        key = (res.resource, namespace or "", obj["metadata"]["name"])
        current = self.objects.get(key)
        if current is None:
            raise errors.not_found(res.resource, obj["metadata"]["name"])
        if obj["metadata"].get("resourceVersion") != current["metadata"].get("resourceVersion"):
            raise errors.conflict(res.resource, obj["metadata"]["name"], why="the object has been modified")
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(int(current["metadata"]["resourceVersion"]) + 1)
        self.objects[key] = obj
        return copy.deepcopy(obj)

    async def delete(self, res: Any, name: str, namespace: str | None = None, **kw: Any) -> Any:
        self.actions.append(("delete", res.resource, name, kw))
        key = (res.resource, namespace or "", name)
        if key not in self.objects:
            raise errors.not_found(res.resource, name)
        return self.objects.pop(key)

    def statuses(self, name: str) -> list[dict[str, Any]]:
        return [b["status"] for a, r, n, b in self.actions if a == "patch" and r == "pods/status" and n == name]

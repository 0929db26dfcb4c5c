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

    async def delete(self, res: Any, name: str, namespace: str | None = None, **kw: Any) -> Any:
        self.actions.append(("delete", res.resource, name, kw))
        key = (res.resource, namespace or "", name)
        if key not in self.objects:
            raise errors.not_found(res.resource, name)
        return self.objects.pop(key)

    def statuses(self, name: str) -> list[dict[str, Any]]:
        return [b["status"] for a, r, n, b in self.actions if a == "patch" and r == "pods/status" and n == name]

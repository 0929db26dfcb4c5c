"""In-memory fakes for controller unit tests: a client that records actions (and applies them to a
dict of objects), stores, a queue and a recorder (sample-controller's controller_test.go style)."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from kubelite.api.errors import NotFound

_uid = itertools.count(1)


def _key(res: Any, namespace: str | None, name: str) -> tuple[str, str, str]:
    return (res.resource, namespace or "", name)


class FakeClient:
    """Records (verb, resource[/sub], namespace, name, body) and keeps the objects it was told about."""

    def __init__(self, *objects: tuple[Any, dict]) -> None:
        self.actions: list[tuple[str, str, str, str, Any]] = []
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.fail: dict[str, Exception] = {}      # verb -> exception to raise
        self.fail_after: dict[str, int] = {}      # verb -> succeed this many times first
        self._names = itertools.count(1)
        for res, obj in objects:
            self.put(res, obj)

    def put(self, res: Any, obj: dict) -> None:
        m = obj["metadata"]
        self.objects[_key(res, m.get("namespace"), m["name"])] = obj

    def _maybe_fail(self, verb: str) -> None:
        if verb in self.fail:
            left = self.fail_after.get(verb, 0)
            if left <= 0:
                raise self.fail[verb]
            self.fail_after[verb] = left - 1

    def verbs(self, verb: str | None = None, resource: str | None = None) -> list[tuple]:
        return [a for a in self.actions if (verb is None or a[0] == verb) and (resource is None or a[1] == resource)]

    async def get(self, res, name, namespace=None):
        self.actions.append(("get", res.resource, namespace or "", name, None))
        try:
            return copy.deepcopy(self.objects[_key(res, namespace, name)])
        except KeyError:
            raise NotFound(f'{res.resource} "{name}" not found') from None

    async def list(self, res, namespace=None, **kw):
        return {"items": [copy.deepcopy(o) for (r, ns, _), o in self.objects.items()
                          if r == res.resource and (namespace is None or ns == namespace)]}

    async def create(self, res, obj, namespace=None):
        self._maybe_fail("create")
        obj = copy.deepcopy(obj)
        m = obj["metadata"]
        if not m.get("name"):
            m["name"] = f"{m.get('generateName', 'x-')}{next(self._names):05d}"
        m.setdefault("namespace", namespace) if res.namespaced else None
        m["uid"] = f"uid-{next(_uid)}"
        self.actions.append(("create", res.resource, namespace or "", m["name"], obj))
        self.put(res, obj)
        return copy.deepcopy(obj)

    async def update(self, res, obj, subresource=None):
        self._maybe_fail("update")
        m = obj["metadata"]
        sub = f"{res.resource}/{subresource}" if subresource else res.resource
        self.actions.append(("update", sub, m.get("namespace", ""), m["name"], copy.deepcopy(obj)))
        k = _key(res, m.get("namespace"), m["name"])
        if k not in self.objects:
            raise NotFound(f'{res.resource} "{m["name"]}" not found')
        self.objects[k] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    async def patch(self, res, name, body, namespace=None, patch_type="merge", subresource=None, **kw):
        self._maybe_fail("patch")
        sub = f"{res.resource}/{subresource}" if subresource else res.resource
        self.actions.append(("patch", sub, namespace or "", name, copy.deepcopy(body)))
        k = _key(res, namespace, name)
        if k not in self.objects:
            raise NotFound(f'{res.resource} "{name}" not found')
        obj = self.objects[k]
        _merge(obj, body)
        return copy.deepcopy(obj)

    async def delete(self, res, name, namespace=None, grace_period_seconds=None, propagation_policy=None, **kw):
        self._maybe_fail("delete")
        self.actions.append(("delete", res.resource, namespace or "", name, propagation_policy))
        if self.objects.pop(_key(res, namespace, name), None) is None:
            raise NotFound(f'{res.resource} "{name}" not found')
        return {}

    async def create_subresource(self, res, name, sub, body, namespace=None):
        self._maybe_fail("create_subresource")
        self.actions.append(("create", f"{res.resource}/{sub}", namespace or "", name, body))
        return body


def _merge(target: dict, patch: dict) -> None:
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge(target[k], v)
        else:
            target[k] = copy.deepcopy(v)


class FakeStore:
    def __init__(self, *objs: dict) -> None:
        self.items: dict[str, dict] = {}
        for o in objs:
            self.add(o)

    def add(self, obj: dict) -> None:
        m = obj["metadata"]
        self.items[f"{m['namespace']}/{m['name']}" if m.get("namespace") else m["name"]] = obj

    def remove(self, key: str) -> None:
        self.items.pop(key, None)

    def get(self, key: str):
        return self.items.get(key)

    def list(self):
        return list(self.items.values())


class FakeQueue:
    def __init__(self) -> None:
        self.added: list[str] = []
        self.after: list[tuple[str, float]] = []

    def add(self, key: str) -> None:
        self.added.append(key)

    def add_after(self, key: str, delay: float) -> None:
        self.after.append((key, delay))


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    def event(self, obj, type, reason, message):
        self.events.append((obj["metadata"]["name"], type, reason, message))

    def reasons(self) -> list[str]:
        return [e[2] for e in self.events]

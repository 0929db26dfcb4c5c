"""Garbage collector: an ownerReferences graph over the watched kinds, and the three deletion
propagation policies (kube's ``pkg/controller/garbagecollector``).

* Background: an object whose owners are all gone (absent, or a different uid) is deleted.
* Foreground: an owner with deletionTimestamp and the ``foregroundDeletion`` finalizer gets its
  dependents deleted (foreground too, when they have dependents of their own); the finalizer is
  removed once no dependent with ``blockOwnerDeletion`` remains.
* Orphan: an owner with the ``orphan`` finalizer has its ownerReference removed from every
  dependent, then the finalizer is dropped.

The apiserver adds those finalizers when a delete carries ``propagationPolicy``. The graph is
updated by the informer handlers; work items are keys ``delete:<uid>`` and ``orphan:<uid>``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kubelite.api.errors import ApiError, Conflict, NotFound
from kubelite.api.resources import ResourceInfo, UnknownResource, for_kind
from controllers.base import Obj, Queue

logger = logging.getLogger(__name__)

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


@dataclass(slots=True)
class _Node:
    uid: str
    api_version: str
    kind: str
    namespace: str
    name: str
    owners: list[Obj] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)
    deleting: bool = False
    finalizers: tuple[str, ...] = ()
    observed: bool = True       # False: a "virtual" owner only known from a reference

    @property
    def deleting_dependents(self) -> bool:
        return self.deleting and FOREGROUND in self.finalizers


class GarbageCollector:
    name = "garbagecollector"

    def __init__(self, client: Any, queue: Queue) -> None:
        self.client = client
        self.queue = queue
        self.graph: dict[str, _Node] = {}

    # -- graph building (informer handlers) --------------------------------------------------------------
    def on_add(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return
        node = self.graph.get(uid)
        owners = list(meta.get("ownerReferences") or [])
        if node is None:
            node = self.graph[uid] = _Node(uid, obj.get("apiVersion", ""), obj.get("kind", ""),
                                           meta.get("namespace", ""), meta.get("name", ""))
        elif not node.observed:
            node.observed = True
            node.api_version, node.kind = obj.get("apiVersion", ""), obj.get("kind", "")
            node.namespace, node.name = meta.get("namespace", ""), meta.get("name", "")
        old_owner_uids = {o.get("uid") for o in node.owners}
        new_owner_uids = {o.get("uid") for o in owners}
        for gone in old_owner_uids - new_owner_uids:
            owner = self.graph.get(gone)
            if owner is not None:
                owner.dependents.discard(uid)
                if owner.deleting_dependents:
                    self.queue.add(f"delete:{gone}")
        node.owners = owners
        for ref in owners:
            owner = self.graph.get(ref.get("uid"))
            if owner is None:
                # An owner we have not seen: check it (it may not exist at all).
                owner = self.graph[ref["uid"]] = _Node(ref["uid"], ref.get("apiVersion", ""), ref.get("kind", ""),
                                                       node.namespace, ref.get("name", ""), observed=False)
                self.queue.add(f"delete:{uid}")
            owner.dependents.add(uid)
        node.deleting = bool(meta.get("deletionTimestamp"))
        node.finalizers = tuple(meta.get("finalizers") or ())
        if node.deleting and ORPHAN in node.finalizers:
            self.queue.add(f"orphan:{uid}")
        if node.deleting_dependents:
            self.queue.add(f"delete:{uid}")
            for dep in node.dependents:
                self.queue.add(f"delete:{dep}")
        if any(self._owner_state(ref) != "solid" for ref in owners):
            self.queue.add(f"delete:{uid}")

    def on_update(self, old: Obj, new: Obj) -> None:
        self.on_add(new)

    def on_delete(self, obj: Obj) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        node = self.graph.get(uid) if uid else None
        if node is None:
            return
        for ref in node.owners:
            owner = self.graph.get(ref.get("uid"))
            if owner is not None:
                owner.dependents.discard(uid)
                if owner.deleting_dependents:
                    self.queue.add(f"delete:{owner.uid}")
                if not owner.observed and not owner.dependents:
                    del self.graph[owner.uid]
        for dep in node.dependents:
            self.queue.add(f"delete:{dep}")
        if node.dependents:
            # keep a virtual node so dependents can find out their owner is gone
            node.observed = False
            node.owners = []
            node.deleting = False
        else:
            del self.graph[uid]

    def _owner_state(self, ref: Obj) -> str:
        """"solid", "waiting" (foreground-deleting) or "unknown" (not observed: ask the API)."""
        owner = self.graph.get(ref.get("uid"))
        if owner is None or not owner.observed:
            return "unknown"
        return "waiting" if owner.deleting_dependents else "solid"

    # -- sync ----------------------------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        verb, _, uid = key.partition(":")
        node = self.graph.get(uid)
        if node is None or not node.observed:
            return
        if verb == "orphan":
            await self._orphan(node)
        else:
            await self._attempt_to_delete(node)

    def _resource(self, node_or_ref: Any) -> ResourceInfo | None:
        api_version = node_or_ref.api_version if isinstance(node_or_ref, _Node) else node_or_ref.get("apiVersion", "")
        kind = node_or_ref.kind if isinstance(node_or_ref, _Node) else node_or_ref.get("kind", "")
        try:
            return for_kind(api_version, kind)
        except UnknownResource:
            return None

    async def _live(self, node: _Node) -> Obj | None:
        res = self._resource(node)
        if res is None:
            return None
        try:
            obj = await self.client.get(res, node.name, namespace=node.namespace if res.namespaced else None)
        except NotFound:
            return None
        return obj if obj["metadata"].get("uid") == node.uid else None

    async def _owner_exists(self, ref: Obj, namespace: str) -> tuple[bool, bool]:
        """(exists, waiting for its dependents) — through the graph, else a live GET."""
        state = self._owner_state(ref)
        if state == "solid":
            return True, False
        if state == "waiting":
            return True, True
        res = self._resource(ref)
        if res is None:
            return True, False   # a kind we cannot check: never collect on a guess
        try:
            owner = await self.client.get(res, ref.get("name", ""), namespace=namespace if res.namespaced else None)
        except NotFound:
            return False, False
        if owner["metadata"].get("uid") != ref.get("uid"):
            return False, False
        meta = owner["metadata"]
        return True, bool(meta.get("deletionTimestamp")) and FOREGROUND in (meta.get("finalizers") or ())

    async def _attempt_to_delete(self, node: _Node) -> None:
        if node.deleting_dependents:
            await self._process_deleting_dependents(node)
            return
        live = await self._live(node)
        if live is None:
            return
        if live["metadata"].get("deletionTimestamp") and FOREGROUND not in (live["metadata"].get("finalizers") or ()):
            return
        owners = list(live["metadata"].get("ownerReferences") or [])
        if not owners:
            return
        solid, dangling, waiting = [], [], []
        for ref in owners:
            exists, is_waiting = await self._owner_exists(ref, node.namespace)
            if not exists:
                dangling.append(ref)
            elif is_waiting:
                waiting.append(ref)
            else:
                solid.append(ref)
        if solid:
            if dangling or waiting:
                keep = [r for r in owners if r in solid]
                await self._patch_owners(node, live, keep)
            return
        if waiting and node.dependents:
            policy = "Foreground"
        elif ORPHAN in (live["metadata"].get("finalizers") or ()):
            policy = "Orphan"
        elif FOREGROUND in (live["metadata"].get("finalizers") or ()):
            policy = "Foreground"
        else:
            policy = "Background"
        res = self._resource(node)
        assert res is not None
        logger.info("deleting %s %s/%s (owners gone), propagationPolicy=%s", node.kind, node.namespace, node.name, policy)
        try:
            await self.client.delete(res, node.name, namespace=node.namespace if res.namespaced else None,
                                     propagation_policy=policy)
        except NotFound:
            pass

    async def _process_deleting_dependents(self, node: _Node) -> None:
        blocking = []
        for dep_uid in list(node.dependents):
            dep = self.graph.get(dep_uid)
            if dep is None or not dep.observed:
                continue
            ref = next((r for r in dep.owners if r.get("uid") == node.uid), None)
            if ref is not None and ref.get("blockOwnerDeletion"):
                blocking.append(dep)
            if not dep.deleting:
                self.queue.add(f"delete:{dep_uid}")
        if not blocking:
            await self._remove_finalizer(node, FOREGROUND)

    async def _orphan(self, node: _Node) -> None:
        for dep_uid in list(node.dependents):
            dep = self.graph.get(dep_uid)
            if dep is None or not dep.observed:
                continue
            live = await self._live(dep)
            if live is None:
                continue
            keep = [r for r in live["metadata"].get("ownerReferences") or [] if r.get("uid") != node.uid]
            await self._patch_owners(dep, live, keep)
        await self._remove_finalizer(node, ORPHAN)

    async def _patch_owners(self, node: _Node, live: Obj, refs: list[Obj]) -> None:
        res = self._resource(node)
        assert res is not None
        body = {"metadata": {"ownerReferences": refs or None, "uid": node.uid,
                             "resourceVersion": live["metadata"].get("resourceVersion")}}
        try:
            await self.client.patch(res, node.name, body, namespace=node.namespace if res.namespaced else None,
                                    patch_type="merge")
        except NotFound:
            pass

    async def _remove_finalizer(self, node: _Node, finalizer: str) -> None:
        res = self._resource(node)
        if res is None:
            return
        for _ in range(3):
            live = await self._live(node)
            if live is None or finalizer not in (live["metadata"].get("finalizers") or ()):
                return
            rest = [f for f in live["metadata"]["finalizers"] if f != finalizer]
            body = {"metadata": {"finalizers": rest or None, "uid": node.uid,
                                 "resourceVersion": live["metadata"].get("resourceVersion")}}
            try:
                await self.client.patch(res, node.name, body, namespace=node.namespace if res.namespaced else None,
                                        patch_type="merge")
                return
            except Conflict:
                continue
            except (NotFound, ApiError):
                return

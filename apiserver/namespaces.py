"""Namespace lifecycle inside the apiserver: the system namespaces exist; terminating ones empty out.

A deleted namespace is ``Terminating`` (deletionTimestamp, ``spec.finalizers: [kubernetes]``);
this loop deletes every namespaced object in it (pods gracefully, as the namespace controller of
kube-controller-manager does), and once nothing is left it removes the ``kubernetes`` finalizer,
which lets the namespace itself go.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from apiserver.objects import SYSTEM_NAMESPACES, DeleteOptions, Objects
from apiserver.storage import StorageError
from kubelite.api import errors
from kubelite.api.resources import NAMESPACES, RESOURCES
from kubelite.api.selectors import FieldSelector, LabelSelector

logger = logging.getLogger(__name__)


async def ensure_system_namespaces(objects: Objects) -> None:
    """Create default, kube-system, kube-public and kube-node-lease if missing."""
    for name in SYSTEM_NAMESPACES:
        try:
            await objects.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": name},
                                                    "spec": {"finalizers": ["kubernetes"]}})
            logger.info("created namespace %s", name)
        except errors.AlreadyExists:
            pass


async def _drain(objects: Objects, namespace: str) -> bool:
    """Delete what is left in ``namespace``; True when nothing is left."""
    empty = True
    for info in RESOURCES:
        if not info.namespaced:
            continue
        listed = await objects.list(info, namespace, labels=LabelSelector(), fields=FieldSelector())
        for obj in listed["items"]:
            empty = False
            if obj["metadata"].get("deletionTimestamp"):
                continue
            try:
                await objects.delete(info, namespace, obj["metadata"]["name"], DeleteOptions(propagation_policy="Background"))
            except (errors.NotFound, errors.Conflict):
                pass
    return empty


async def _finalize(objects: Objects, ns: dict[str, Any]) -> None:
    name = ns["metadata"]["name"]
    if not await _drain(objects, name):
        return

    async def drop_finalizer(current: dict[str, Any]) -> dict[str, Any]:
        spec = current.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != "kubernetes"]
        return current
    try:
        await objects.guaranteed_update(NAMESPACES, None, name, drop_finalizer, binding=True)
        logger.info("namespace %s is empty; finalized", name)
    except errors.NotFound:
        pass


async def run_namespace_finalizer(objects: Objects, interval: float = 0.5) -> None:
    """Forever: empty and finalize every terminating namespace (level-triggered, polls the cache)."""
    cache = objects.cache.for_resource(NAMESPACES)
    await cache.ready.wait()
    while True:
        terminating = [ns for _, ns in cache.items() if ns["metadata"].get("deletionTimestamp")]
        for ns in terminating:
            try:
                await _finalize(objects, ns)
            except (StorageError, errors.ApiError) as e:
                logger.warning("finalizing namespace %s: %s", ns["metadata"].get("name"), e)
        await asyncio.sleep(interval)

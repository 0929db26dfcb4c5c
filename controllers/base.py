"""What every controller here is built from: the store and queue Protocols it reads and feeds, and
the recorder it reports through. Shapes of ``kubelite.informer`` / ``kubelite.workqueue`` /
``kubelite.events`` so controllers stay testable with in-memory fakes."""

from __future__ import annotations

import inspect
import logging
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Obj = dict[str, Any]


class Store(Protocol):
    def get(self, key: str) -> Obj | None: ...

    def list(self) -> list[Obj]: ...


class Queue(Protocol):
    def add(self, key: str) -> None: ...

    def add_after(self, key: str, delay: float) -> None: ...


class Recorder(Protocol):
    def event(self, obj: Obj, type: str, reason: str, message: str) -> Any: ...


async def record(recorder: Recorder | None, obj: Obj, type: str, reason: str, message: str) -> None:
    """Emit an Event; works with a sync or async recorder; never fails the caller."""
    if recorder is None:
        return
    try:
        result = recorder.event(obj, type, reason, message)
        if inspect.isawaitable(result):
            await result
    except Exception:  # an Event is best effort, as in client-go
        logger.exception("recording event %s for %s", reason, (obj.get("metadata") or {}).get("name"))


def in_namespace(store: Store, namespace: str) -> list[Obj]:
    """Objects of one namespace, through a ``namespace`` index when the store has one."""
    by_index = getattr(store, "by_index", None)
    if by_index is not None:
        try:
            return list(by_index("namespace", namespace))
        except (KeyError, ValueError):
            pass
    return [o for o in store.list() if (o.get("metadata") or {}).get("namespace") == namespace]


def on_node(store: Store, node_name: str) -> list[Obj]:
    """Pods bound to one node, through a ``nodeName`` index when the store has one."""
    by_index = getattr(store, "by_index", None)
    if by_index is not None:
        try:
            return list(by_index("nodeName", node_name))
        except (KeyError, ValueError):
            pass
    return [p for p in store.list() if (p.get("spec") or {}).get("nodeName") == node_name]

"""The status manager: the only writer of pod status (Kubernetes' ``status/status_manager.go``).

``set_pod_status`` never blocks: it records the newest status for the pod (with a local version) and
marks it dirty; the writer patches ``pods/<name>/status`` for dirty pods, oldest first, a few pods at once
(one write per pod at a time), so a burst of updates becomes one write with the newest status and a burst
of pods does not queue behind one round trip at a time. A status computed earlier never overwrites a later one (the
version is checked after the write too), a pod that reached Succeeded/Failed stays there, and writes
that would change nothing are skipped. Once a deleting pod's containers are all stopped and its final
status is written, it deletes the pod object with grace period 0 (uid precondition).
"""

from __future__ import annotations

import asyncio
import time
import logging
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from kubelite.api.errors import ApiError, Conflict, NotFound
from kubelite.api.resources import PODS

logger = logging.getLogger(__name__)
TERMINAL = ("Succeeded", "Failed")
WRITERS = 4          # pods whose status is being written at once


class PodClient(Protocol):
    async def patch(self, res: Any, name: str, body: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None, **kw: Any) -> Any: ...
    async def delete(self, res: Any, name: str, namespace: str | None = None, **kw: Any) -> Any: ...


@dataclass
class _Entry:
    namespace: str
    name: str
    uid: str
    status: dict[str, Any]
    version: int
    delete_when_written: bool = False


def _comparable(status: Mapping[str, Any]) -> Any:
    """A status without the volatile bits (probe times), for "would this write change anything". Shares
    the rest with ``status`` (statuses are computed afresh on every sync and never changed in place);
    a deep copy cost more than the rest of a pod's status handling."""
    conds = status.get("conditions")
    if not conds:
        return dict(status)
    return {**status, "conditions": [{k: v for k, v in c.items() if k != "lastProbeTime"} for c in conds]}


class StatusManager:
    def __init__(self, client: PodClient, *, retry: float = 1.0, writers: int = WRITERS) -> None:
        self.client = client
        self.retry = retry
        self.writers = writers
        self._entries: dict[str, _Entry] = {}
        self._written: dict[str, tuple[int, Any]] = {}     # uid → (version, comparable status) on the server
        self._dirty: dict[str, None] = {}                  # uids to write, oldest first
        self._inflight: set[str] = set()
        self._wake = asyncio.Event()
        self._version = 0
        self.writes = 0
        self.deleted: set[str] = set()
        self.running_written: dict[str, float] = {}       # uid → when a Running status was first written

    def set_pod_status(self, pod: Mapping[str, Any], status: dict[str, Any], *, delete: bool = False) -> None:
        """Record ``status`` as the pod's newest; ``delete``: remove the pod object once it is written."""
        meta = pod.get("metadata") or {}
        uid = meta.get("uid", "")
        old = self._entries.get(uid)
        server_phase = (pod.get("status") or {}).get("phase")
        if (old is not None and old.status.get("phase") in TERMINAL) or server_phase in TERMINAL:
            phase = old.status.get("phase") if old is not None and old.status.get("phase") in TERMINAL \
                else server_phase
            if status.get("phase") != phase:
                status = dict(status, phase=phase)
        self._version += 1
        self._entries[uid] = _Entry(meta.get("namespace", "default"), meta.get("name", ""), uid, status,
                                    self._version, delete)
        written = self._written.get(uid)
        server = _comparable(pod.get("status") or {})
        if not delete and (written is not None and written[1] == _comparable(status)
                           or written is None and server == _comparable(status)):
            return
        self._dirty.setdefault(uid)
        self._wake.set()

    def get(self, uid: str) -> dict[str, Any] | None:
        e = self._entries.get(uid)
        return e.status if e is not None else None

    def forget(self, uid: str) -> None:
        self.running_written.pop(uid, None)
        self._entries.pop(uid, None)
        self._written.pop(uid, None)
        self._dirty.pop(uid, None)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            while True:
                await self._wake.wait()
                self._wake.clear()
                for uid in list(self._dirty):
                    if len(self._inflight) >= self.writers:
                        break
                    if uid not in self._inflight:
                        del self._dirty[uid]
                        self._inflight.add(uid)
                        tg.create_task(self._write_one(uid))

    async def _write_one(self, uid: str) -> None:
        try:
            ok = await self._write(uid)
        except asyncio.CancelledError:
            self._dirty.setdefault(uid)                # stopping: flush() writes it
            raise
        finally:
            self._inflight.discard(uid)
            self._wake.set()
        if not ok:
            await asyncio.sleep(self.retry)
            self._dirty.setdefault(uid)
            self._wake.set()

    async def flush(self) -> None:
        """Write everything dirty now (tests, shutdown)."""
        for uid in list(self._dirty):
            self._dirty.pop(uid, None)
            if not await self._write(uid):
                self._dirty.setdefault(uid)

    async def _write(self, uid: str) -> bool:
        entry = self._entries.get(uid)
        if entry is None:
            return True
        body = {"metadata": {"uid": entry.uid}, "status": entry.status}
        try:
            written = self._written.get(uid)
            if written is None or written[0] < entry.version:
                if written is None or written[1] != _comparable(entry.status):
                    await self.client.patch(PODS, entry.name, body, entry.namespace, patch_type="merge",
                                            subresource="status")
                    self.writes += 1
                    if entry.status.get("phase") == "Running":
                        self.running_written.setdefault(uid, time.time())
                self._written[uid] = (entry.version, _comparable(entry.status))
            if entry.delete_when_written and uid not in self.deleted:
                await self.client.delete(PODS, entry.name, entry.namespace, grace_period_seconds=0)
                self.deleted.add(uid)
        except NotFound:
            self.forget(uid)
            return True
        except Conflict as exc:
            logger.info("status of %s/%s: %s", entry.namespace, entry.name, exc)
            return False
        except ApiError as exc:
            logger.warning("status of %s/%s not written: %s", entry.namespace, entry.name, exc)
            return False
        except Exception:                                   # the writer's loop boundary
            logger.exception("status of %s/%s not written", entry.namespace, entry.name)
            return False
        # a newer status may have arrived while the write was in flight: it stays dirty
        current = self._entries.get(uid)
        if current is not None and current.version > entry.version:
            self._dirty.setdefault(uid)
            self._wake.set()
        return True

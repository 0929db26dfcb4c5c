"""An in-memory :class:`~apiserver.storage.Store` with etcd's revision semantics, for unit tests.

Keeps every version of every key (MVCC) until :meth:`compact`, so lists at a past revision and
watches from a past revision behave as on etcd.
"""

from __future__ import annotations

import asyncio
import bisect
from typing import AsyncIterator

from apiserver.storage import (CompactedError, KeyExistsError, KeyNotFoundError, KeyValue, ListResult,
                               RevisionMismatchError, WatchEvent)


class MemoryStore:
    """Single-process store; all methods are coroutines to match the etcd store."""

    def __init__(self) -> None:
        self._revision = 1           # etcd starts at revision 1 with an empty store
        self._compacted = 0
        self._versions: dict[str, list[tuple[int, KeyValue | None]]] = {}
        self._keys: list[str] = []   # sorted
        self._history: list[WatchEvent] = []
        self._changed = asyncio.Condition()

    def _current(self, key: str) -> KeyValue | None:
        versions = self._versions.get(key)
        return versions[-1][1] if versions else None

    async def get(self, key: str) -> KeyValue | None:
        return self._current(key)

    async def list(self, prefix: str, *, start: str | None = None, limit: int = 0,
                   revision: int = 0) -> ListResult:
        if revision and revision < self._compacted:
            raise CompactedError(revision, self._compacted)
        at = revision or self._revision
        lo = bisect.bisect_left(self._keys, start if start is not None and start > prefix else prefix)
        kvs: list[KeyValue] = []
        more = False
        for key in self._keys[lo:]:
            if not key.startswith(prefix):
                break
            kv = None
            for rev, value in reversed(self._versions[key]):
                if rev <= at:
                    kv = value
                    break
            if kv is None:
                continue
            if limit and len(kvs) == limit:
                more = True
                break
            kvs.append(kv)
        return ListResult(kvs, at, more)

    async def _commit(self, key: str, kv: KeyValue | None, prev: KeyValue | None) -> int:
        if key not in self._versions:
            bisect.insort(self._keys, key)
            self._versions[key] = []
        self._versions[key].append((self._revision, kv))
        self._history.append(WatchEvent("PUT" if kv else "DELETE", key, kv.value if kv else None,
                                        prev.value if prev else None, self._revision))
        async with self._changed:
            self._changed.notify_all()
        return self._revision

    async def create(self, key: str, value: bytes) -> int:
        prev = self._current(key)
        if prev is not None:
            raise KeyExistsError(key)
        self._revision += 1
        return await self._commit(key, KeyValue(key, value, self._revision, self._revision), None)

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        prev = self._current(key)
        if prev is None or prev.mod_revision != expected_revision:
            raise RevisionMismatchError(key, prev)
        self._revision += 1
        return await self._commit(key, KeyValue(key, value, self._revision, prev.create_revision), prev)

    async def delete(self, key: str, expected_revision: int) -> int:
        prev = self._current(key)
        if prev is None:
            raise KeyNotFoundError(key)
        if expected_revision and prev.mod_revision != expected_revision:
            raise RevisionMismatchError(key, prev)
        self._revision += 1
        return await self._commit(key, None, prev)

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        if start_revision and start_revision < self._compacted:
            raise CompactedError(start_revision, self._compacted)
        next_rev = start_revision or self._revision + 1
        while True:
            i = bisect.bisect_left(self._history, next_rev, key=lambda e: e.revision)
            pending = [e for e in self._history[i:] if e.key.startswith(prefix)]
            for event in pending:
                yield event
            if self._history:
                next_rev = max(next_rev, self._history[-1].revision + 1)
            async with self._changed:
                await self._changed.wait_for(lambda: bool(self._history) and self._history[-1].revision >= next_rev)

    async def current_revision(self) -> int:
        return self._revision

    async def compact(self, revision: int) -> None:
        if revision <= self._compacted:
            return
        self._compacted = revision
        self._history = [e for e in self._history if e.revision >= revision]
        for key in list(self._versions):
            versions = self._versions[key]
            keep = [v for v in versions if v[0] > revision]
            older = [v for v in versions if v[0] <= revision]  # the newest of these stays visible at `revision`
            if older and older[-1][1] is not None:
                keep.insert(0, older[-1])
            if keep:
                self._versions[key] = keep
            else:
                del self._versions[key]
                self._keys.remove(key)

    async def close(self) -> None:
        return None

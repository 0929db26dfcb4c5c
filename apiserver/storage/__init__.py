"""Storage of API objects: the only package that talks to etcd (and a memory store for unit tests).

The apiserver sees one small :class:`Store` Protocol over a flat key space of ``str`` keys and
``bytes`` values with etcd's revision semantics: every write bumps one global revision, a key's
``mod_revision`` is the object's resourceVersion, writes are conditional on it, history can be
watched from any revision not yet compacted. ``etcd.EtcdStore`` (etcd's gRPC stubs) and
``memory.MemoryStore`` implement it.

Errors::

    StorageError
    ├── KeyExistsError        create of a key that exists
    ├── KeyNotFoundError      update/delete of a key that is gone
    ├── RevisionMismatchError update/delete whose expected mod_revision is stale (``.current``)
    ├── CompactedError        list/watch at a revision that was compacted (→ 410 Gone)
    └── UnavailableError      the backend cannot be reached (→ 503)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Literal, Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class ListResult:
    kvs: list[KeyValue]
    revision: int          # the store revision the page was read at
    more: bool             # more keys follow the last one in ``kvs``


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: Literal["PUT", "DELETE"]
    key: str
    value: bytes | None        # None for DELETE
    prev_value: bytes | None   # the value before the event (None for a create)
    revision: int              # the event's mod_revision


class StorageError(Exception):
    """Root of storage failures."""


class KeyExistsError(StorageError):
    pass


class KeyNotFoundError(StorageError):
    pass


class RevisionMismatchError(StorageError):
    def __init__(self, key: str, current: KeyValue | None) -> None:
        super().__init__(f"{key}: revision mismatch")
        self.current = current


class CompactedError(StorageError):
    def __init__(self, revision: int, compacted: int) -> None:
        super().__init__(f"revision {revision} has been compacted (compacted up to {compacted})")
        self.revision = revision
        self.compacted = compacted


class UnavailableError(StorageError):
    pass


def prefix_end(prefix: str) -> str:
    """The smallest key greater than every key starting with ``prefix`` (etcd's range_end)."""
    b = bytearray(prefix.encode())
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return b.decode("utf-8", errors="surrogateescape")
        b.pop()
    return "\0"


class Store(Protocol):
    """What the apiserver needs from a key-value store with revisions."""

    async def get(self, key: str) -> KeyValue | None:
        """The current value of ``key``, or None."""
        ...

    async def list(self, prefix: str, *, start: str | None = None, limit: int = 0,
                   revision: int = 0) -> ListResult:
        """Keys under ``prefix`` from ``start`` (inclusive) in key order, at ``revision`` (0: now).

        Raises:
            CompactedError: ``revision`` is older than the last compaction.
        """
        ...

    async def create(self, key: str, value: bytes) -> int:
        """Store ``key`` if absent; returns the new revision. Raises KeyExistsError."""
        ...

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        """Replace ``key`` if its mod_revision is ``expected_revision``; returns the new revision.

        Raises:
            RevisionMismatchError: carrying the current value (None when the key is gone).
        """
        ...

    async def delete(self, key: str, expected_revision: int) -> int:
        """Delete ``key`` if its mod_revision is ``expected_revision`` (0: unconditionally).

        Raises:
            RevisionMismatchError / KeyNotFoundError.
        """
        ...

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        """Every change under ``prefix`` with revision ≥ ``start_revision``, then live ones.

        Raises (from the iterator): CompactedError when ``start_revision`` is compacted.
        """
        ...

    async def current_revision(self) -> int:
        ...

    async def compact(self, revision: int) -> None:
        ...

    async def close(self) -> None:
        ...

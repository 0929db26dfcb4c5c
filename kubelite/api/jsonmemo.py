"""A bounded memo for pure functions of a JSON value, keyed by the value's encoding.

The pods of one ReplicaSet (and of a Deployment's rollout, a Job, a benchmark) carry the same spec:
the apiserver's walks over a spec — unknown-field and type checks, validation, the managedFields
tree — give the same answer for each. :class:`JsonMemo` keeps that answer under the spec's compact
JSON bytes (orjson: one C call), so a repeat costs an encoding and a dict lookup. Only pure
functions of the value belong here; callers must not mutate what they get back (copy it).
"""

from __future__ import annotations

from typing import Generic, TypeVar

import orjson

T = TypeVar("T")


class JsonMemo(Generic[T]):
    """``key(value)`` → bytes; ``get``/``put`` answers under that key; the oldest entry goes first
    once ``size`` entries are held."""

    __slots__ = ("size", "entries")

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.entries: dict[tuple[object, bytes], T] = {}

    @staticmethod
    def key(value: object) -> bytes | None:
        """The JSON bytes of ``value``, or None when it does not encode (non-str keys, odd types)."""
        try:
            return orjson.dumps(value)
        except TypeError:
            return None

    def get(self, scope: object, key: bytes) -> T | None:
        return self.entries.get((scope, key))

    def put(self, scope: object, key: bytes, answer: T) -> None:
        entries = self.entries
        if len(entries) >= self.size:
            del entries[next(iter(entries))]
        entries[(scope, compact(key))] = answer


def compact(data: bytes) -> bytes:
    """``data`` in an allocation of its own size: orjson's output keeps a buffer of at least 4 KiB
    behind even a short value, which a long-lived entry would hold (and churn) for nothing."""
    return bytes(memoryview(data))

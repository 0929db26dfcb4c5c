"""The etcd v3 :class:`~apiserver.storage.Store`: etcd's protobuf messages (``aetcd.rpc``) over :mod:`.h2grpc`.

See shared docs/etcd.md §4-5 for the client choice (aetcd 1.0.0 on grpc.aio). Its messages are
kept, the transport is :mod:`apiserver.storage.h2grpc`: grpc.aio's threads and hand-offs cost
0.1-0.3 ms of CPU per call, most of the apiserver's CPU per pod create on 2 cores.

* one HTTP/2 connection (re-opened on demand) to the current endpoint;
* lists are paged ``Range`` calls (limit + pinned revision); grpc ``OUT_OF_RANGE`` means "compacted";
* create = txn(version == 0), update/delete = txn(mod_revision == rv);
* each watch is its own ``Watch`` stream (``prev_kv``); when it breaks it is re-created from the
  last delivered event's mod_revision + 1 (never from a response header's revision, which can skip
  a backlog); a compacted start revision becomes :class:`CompactedError`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, NoReturn
from urllib.parse import urlsplit

from aetcd import rpc

from apiserver.storage import (CompactedError, KeyExistsError, KeyNotFoundError, KeyValue, ListResult,
                               RevisionMismatchError, UnavailableError, WatchEvent, prefix_end)
from apiserver.storage.h2grpc import DEADLINE_EXCEEDED, OUT_OF_RANGE, UNAVAILABLE, Channel, RpcError

logger = logging.getLogger(__name__)

RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)
_UNAVAILABLE = (UNAVAILABLE, DEADLINE_EXCEEDED)
_RANGE, _TXN, _COMPACT = "/etcdserverpb.KV/Range", "/etcdserverpb.KV/Txn", "/etcdserverpb.KV/Compact"
_WATCH = "/etcdserverpb.Watch/Watch"
_PUT = rpc.Event.PUT


def _kv(raw: rpc.KeyValue) -> KeyValue:
    return KeyValue(raw.key.decode("utf-8", "surrogateescape"), raw.value, raw.mod_revision, raw.create_revision)


def _range_end(prefix: str) -> bytes:
    return prefix_end(prefix).encode("utf-8", "surrogateescape")


# Write requests laid out by hand in protobuf's wire format: building and serializing a TxnRequest
# from upb message objects takes ~17 us, these ~2 us (tests/unit/test_etcd_wire.py compares the bytes).

def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _ld(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (``tag`` = field number << 3 | 2, all below 16 here)."""
    return bytes((tag,)) + _varint(len(payload)) + payload


def cmp_version_is_0(key: bytes) -> bytes:
    """Compare{key, EQUAL, VERSION, version: 0}: the key does not exist."""
    return _ld(0x1A, key) + b"\x20\x00"


def cmp_version_above_0(key: bytes) -> bytes:
    """Compare{key, GREATER, VERSION, version: 0}: the key exists."""
    return b"\x08\x01" + _ld(0x1A, key) + b"\x20\x00"


def cmp_mod_revision_is(key: bytes, revision: int) -> bytes:
    """Compare{key, EQUAL, MOD, mod_revision}."""
    return b"\x10\x02" + _ld(0x1A, key) + b"\x30" + _varint(revision)


def op_put(key: bytes, value: bytes) -> bytes:
    return _ld(0x12, _ld(0x0A, key) + (_ld(0x12, value) if value else b""))


def op_range(key: bytes) -> bytes:
    return _ld(0x0A, _ld(0x0A, key))


def op_delete(key: bytes) -> bytes:
    return _ld(0x1A, _ld(0x0A, key))


def range_one(key: bytes) -> bytes:
    """RangeRequest{key}: the current value of one key."""
    return _ld(0x0A, key)


def txn_request(compare: bytes, success: bytes, failure: bytes = b"") -> bytes:
    """A serialized TxnRequest with one compare, one success op and at most one failure op."""
    return _ld(0x0A, compare) + _ld(0x12, success) + (_ld(0x1A, failure) if failure else b"")


def parse_endpoint(url: str) -> tuple[str, int]:
    """``http://127.0.0.1:2379`` (or ``127.0.0.1:2379``) → host, port."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return parts.hostname or "127.0.0.1", parts.port or 2379


class EtcdStore:
    """A :class:`~apiserver.storage.Store` on one etcd endpoint (the next of ``endpoints`` after a failure)."""

    def __init__(self, endpoints: list[str], timeout: float | None = 10.0) -> None:
        self._endpoints = [parse_endpoint(e) for e in endpoints]
        self._which = 0
        self._timeout = timeout
        self._channel = Channel(*self._endpoints[0])
        self._old_channels: list[Channel] = []

    def _failed(self, e: RpcError) -> NoReturn:
        """Turn a failed call into the storage error (another endpoint next time, if there is one)."""
        if e.code in _UNAVAILABLE:
            if len(self._endpoints) > 1:
                self._which = (self._which + 1) % len(self._endpoints)
                self._old_channels.append(self._channel)      # closed by close(): calls may still use it
                self._channel = Channel(*self._endpoints[self._which])
            what = "timed out" if e.code == DEADLINE_EXCEEDED else "unavailable"
            raise UnavailableError(f"etcd {what}: {e.message}") from e
        raise e

    async def _range(self, request: bytes, revision: int = 0) -> rpc.RangeResponse:
        try:
            return rpc.RangeResponse.FromString(await self._channel.unary(_RANGE, request, self._timeout))
        except RpcError as e:
            if e.code == OUT_OF_RANGE:
                raise CompactedError(revision, 0) from e
            self._failed(e)

    async def get(self, key: str) -> KeyValue | None:
        resp = await self._range(range_one(key.encode()))
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def list(self, prefix: str, *, start: str | None = None, limit: int = 0,
                   revision: int = 0) -> ListResult:
        begin = start if start is not None and start > prefix else prefix
        resp = await self._range(rpc.RangeRequest(key=begin.encode(), range_end=_range_end(prefix), limit=limit,
                                                  revision=revision).SerializeToString(), revision)
        return ListResult([_kv(kv) for kv in resp.kvs], resp.header.revision, resp.more)

    async def _txn(self, request: bytes) -> rpc.TxnResponse:
        try:
            return rpc.TxnResponse.FromString(await self._channel.unary(_TXN, request, self._timeout))
        except RpcError as e:
            self._failed(e)

    @staticmethod
    def _current(resp: rpc.TxnResponse) -> KeyValue | None:
        for r in resp.responses:
            if r.WhichOneof("response") == "response_range" and r.response_range.kvs:
                return _kv(r.response_range.kvs[0])
        return None

    async def create(self, key: str, value: bytes) -> int:
        k = key.encode()
        resp = await self._txn(txn_request(cmp_version_is_0(k), op_put(k, value)))
        if not resp.succeeded:
            raise KeyExistsError(key)
        return resp.header.revision

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        k = key.encode()
        resp = await self._txn(txn_request(cmp_mod_revision_is(k, expected_revision), op_put(k, value), op_range(k)))
        if not resp.succeeded:
            raise RevisionMismatchError(key, self._current(resp))
        return resp.header.revision

    async def delete(self, key: str, expected_revision: int) -> int:
        k = key.encode()
        compare = cmp_mod_revision_is(k, expected_revision) if expected_revision else cmp_version_above_0(k)
        resp = await self._txn(txn_request(compare, op_delete(k), op_range(k)))
        if not resp.succeeded:
            current = self._current(resp)
            if current is None:
                raise KeyNotFoundError(key)
            raise RevisionMismatchError(key, current)
        return resp.header.revision

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        key, range_end = prefix.encode(), _range_end(prefix)
        next_rev = start_revision
        failures = 0
        while True:
            call = None
            try:
                call = await self._channel.open(_WATCH)
                call.send(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
                    key=key, range_end=range_end, start_revision=next_rev, prev_kv=True)).SerializeToString())
                while True:
                    data = await call.recv()
                    if data is None:
                        raise ConnectionError("the watch stream ended")
                    resp = rpc.WatchResponse.FromString(data)
                    if resp.compact_revision:
                        raise CompactedError(next_rev, resp.compact_revision)
                    if resp.canceled:
                        raise ConnectionError(f"etcd cancelled the watch: {resp.cancel_reason or 'no reason given'}")
                    for ev in resp.events:
                        failures = 0
                        kv = ev.kv
                        rev = kv.mod_revision
                        pk = ev.prev_kv
                        prev = pk.value if pk.mod_revision else None
                        if ev.type == _PUT:
                            yield WatchEvent("PUT", kv.key.decode("utf-8", "surrogateescape"), kv.value, prev, rev)
                        else:
                            yield WatchEvent("DELETE", kv.key.decode("utf-8", "surrogateescape"), None, prev, rev)
                        next_rev = rev + 1
            except (RpcError, ConnectionError) as e:
                failures += 1
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1]
                why = str(e)
                logger.warning("watch %s broke (%s); resuming from revision %s in %.2fs", prefix, why, next_rev, delay)
                await asyncio.sleep(delay)
            finally:
                if call is not None:
                    call.cancel()

    async def current_revision(self) -> int:
        resp = await self._range(rpc.RangeRequest(key=b"\0", limit=1, count_only=True).SerializeToString())
        return resp.header.revision

    async def compact(self, revision: int) -> None:
        try:
            await self._channel.unary(_COMPACT, rpc.CompactionRequest(revision=revision).SerializeToString(),
                                      self._timeout)
        except RpcError as e:
            if e.code == OUT_OF_RANGE and "compacted" in e.message:
                return
            self._failed(e)

    async def close(self) -> None:
        for c in (self._channel, *self._old_channels):
            await c.close()
        self._old_channels = []

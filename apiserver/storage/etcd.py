"""The etcd v3 :class:`~apiserver.storage.Store`, on aetcd 1.0.0 (see shared docs/etcd.md §4-5).

* one gRPC channel with a 64 MiB receive cap (10k-object lists are > 4 MiB);
* lists are paged ``Range`` calls (limit + pinned revision) through the raw KV stub, because the
  high-level ``get_prefix`` has neither; grpc ``OUT_OF_RANGE`` there means "compacted";
* create = txn(version == 0), update/delete = txn(mod_revision == rv);
* watches use ``watch_prefix(prev_kv=True)`` and, when the connection breaks, re-watch from the
  last delivered event's mod_revision + 1 (never from a response header's revision, which can skip
  a backlog); a compacted start revision becomes :class:`CompactedError`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator
from urllib.parse import urlsplit

import aetcd
import aetcd.exceptions
import grpc
from aetcd import rpc
from aetcd.utils import prefix_range_end

from apiserver.storage import (CompactedError, KeyExistsError, KeyNotFoundError, KeyValue, ListResult,
                               RevisionMismatchError, UnavailableError, WatchEvent)

logger = logging.getLogger(__name__)

MAX_MESSAGE = 64 << 20
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)


def _kv(raw: rpc.KeyValue | aetcd.rtypes.KeyValue) -> KeyValue:
    return KeyValue(raw.key.decode("utf-8", "surrogateescape"), bytes(raw.value), raw.mod_revision,
                    raw.create_revision)


def parse_endpoint(url: str) -> tuple[str, int]:
    """``http://127.0.0.1:2379`` (or ``127.0.0.1:2379``) → host, port."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return parts.hostname or "127.0.0.1", parts.port or 2379


class EtcdStore:
    """A :class:`~apiserver.storage.Store` on one etcd endpoint (the first reachable of ``endpoints``)."""

    def __init__(self, endpoints: list[str], timeout: float | None = 10.0) -> None:
        self._endpoints = [parse_endpoint(e) for e in endpoints]
        self._which = 0
        self._timeout = timeout
        self._client = self._new_client()

    def _new_client(self) -> aetcd.Client:
        host, port = self._endpoints[self._which]
        return aetcd.Client(host, port, options={"grpc.max_receive_message_length": MAX_MESSAGE,
                                                 "grpc.max_send_message_length": MAX_MESSAGE})

    async def _call(self, coro_fn):  # type: ignore[no-untyped-def]
        """Run one unary call; connection failures become :class:`UnavailableError`."""
        try:
            return await coro_fn()
        except aetcd.exceptions.ConnectionFailedError as e:
            if len(self._endpoints) > 1:
                self._which = (self._which + 1) % len(self._endpoints)
            raise UnavailableError(f"etcd unavailable: {e}") from e
        except aetcd.exceptions.ConnectionTimeoutError as e:
            raise UnavailableError(f"etcd timed out: {e}") from e
        except grpc.aio.AioRpcError as e:
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise UnavailableError(f"etcd unavailable: {e.details()}") from e
            raise

    async def get(self, key: str) -> KeyValue | None:
        async def call() -> KeyValue | None:
            got = await self._client.get(key.encode())
            return _kv(got) if got is not None else None
        return await self._call(call)

    async def list(self, prefix: str, *, start: str | None = None, limit: int = 0,
                   revision: int = 0) -> ListResult:
        begin = start if start is not None and start > prefix else prefix

        async def call() -> ListResult:
            await self._client.connect()
            try:
                resp = await self._client.kvstub.Range(rpc.RangeRequest(
                    key=begin.encode(), range_end=prefix_range_end(prefix.encode()), limit=limit,
                    revision=revision), timeout=self._timeout)
            except grpc.aio.AioRpcError as e:
                if e.code() == grpc.StatusCode.OUT_OF_RANGE:
                    raise CompactedError(revision, 0) from e
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    raise aetcd.exceptions.ConnectionFailedError(e.details()) from e
                raise
            return ListResult([_kv(kv) for kv in resp.kvs], resp.header.revision, resp.more)
        return await self._call(call)

    async def _txn(self, compare: rpc.Compare, success: list[rpc.RequestOp],
                   failure: list[rpc.RequestOp]) -> rpc.TxnResponse:
        await self._client.connect()
        try:
            return await self._client.kvstub.Txn(rpc.TxnRequest(compare=[compare], success=success,
                                                                 failure=failure), timeout=self._timeout)
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                raise aetcd.exceptions.ConnectionFailedError(e.details()) from e
            raise

    @staticmethod
    def _compare(key: bytes, target: str, value: int) -> rpc.Compare:
        c = rpc.Compare(key=key, result=rpc.Compare.EQUAL)
        if target == "version":
            c.target, c.version = rpc.Compare.VERSION, value
        else:
            c.target, c.mod_revision = rpc.Compare.MOD, value
        return c

    @staticmethod
    def _current(resp: rpc.TxnResponse) -> KeyValue | None:
        for r in resp.responses:
            if r.WhichOneof("response") == "response_range" and r.response_range.kvs:
                return _kv(r.response_range.kvs[0])
        return None

    async def create(self, key: str, value: bytes) -> int:
        k = key.encode()

        async def call() -> int:
            resp = await self._txn(self._compare(k, "version", 0),
                                   [rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))], [])
            if not resp.succeeded:
                raise KeyExistsError(key)
            return int(resp.header.revision)
        return await self._call(call)

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        k = key.encode()

        async def call() -> int:
            resp = await self._txn(self._compare(k, "mod", expected_revision),
                                   [rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))],
                                   [rpc.RequestOp(request_range=rpc.RangeRequest(key=k))])
            if not resp.succeeded:
                raise RevisionMismatchError(key, self._current(resp))
            return int(resp.header.revision)
        return await self._call(call)

    async def delete(self, key: str, expected_revision: int) -> int:
        k = key.encode()

        async def call() -> int:
            compare = (self._compare(k, "mod", expected_revision) if expected_revision else
                       rpc.Compare(key=k, result=rpc.Compare.GREATER, target=rpc.Compare.VERSION, version=0))
            resp = await self._txn(compare, [rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k))],
                                   [rpc.RequestOp(request_range=rpc.RangeRequest(key=k))])
            if not resp.succeeded:
                current = self._current(resp)
                if current is None:
                    raise KeyNotFoundError(key)
                raise RevisionMismatchError(key, current)
            return int(resp.header.revision)
        return await self._call(call)

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        next_rev = start_revision
        failures = 0
        while True:
            try:
                watch = await self._client.watch_prefix(prefix.encode(), start_revision=next_rev or None,
                                                        prev_kv=True)
            except aetcd.exceptions.RevisionCompactedError as e:
                raise CompactedError(next_rev, e.compacted_revision) from e
            except (aetcd.exceptions.ConnectionFailedError, aetcd.exceptions.ConnectionTimeoutError,
                    aetcd.exceptions.InternalError) as e:
                failures += 1
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1]
                logger.warning("watch %s: cannot (re)start from %s (%s); retrying in %.2fs", prefix, next_rev, e, delay)
                await asyncio.sleep(delay)
                continue
            try:
                async for ev in watch:
                    failures = 0
                    kv = ev.kv
                    rev = kv.mod_revision
                    key = kv.key.decode("utf-8", "surrogateescape")
                    prev = ev.prev_kv.value if ev.prev_kv is not None and ev.prev_kv.mod_revision else None
                    if ev.kind == "PUT":
                        yield WatchEvent("PUT", key, bytes(kv.value), bytes(prev) if prev is not None else None, rev)
                    else:
                        yield WatchEvent("DELETE", key, None, bytes(prev) if prev is not None else None, rev)
                    next_rev = rev + 1
            except aetcd.exceptions.RevisionCompactedError as e:
                raise CompactedError(next_rev, e.compacted_revision) from e
            except (aetcd.exceptions.ConnectionFailedError, aetcd.exceptions.ConnectionTimeoutError,
                    aetcd.exceptions.InternalError, aetcd.exceptions.ClientError) as e:
                failures += 1
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1]
                logger.warning("watch %s broke (%s); resuming from revision %s in %.2fs", prefix, e, next_rev, delay)
                await asyncio.sleep(delay)
            finally:
                await asyncio.shield(self._cancel_quietly(watch))

    async def _cancel_quietly(self, watch: aetcd.rtypes.Watch) -> None:
        try:
            await watch.cancel()
        except Exception:  # noqa: BLE001 - the stream is gone already; nothing to cancel
            logger.debug("watch cancel failed", exc_info=True)

    async def current_revision(self) -> int:
        async def call() -> int:
            await self._client.connect()
            resp = await self._client.kvstub.Range(rpc.RangeRequest(key=b"\0", limit=1, count_only=True),
                                                   timeout=self._timeout)
            return int(resp.header.revision)
        return await self._call(call)

    async def compact(self, revision: int) -> None:
        async def call() -> None:
            try:
                await self._client.compact(revision)
            except aetcd.exceptions.ClientError as e:
                if "compacted" in str(e):
                    return
                raise
        await self._call(call)

    async def close(self) -> None:
        await self._client.close()

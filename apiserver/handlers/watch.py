"""WATCH: a chunked stream of ``{"type","object"}`` JSON lines served from the watch cache.

``resourceVersion`` ""/"0" starts with synthetic ADDED events for the current objects; N replays
every change after N from the cache's window, or answers one ERROR event carrying a 410 Expired
``Status`` when N is too old (informers then relist). ``allowWatchBookmarks=true`` adds periodic
BOOKMARK events; ``timeoutSeconds`` ends the stream cleanly; Table Accepts get one-row Tables.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from apiserver import tables
from apiserver.handlers.common import include_object, query_bool, query_int, state, wants_table
from apiserver.handlers.dispatch import Target
from apiserver.handlers.get import selectors
from apiserver.watchcache import CachedEvent
from kubelite.api import codec, errors
from kubelite.api.selectors import FieldRequirement, FieldSelector, object_fields

DEFAULT_TIMEOUT = 1800.0
MAX_BATCH = 256


def _resource_version(request: web.Request) -> int:
    raw = request.query.get("resourceVersion") or "0"
    try:
        rv = int(raw)
    except ValueError:
        raise errors.BadRequest(f'invalid resource version "{raw}"') from None
    if rv < 0:
        raise errors.BadRequest(f'invalid resource version "{raw}"')
    return rv


async def handle_watch(request: web.Request, target: Target) -> web.StreamResponse:
    st = state(request)
    info = target.info
    labels, fields = selectors(request, target)
    if target.name is not None:
        fields = FieldSelector(fields.requirements + (FieldRequirement("metadata.name", "=", target.name),))
    timeout = query_int(request, "timeoutSeconds")
    bookmarks = query_bool(request, "allowWatchBookmarks")
    rv = _resource_version(request)
    table = wants_table(request)
    include = include_object(request) if table else "Object"

    def predicate(obj: dict[str, Any]) -> bool:
        return (labels.empty or labels.matches((obj.get("metadata") or {}).get("labels"))) and (
            fields.empty or fields.matches(object_fields(info.resource, obj)))

    cache = st.cache.for_resource(info)
    await cache.ready.wait()
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                   "Cache-Control": "no-cache, private"})
    resp.enable_chunked_encoding()
    try:
        watcher = cache.watch(rv, target.namespace, None if labels.empty and fields.empty else predicate)
    except errors.Gone as e:
        await resp.prepare(request)
        await resp.write(codec.dumps({"type": "ERROR", "object": e.to_status()}) + b"\n")
        await resp.write_eof()
        return resp
    await resp.prepare(request)

    def line(ev: CachedEvent) -> bytes:
        if not table:
            return ev.line()
        return codec.dumps({"type": ev.type, "object": tables.to_table(info, [ev.obj], include_object=include)}) + b"\n"

    loop = asyncio.get_running_loop()
    deadline = loop.time() + (timeout if timeout is not None and timeout >= 0 else DEFAULT_TIMEOUT)
    interval = st.settings.bookmark_interval
    next_bookmark = loop.time() + interval
    last_rv = rv
    try:
        while not watcher.closed or not watcher.queue.empty():
            now = loop.time()
            if now >= deadline:
                break
            wait = deadline - now
            if bookmarks:
                wait = min(wait, max(0.0, next_bookmark - now))
            try:
                first = await asyncio.wait_for(watcher.queue.get(), timeout=wait)
            except TimeoutError:
                if bookmarks and loop.time() >= next_bookmark:
                    last_rv = max(last_rv, cache.rv)
                    await resp.write(codec.dumps({"type": "BOOKMARK", "object": {
                        "kind": info.kind, "apiVersion": info.api_version,
                        "metadata": {"resourceVersion": str(last_rv)}}}) + b"\n")
                    next_bookmark = loop.time() + interval
                continue
            batch = [first]
            while len(batch) < MAX_BATCH and not watcher.queue.empty():
                batch.append(watcher.queue.get_nowait())
            out = bytearray()
            for ev in batch:
                if ev is None:
                    break
                out += line(ev)
                last_rv = max(last_rv, ev.rv)
            if out:
                await resp.write(bytes(out))
            if batch[-1] is None or None in batch:
                break
    except ConnectionResetError:        # the client went away: nothing left to tell it
        return resp
    finally:
        cache.forget(watcher)
    try:
        await resp.write_eof()
    except ConnectionResetError:
        pass
    return resp



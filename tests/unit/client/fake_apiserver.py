"""A small in-memory fake of the apiserver's REST surface for client, informer and CLI unit tests.

It speaks enough of the wire format (object paths, list/get/create/update/merge-patch/delete, watch
as chunked JSON lines from a resourceVersion with 410 Gone for compacted history, Status errors) and
records every request, so tests can assert what a client sent. Runs on the test's loop
(``await fake.start()``) or in a thread for blocking clients (``with fake.in_thread() as url``).
"""

from __future__ import annotations

import asyncio
import copy
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kubelite.api import codec
from kubelite.api.errors import ApiError, BadRequest, Conflict, Gone, already_exists, not_found
from kubelite.api.patch import json_merge_patch
from kubelite.api.resources import RESOURCES, ResourceInfo


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class FakeApiServer:
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)  # (qualified, ns, name)
    history: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)  # (rv, qualified, type, obj)
    revision: int = 1
    compacted: int = 0          # watches from rv < compacted get 410 Gone
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[ApiError] = field(default_factory=list)  # raised by the next requests, in order
    url: str = ""
    _changed: asyncio.Event | None = None
    _runner: web.AppRunner | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    # -- state helpers usable from tests -----------------------------------------------------
    def put(self, info: ResourceInfo, obj: dict[str, Any], event: str | None = None) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if info.namespaced:
            meta.setdefault("namespace", "default")
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        obj.setdefault("apiVersion", info.api_version)
        obj.setdefault("kind", info.kind)
        key = (info.qualified, meta.get("namespace", ""), meta["name"])
        self.revision += 1
        meta["resourceVersion"] = str(self.revision)
        kind = event or ("MODIFIED" if key in self.objects else "ADDED")
        self.objects[key] = obj
        self._emit(info, kind, obj)
        return copy.deepcopy(obj)

    def remove(self, info: ResourceInfo, namespace: str, name: str) -> dict[str, Any]:
        obj = self.objects.pop((info.qualified, namespace if info.namespaced else "", name))
        self.revision += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.revision)
        self._emit(info, "DELETED", obj)
        return obj

    def compact(self) -> None:
        self.compacted = self.revision
        self.history.clear()

    def _emit(self, info: ResourceInfo, kind: str, obj: dict[str, Any]) -> None:
        self.history.append((self.revision, info.qualified, kind, copy.deepcopy(obj)))
        if self._loop is not None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._loop:
                self._wake()
            else:
                self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        assert self._changed is not None
        self._changed.set()
        self._changed = asyncio.Event()

    # -- server ------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self) -> str:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._runner = web.AppRunner(self.app(), shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @contextmanager
    def in_thread(self) -> Iterator[str]:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        stop: asyncio.Event | None = None

        async def main() -> None:
            nonlocal stop
            stop = asyncio.Event()
            await self.start()
            started.set()
            await stop.wait()
            await self.stop()

        thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
        thread.start()
        started.wait(10)
        try:
            yield self.url
        finally:
            assert stop is not None
            loop.call_soon_threadsafe(stop.set)
            thread.join(10)
            loop.close()

    @staticmethod
    def _parse_path(path: str) -> tuple[ResourceInfo, str, str | None, str | None]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"]:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"]:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise not_found("path", path)
        ns = ""
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        for info in RESOURCES:
            if info.group == group and info.version == version and info.resource == rest[0]:
                return info, ns, (rest[1] if len(rest) > 1 else None), (rest[2] if len(rest) > 2 else None)
        raise not_found("resource", rest[0])

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = codec.loads(raw) if raw else None
        self.requests.append(Recorded(request.method, request.path, dict(request.query), body, dict(request.headers)))
        try:
            if self.fail_next:
                raise self.fail_next.pop(0)
            info, ns, name, sub = self._parse_path(request.path)
            if request.method == "GET" and name is None and request.query.get("watch") == "true":
                return await self._watch(request, info, ns)
            result = self._serve(request.method, info, ns, name, sub, body, request.query)
            status = 201 if request.method == "POST" else 200
            return web.Response(body=codec.dumps(result), status=status, content_type="application/json")
        except ApiError as exc:
            return web.Response(body=codec.dumps(exc.to_status()), status=exc.status_code,
                                content_type="application/json")

    def _matches(self, obj: dict[str, Any], query: Any) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        for term in filter(None, (query.get("labelSelector") or "").split(",")):
            k, _, v = term.partition("=")
            if labels.get(k) != v:
                return False
        for term in filter(None, (query.get("fieldSelector") or "").split(",")):
            k, _, v = term.partition("=")
            cur: Any = obj
            for part in k.split("."):
                cur = (cur or {}).get(part) if isinstance(cur, dict) else None
            if (cur or "") != v:
                return False
        return True

    def _serve(self, method: str, info: ResourceInfo, ns: str, name: str | None, sub: str | None, body: Any,
               query: Any) -> Any:
        key = (info.qualified, ns, name or "")
        if method == "GET" and name is None:
            items = [copy.deepcopy(o) for (q, n, _), o in sorted(self.objects.items())
                     if q == info.qualified and (not ns or n == ns) and self._matches(o, query)]
            return {"kind": info.list_kind, "apiVersion": info.api_version,
                    "metadata": {"resourceVersion": str(self.revision)}, "items": items}
        if method == "GET":
            if key not in self.objects:
                raise not_found(info.resource, name or "", info.group)
            return copy.deepcopy(self.objects[key])
        if method == "POST" and name is None:
            meta = body.setdefault("metadata", {})
            if info.namespaced:
                meta["namespace"] = ns
            if (info.qualified, ns, meta.get("name")) in self.objects:
                raise already_exists(info.resource, meta["name"], info.group)
            return self.put(info, body)
        if method == "POST" and sub == "binding":
            obj = copy.deepcopy(self.objects[key])
            obj.setdefault("spec", {})["nodeName"] = body["target"]["name"]
            self.put(info, obj)
            return {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        if key not in self.objects:
            raise not_found(info.resource, name or "", info.group)
        current = self.objects[key]
        if method == "PUT":
            rv = (body.get("metadata") or {}).get("resourceVersion")
            if rv and rv != current["metadata"]["resourceVersion"]:
                raise Conflict(f'Operation cannot be fulfilled on {info.qualified} "{name}": the object has been '
                               f"modified; please apply your changes to the latest version and try again")
            body.setdefault("metadata", {})["uid"] = current["metadata"]["uid"]
            return self.put(info, body)
        if method == "PATCH":
            if not isinstance(body, dict):
                raise BadRequest("only merge patches here")
            return self.put(info, json_merge_patch(current, body))
        if method == "DELETE":
            return self.remove(info, ns, name or "")
        raise BadRequest(f"unsupported {method}")

    async def _watch(self, request: web.Request, info: ResourceInfo, ns: str) -> web.StreamResponse:
        rv = int(request.query.get("resourceVersion") or 0)
        timeout = float(request.query.get("timeoutSeconds") or 3600)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)

        async def send(kind: str, obj: Any) -> None:
            await resp.write(codec.dumps({"type": kind, "object": obj}) + b"\n")

        if rv and rv < self.compacted:
            await send("ERROR", Gone(f"too old resource version: {rv} ({self.compacted})").to_status())
            await resp.write_eof()
            return resp
        last = rv
        if rv == 0:
            for (q, n, _), o in sorted(self.objects.items()):
                if q == info.qualified and (not ns or n == ns) and self._matches(o, request.query):
                    await send("ADDED", o)
            last = self.revision
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            assert self._changed is not None
            changed = self._changed
            for erv, q, kind, obj in list(self.history):
                if erv > last and q == info.qualified and (not ns or obj["metadata"].get("namespace") == ns) \
                        and self._matches(obj, request.query):
                    await send(kind, obj)
                last = max(last, erv)
            remaining = deadline - loop.time()
            if remaining <= 0 or request.transport is None or request.transport.is_closing():
                break
            try:
                await asyncio.wait_for(changed.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass
        await resp.write_eof()
        return resp

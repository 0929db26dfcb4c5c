"""The lean HTTP/1.1 protocol (apiserver.http1) on the whole app in-process, memory store: what it
answers matches aiohttp's answer byte for byte (but Date), and what it does not serve it hands over."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import pytest
from aiohttp import web

from apiserver.app import make_app
from apiserver.handlers.common import Settings
from apiserver.http1 import LeanProtocol, LeanServer
from apiserver.storage.memory import MemoryStore

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
       "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}


class Servers:
    """Two apps, each on its own memory store: one served by the lean protocol (with aiohttp's
    behind it), the other by aiohttp alone (the reference)."""

    def __init__(self, lean_port: int, aiohttp_port: int, lean: LeanServer, app: web.Application) -> None:
        self.lean_port, self.aiohttp_port, self.lean, self.app = lean_port, aiohttp_port, lean, app


def _app() -> web.Application:
    store = MemoryStore()
    return make_app(Settings(etcd_servers=[], bookmark_interval=0.1), store_factory=lambda _s: store)


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    app, ref_app = _app(), _app()
    runner, ref_runner = web.AppRunner(app, access_log=None), web.AppRunner(ref_app, access_log=None)
    await runner.setup()
    await ref_runner.setup()
    site = web.TCPSite(ref_runner, "127.0.0.1", 0)
    await site.start()
    assert runner.server is not None
    lean = LeanServer(app, runner.server)
    server = await asyncio.get_running_loop().create_server(lean, "127.0.0.1", 0)
    try:
        yield Servers(server.sockets[0].getsockname()[1], ref_runner.addresses[0][1], lean, app)
    finally:
        server.close()
        await lean.shutdown(1.0)
        await runner.cleanup()
        await ref_runner.cleanup()


class Conn:
    """A raw keep-alive connection: send exact bytes, read whole responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> "Conn":
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, list[tuple[str, str]], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if line)]
        names = {k.lower(): v for k, v in headers}
        if names.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    return status, headers, body
                body += chunk[:-2]
        return status, headers, await self.reader.readexactly(int(names.get("content-length", "0")))

    async def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
                      ) -> tuple[int, list[tuple[str, str]], bytes]:
        await self.send(encode(method, path, body, headers))
        return await self.response()

    def close(self) -> None:
        self.writer.close()


def encode(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> bytes:
    data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    hs = {"Host": "127.0.0.1", "User-Agent": "tester/1.0", **({"Content-Type": "application/json"} if body is not None
                                                              else {}), **(headers or {})}
    if body is not None and "Transfer-Encoding" not in hs:
        hs["Content-Length"] = str(len(data))
    return (f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs.items()) + "\r\n").encode() + data


def comparable(resp: tuple[int, list[tuple[str, str]], bytes]) -> tuple[int, list[tuple[str, str]], Any]:
    """Status, headers but Date, body with the per-object fields that differ between two creates dropped."""
    status, headers, body = resp
    return status, sorted((k.lower(), v) for k, v in headers if k.lower() not in ("date", "content-length")), \
        _scrub(json.loads(body) if body else None)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in ("uid", "resourceVersion", "creationTimestamp", "time")}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


async def test_rest_verbs_answer_as_aiohttp_does(servers: Servers) -> None:
    lean, ref = await Conn.open(servers.lean_port), await Conn.open(servers.aiohttp_port)
    try:
        steps: list[tuple[str, str, Any, dict[str, str] | None]] = [
            ("POST", "/api/v1/namespaces/default/pods", POD, None),
            ("POST", "/api/v1/namespaces/default/pods", POD, None),                                    # 409
            ("GET", "/api/v1/namespaces/default/pods/p", None, None),
            ("GET", "/api/v1/namespaces/default/pods/nope", None, None),                               # 404
            ("GET", "/api/v1/namespaces/default/pods?labelSelector=a%3Db&limit=5", None, None),
            ("GET", "/api/v1/namespaces/default/pods/p", None,
             {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}),
            ("PATCH", "/api/v1/namespaces/default/pods/p", {"metadata": {"labels": {"x": "y"}}},
             {"Content-Type": "application/merge-patch+json"}),
            ("PATCH", "/api/v1/namespaces/default/pods/p", {"metadata": {}},
             {"Content-Type": "text/plain"}),                                                          # 415
            ("PUT", "/api/v1/namespaces/default/pods/p/status", {**POD, "status": {"phase": "Running"}}, None),
            ("POST", "/api/v1/namespaces/default/pods?fieldValidation=Warn",
             {**POD, "metadata": {"name": "w"}, "bogus": 1}, None),                                    # Warning
            ("POST", "/api/v1/namespaces/default/pods?fieldValidation=Strict",
             {**POD, "metadata": {"name": "s"}, "bogus": 1}, None),                                    # 400
            ("POST", "/api/v1/namespaces/default/pods", {**POD, "metadata": {"name": "Bad_Name"}}, None),  # 422
            ("POST", "/api/v1/namespaces/default/pods", b"{not json", None),                           # 400
            ("DELETE", "/api/v1/namespaces/default/pods/w?gracePeriodSeconds=0", None, None),
            ("PUT", "/api/v1/namespaces/default/pods", POD, None),                                     # 405
        ]
        for method, path, body, headers in steps:
            got = await lean.request(method, path, body, headers)
            want = await ref.request(method, path, body, headers)
            assert comparable(got) == comparable(want), (method, path)
        status, headers, _ = await lean.request("POST", "/api/v1/namespaces/default/pods?fieldValidation=Warn",
                                                {**POD, "metadata": {"name": "w2"}, "bogus": 1})
        assert status == 201 and ("Warning", '299 - "unknown field \\"bogus\\""') in headers
    finally:
        lean.close()
        ref.close()


async def test_pipelined_requests_answer_in_order_and_the_rest_is_handed_to_aiohttp(servers: Servers) -> None:
    conn = await Conn.open(servers.lean_port)
    try:
        pod = encode("POST", "/api/v1/namespaces/default/pods", POD)
        await conn.send(pod[:40])                              # a head and a body in pieces
        await conn.send(pod[40:-10])
        await conn.send(pod[-10:] + encode("GET", "/api/v1/namespaces/default/pods/p") + encode("GET", "/version")
                        + encode("GET", "/api/v1/namespaces/default/pods/p"))
        assert (await conn.response())[0] == 201
        status, headers, body = await conn.response()
        assert status == 200 and json.loads(body)["metadata"]["name"] == "p"
        status, headers, body = await conn.response()          # answered by aiohttp from here on
        assert status == 200 and json.loads(body)["gitVersion"].startswith("v1.32")
        assert len(servers.lean.connections) == 0
        status, headers, body = await conn.response()
        assert status == 200 and json.loads(body)["metadata"]["name"] == "p"
        # a watch on the handed-over connection streams as usual
        await conn.send(encode("GET", "/api/v1/namespaces/default/pods?watch=true&resourceVersion=0&timeoutSeconds=1"))
        status, headers, body = await conn.response()
        assert status == 200 and ("Transfer-Encoding", "chunked") in headers
        assert json.loads(body.splitlines()[0])["type"] == "ADDED"
    finally:
        conn.close()


@pytest.mark.parametrize("request_bytes", [
    encode("POST", "/api/v1/namespaces/default/pods", json.dumps(POD).encode(), {"Transfer-Encoding": "chunked"})
    .replace(b"\r\n\r\n", b"\r\n\r\n%x\r\n" % len(json.dumps(POD)), 1) + b"\r\n0\r\n\r\n",
    encode("POST", "/api/v1/namespaces/default/pods", POD).replace(b"HTTP/1.1", b"HTTP/1.0", 1),
    encode("POST", "/api/v1/namespaces/default/pods", POD, {"Connection": "close"}),
    encode("POST", "/api/v1/namespaces/default/pods", POD, {"Expect": "100-continue"}),
], ids=["chunked", "http10", "connection-close", "expect"])
async def test_requests_it_does_not_serve_go_to_aiohttp(servers: Servers, request_bytes: bytes) -> None:
    conn = await Conn.open(servers.lean_port)
    try:
        await conn.send(request_bytes)
        status, headers, body = await conn.response()
        if status == 100:
            status, headers, body = await conn.response()
        assert status == 201 and json.loads(body)["metadata"]["name"] == "p"
        assert len(servers.lean.connections) == 0              # handed over
    finally:
        conn.close()


async def test_metrics_count_lean_requests(servers: Servers) -> None:
    conn = await Conn.open(servers.lean_port)
    try:
        assert (await conn.request("POST", "/api/v1/namespaces/default/pods", POD))[0] == 201
        assert (await conn.request("GET", "/api/v1/namespaces/default/pods/nope"))[0] == 404
        assert len(servers.lean.connections) == 1                # still lean: both served here
        status, _, body = await conn.request("GET", "/metrics")
    finally:
        conn.close()
    text = body.decode()
    assert status == 200
    assert ('apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",'
            'scope="namespace",subresource="",verb="POST",version="v1"} 1.0') in text
    assert ('apiserver_request_total{code="404",component="apiserver",dry_run="",group="",resource="pods",'
            'scope="resource",subresource="",verb="GET",version="v1"} 1.0') in text


@pytest.mark.parametrize("head, served", [
    (b"GET /api/v1/namespaces/default/pods/p HTTP/1.1\r\nHost: x\r\nUser-Agent: a b/c", True),
    (b"GET /api/v1/namespaces/default/pods/p HTTP/1.1\r\nHost: x\r\n folded", False),
    (b"GET /api/v1/namespaces/default/pods/p HTTP/1.1\r\nHost : x", False),
    (b"GET /api/v1/namespaces/default/pods/p HTTP/1.1\r\nno-colon", False),
    (b"GET /api/v1/namespaces/default/pods/%70 HTTP/1.1\r\nHost: x", False),
    (b"GET /api/v1/namespaces/default/pods/p HTTP/1.1\r\nHost: \xc3\xa9", False),
    (b"POST /api/v1/namespaces/default/pods HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1", False),
    (b"POST /api/v1/namespaces/default/pods HTTP/1.1\r\nContent-Length: -1", False),
    (b"POST /api/v1/namespaces/default/pods HTTP/1.1\r\nContent-Length: 4000000", False),
    (b"POST /api/v1/namespaces/default/pods HTTP/1.1\r\nUpgrade: websocket", False),
    (b"HEAD /api/v1/namespaces/default/pods/p HTTP/1.1\r\nHost: x", False),
    (b"GET /api/v1/namespaces/default/pods/p HTTP/2.0\r\nHost: x", False),
])
def test_only_plain_heads_are_parsed(head: bytes, served: bool) -> None:
    assert (LeanProtocol._parse_head(head) is not None) is served


async def test_shutdown_closes_idle_connections(servers: Servers) -> None:
    conn = await Conn.open(servers.lean_port)
    try:
        assert (await conn.request("GET", "/api/v1/namespaces/default/pods/nope"))[0] == 404
        await servers.lean.shutdown(1.0)
        assert await asyncio.wait_for(conn.reader.read(), 5) == b""
    finally:
        conn.close()


async def test_a_client_gone_mid_request_leaves_nothing_behind(servers: Servers) -> None:
    conn = await Conn.open(servers.lean_port)
    await conn.send(encode("POST", "/api/v1/namespaces/default/pods", POD))
    conn.close()
    other = await Conn.open(servers.lean_port)
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while (await other.request("GET", "/api/v1/namespaces/default/pods/p"))[0] != 200:
            assert asyncio.get_running_loop().time() < deadline, "the create never landed"
        while len(servers.lean.connections) > 1:              # the gone client's protocol let go
            assert asyncio.get_running_loop().time() < deadline, "the gone connection is still held"
            await asyncio.sleep(0.01)
    finally:
        other.close()


async def test_idle_keep_alive_connections_are_closed(servers: Servers) -> None:
    idle, busy = await Conn.open(servers.lean_port), await Conn.open(servers.lean_port)
    try:
        assert (await idle.request("GET", "/api/v1/namespaces/default/pods/nope"))[0] == 404
        assert (await busy.request("GET", "/api/v1/namespaces/default/pods/nope"))[0] == 404
        for conn in servers.lean.connections:
            conn.last_active -= 1000                            # as if idle for longer than IDLE_TIMEOUT
        assert (await busy.request("GET", "/api/v1/namespaces/default/pods/nope"))[0] == 404
        servers.lean._sweep()
        assert await asyncio.wait_for(idle.reader.read(), 5) == b""
        assert (await busy.request("GET", "/api/v1/namespaces/default/pods/nope"))[0] == 404
    finally:
        idle.close()
        busy.close()


async def test_a_large_list_arrives_whole(servers: Servers) -> None:
    conn = await Conn.open(servers.lean_port)
    try:
        for i in range(40):
            cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}"}, "data": {"k": "v" * 3000}}
            assert (await conn.request("POST", "/api/v1/namespaces/default/configmaps", cm))[0] == 201
        status, headers, body = await conn.request("GET", "/api/v1/namespaces/default/configmaps")
        assert status == 200 and len(body) > 64 * 1024 and dict(headers)["Content-Length"] == str(len(body))
        assert len(json.loads(body)["items"]) == 40
        assert (await conn.request("GET", "/api/v1/namespaces/default/configmaps/c0"))[0] == 200
    finally:
        conn.close()

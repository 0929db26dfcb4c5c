"""FastWriter: the scheduler's and kubelet's lean write transport answers and fails exactly as the regular client."""

from __future__ import annotations

import asyncio
import time

import pytest

from kubelite.api.errors import ApiError, ServiceUnavailable
from kubelite.api.resources import EVENTS, PODS
from kubelite.client import Client
from kubelite.client.fastwriter import FastWriter, Http1Connection
from tests.unit.client.fake_apiserver import FakeApiServer

pytestmark = pytest.mark.unit


def binding(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": "default"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


async def test_binds_and_creates_over_reused_connections(fake: FakeApiServer) -> None:
    fake.put(PODS, {"metadata": {"name": "p1", "namespace": "default"}, "spec": {"containers": []}})
    async with Client.from_url(fake.url) as client:
        writer = FastWriter(client)
        try:
            await writer.create_subresource(PODS, "p1", "binding", binding("p1", "n1"), "default")
            assert (await client.get(PODS, "p1", "default"))["spec"]["nodeName"] == "n1"
            ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "default"},
                  "involvedObject": {"kind": "Pod", "name": "p1"}, "reason": "Scheduled"}
            created = await writer.create(EVENTS, ev, namespace="default")
            assert created["metadata"]["name"] == "e1" and created["reason"] == "Scheduled"
            assert len(writer._idle) == 1                      # one keep-alive connection served both
            got = await asyncio.gather(*(writer.create(EVENTS, dict(ev, metadata={"name": f"e{i}"}), "default")
                                         for i in range(2, 12)))
            assert [g["metadata"]["name"] for g in got] == [f"e{i}" for i in range(2, 12)]
            # errors are the regular client's ApiError, message and all
            with pytest.raises(ApiError) as fast_err:
                await writer.create(EVENTS, ev, namespace="default")
            with pytest.raises(ApiError) as slow_err:
                await client.create(EVENTS, ev, namespace="default")
            assert type(fast_err.value) is type(slow_err.value) and str(fast_err.value) == str(slow_err.value)
            # a patch (the kubelet's pod status) is the regular client's, result and errors alike
            patched = await writer.patch(PODS, "p1", {"metadata": {"labels": {"a": "b"}}}, "default")
            assert patched["metadata"]["labels"] == {"a": "b"}
            assert (await client.get(PODS, "p1", "default"))["metadata"]["labels"] == {"a": "b"}
            with pytest.raises(ApiError) as fast_err:
                await writer.patch(PODS, "nope", {"metadata": {"labels": {"a": "b"}}}, "default")
            with pytest.raises(ApiError) as slow_err:
                await client.patch(PODS, "nope", {"metadata": {"labels": {"a": "b"}}}, "default")
            assert type(fast_err.value) is type(slow_err.value) and str(fast_err.value) == str(slow_err.value)
            # every other verb is the wrapped client's
            assert (await writer.get(PODS, "p1", "default"))["metadata"]["name"] == "p1"
            # a pooled connection the server closed is not reused
            writer._idle[0].transport.close()
            await asyncio.sleep(0)
            await writer.create(EVENTS, dict(ev, metadata={"name": "late"}), "default")
        finally:
            await writer.close()


async def test_no_answer_is_service_unavailable_after_the_timeout() -> None:
    done = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await done.wait()
        w.close()
    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, Client.from_url(f"http://127.0.0.1:{port}") as client:
        writer = FastWriter(client, timeout=0.1)
        start = time.monotonic()
        with pytest.raises(ServiceUnavailable, match="TimeoutError"):
            await writer.create_subresource(PODS, "p", "binding", binding("p", "n"), "default")
        assert time.monotonic() - start < 3
        await writer.close()
        done.set()


def test_parses_chunked_and_split_responses() -> None:
    conn = Http1Connection()
    raw = (b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n")
    conn.buf += raw[:40]
    assert conn._parse() is None
    conn.buf += raw[40:]
    assert conn._parse() == (201, "application/json", b'{"a": 1}') and not conn.buf
    conn.buf += b"HTTP/1.1 409 Conflict\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    assert conn._parse() == (409, "", b"{}") and not conn.keep_alive

"""The kubelet API: logs (tail, timestamps, previous, follow), exec over the channel protocol, stats, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from kubelet.cri import ContainerState, ExecResult
from kubelet.server import bound_port, serve
from tests.unit.kubelet.test_kubelet import Harness, make_pod, running, wait_for

pytestmark = pytest.mark.unit


def write_log(path: Path, *lines: tuple[str, str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        for ts, stream, text in lines:
            fh.write(f"{ts} {stream} F {text}\n")


async def test_logs_exec_stats_metrics(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    async with running(h):
        h.add(make_pod("web"))
        await wait_for(lambda: h.last_status("web").get("phase") == "Running")
        first = h.containers("c")[0]
        write_log(Path(first.log_path), ("2026-01-01T00:00:00.000000001Z", "stdout", "one"),
                  ("2026-01-01T00:00:01.5Z", "stderr", "two"))
        h.runtime.exit(first.id, 1)
        await wait_for(lambda: any(c.state == ContainerState.RUNNING and c.metadata.attempt == 1
                                   for c in h.containers("c")))
        second = next(c for c in h.containers("c") if c.metadata.attempt == 1)
        write_log(Path(second.log_path), ("2026-01-01T00:01:00Z", "stdout", "three"),
                  ("2026-01-01T00:01:01Z", "stdout", "four"))
        h.runtime.exec_results[("sh", "-c", "exit 3")] = ExecResult(3, b"out", b"err")
        runner = await serve(h.kubelet, "127.0.0.1", 0, token="")
        base = f"http://127.0.0.1:{bound_port(runner)}"
        try:
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{base}/containerLogs/default/web/c") as r:
                    assert await r.text() == "three\nfour\n"
                async with s.get(f"{base}/containerLogs/default/web/c?tailLines=1&timestamps=true") as r:
                    assert await r.text() == "2026-01-01T00:01:01Z four\n"
                async with s.get(f"{base}/containerLogs/default/web/c?previous=true") as r:
                    assert await r.text() == "one\ntwo\n"
                async with s.get(f"{base}/containerLogs/default/nope/c") as r:
                    assert r.status == 404 and (await r.json())["kind"] == "Status"
                # exec, v5: stdout/stderr channels, then the exit code as a Status on channel 3
                async with s.ws_connect(f"{base}/exec/default/web/c?command=sh&command=-c&command=exit+3"
                                        "&stdout=true&stderr=true", protocols=("v5.channel.k8s.io",)) as ws:
                    got = [m.data async for m in ws if m.type == aiohttp.WSMsgType.BINARY]
                assert got[0] == b"\x01out" and got[1] == b"\x02err"
                status = json.loads(got[-1][1:])
                assert got[-1][0] == 3 and status["reason"] == "NonZeroExitCode"
                assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
                # exec with stdin: cat echoes, v5 close of stdin ends it with Success
                async with s.ws_connect(f"{base}/exec/default/web/c?command=cat&stdin=true&stdout=true",
                                        protocols=("v5.channel.k8s.io",)) as ws:
                    await ws.send_bytes(b"\x00hello")
                    msg = await ws.receive()
                    assert msg.data == b"\x01hello"
                    await ws.send_bytes(b"\xff\x00")
                    rest = [m.data async for m in ws if m.type == aiohttp.WSMsgType.BINARY]
                assert json.loads(rest[-1][1:])["status"] == "Success"
                # v4 with a tty: resize frames reach the process; stdout only (stderr merged)
                async with s.ws_connect(f"{base}/exec/default/web/c?command=cat&stdin=true&stdout=true&tty=true",
                                        protocols=("v4.channel.k8s.io",)) as ws:
                    assert ws.protocol == "v4.channel.k8s.io"
                    await ws.send_bytes(b'\x04{"Width":120,"Height":40}')
                    await ws.send_bytes(b"\x00x")
                    assert (await ws.receive()).data == b"\x01x"
                    await ws.close()
                await wait_for(lambda: h.runtime.exec_processes[-1].sizes == [(120, 40)])
                assert h.runtime.exec_processes[-1].stderr is None
                async with s.get(f"{base}/exec/default/web/c?command=ls",
                                 headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}) as r:
                    assert r.status == 400 and "SPDY" in (await r.json())["message"]
                async with s.get(f"{base}/stats/summary") as r:
                    summary = await r.json()
                assert summary["node"]["nodeName"] == "n1"
                assert summary["pods"][0]["podRef"]["name"] == "web"
                async with s.get(f"{base}/metrics") as r:
                    text = await r.text()
                assert "kubelet_pleg_relist_duration_seconds_bucket" in text
                assert "kubelet_pod_worker_duration_seconds_count" in text
                async with s.get(f"{base}/metrics/cadvisor") as r:
                    text = await r.text()
                assert 'container_cpu_usage_seconds_total{container="c"' in text
                assert 'container_spec_cpu_shares{container="c"' in text
                async with s.get(f"{base}/healthz") as r:
                    assert await r.text() == "ok"
        finally:
            await runner.cleanup()


async def test_token_required_when_configured(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    runner = await serve(h.kubelet, "127.0.0.1", 0, token="s3cret")
    base = f"http://127.0.0.1:{bound_port(runner)}"
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{base}/pods") as r:
                assert r.status == 401
            async with s.get(f"{base}/pods", headers={"Authorization": "Bearer s3cret"}) as r:
                assert r.status == 200 and (await r.json())["kind"] == "PodList"
    finally:
        await runner.cleanup()


async def test_image_gc_frees_down_to_low_threshold(tmp_path: Path) -> None:
    from kubelet.cri import FilesystemUsage
    from kubelet.gc import ImageGC
    from kubelet.testing import FakeImageService
    images = FakeImageService(["a:1", "b:1", "c:1"])
    images.fs = FilesystemUsage("/x", 0, 0, capacity_bytes=10_000, available_bytes=1_000)   # 90 % used
    removed = await ImageGC(images).collect({})
    assert len(removed) == 1           # each image is 1000 bytes: 90 % → 80 % needs one
    images.fs = FilesystemUsage("/x", 0, 0, capacity_bytes=10_000, available_bytes=5_000)
    assert await ImageGC(images).collect({}) == []


def test_log_rotation_keeps_five_files(tmp_path: Path) -> None:
    from kubelet.logs import rotate_if_needed, select
    log = tmp_path / "0.log"
    for i in range(7):
        write_log(log, *[("2026-01-01T00:00:00Z", "stdout", f"line{i}-{j}") for j in range(10)])
        assert rotate_if_needed(log, max_size=100, max_files=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.log", "0.log.1", "0.log.2", "0.log.3", "0.log.4"]
    assert log.stat().st_size == 0
    lines = select(log)
    assert lines[0].text == b"line3-0" and lines[-1].text == b"line6-9"

"""Image policy/credentials/backoff, termination messages, probe handlers."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest

from kubelet.containerconfig import ANN_TERMINATION_HOST_PATH, ANN_TERMINATION_POLICY
from kubelet.cri import ContainerMetadata, ContainerState, ContainerStatus
from kubelet.handlers import run_handler
from kubelet.images import ImageError, ImageManager, credentials_for, pull_policy
from kubelet.kuberuntime import termination_message
from kubelet.testing import FakeImageService, FakeRuntime

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("image, policy", [("busybox", "Always"), ("busybox:latest", "Always"),
                                           ("busybox:1.35", "IfNotPresent"), ("reg:5000/x", "Always"),
                                           ("reg:5000/x:1", "IfNotPresent"), ("x@sha256:ab", "IfNotPresent")])
def test_default_pull_policy(image: str, policy: str) -> None:
    assert pull_policy({"image": image}) == policy


def _secret(registry: str, user: str) -> dict:
    doc = {"auths": {registry: {"username": user, "password": "pw", "auth": base64.b64encode(b"u:pw").decode()}}}
    return {"type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(doc).encode()).decode()}}


def test_pull_secret_matches_registry() -> None:
    secrets = [_secret("other.example:5000", "a"), _secret("127.0.0.1:5000", "b"),
               _secret("https://index.docker.io/v1/", "hub")]
    assert credentials_for("127.0.0.1:5000/app:1", secrets).username == "b"   # type: ignore[union-attr]
    assert credentials_for("busybox:1", secrets).username == "hub"            # type: ignore[union-attr]
    assert credentials_for("quay.io/x:1", secrets) is None


async def test_pull_errors_then_backoff_then_never() -> None:
    images = FakeImageService()
    images.pull_errors["127.0.0.1:5000/app:1"] = "manifest unknown"
    mgr = ImageManager(images)
    pod = {"metadata": {"uid": "u"}}
    c = {"name": "c", "image": "127.0.0.1:5000/app:1"}
    with pytest.raises(ImageError) as e:
        await mgr.ensure_image(pod, c, [_secret("127.0.0.1:5000", "b")], now=100)
    assert e.value.reason == "ErrImagePull" and "manifest unknown" in e.value.message
    assert images.pulls[0][1].username == "b"                                   # type: ignore[union-attr]
    with pytest.raises(ImageError) as e:
        await mgr.ensure_image(pod, c, [], now=105)
    assert e.value.reason == "ImagePullBackOff" and len(images.pulls) == 1
    del images.pull_errors["127.0.0.1:5000/app:1"]
    events: list = []
    await mgr.ensure_image(pod, c, [], now=111, events=events)
    assert [r for _, r, _ in events] == ["Pulling", "Pulled"]
    with pytest.raises(ImageError) as e:
        await mgr.ensure_image(pod, {"name": "c", "image": "nothere:1", "imagePullPolicy": "Never"}, [], now=1)
    assert e.value.reason == "ErrImageNeverPull"


def _exited(tmp: Path, code: int, policy: str, message: str, log: str) -> ContainerStatus:
    term = tmp / "term"
    term.write_text(message)
    logf = tmp / "0.log"
    logf.write_text("".join(f"2026-01-01T00:00:00Z stderr F {line}\n" for line in log.splitlines()))
    return ContainerStatus("id", "sb", ContainerMetadata("c"), ContainerState.EXITED, 1, exit_code=code,
                           log_path=str(logf), annotations={ANN_TERMINATION_HOST_PATH: str(term),
                                                            ANN_TERMINATION_POLICY: policy})


def test_termination_message_file_and_fallback(tmp_path: Path) -> None:
    assert termination_message(_exited(tmp_path, 1, "File", "bye", "log line")) == "bye"
    assert termination_message(_exited(tmp_path, 1, "FallbackToLogsOnError", "", "boom\nlast")) == "boom\nlast\n"
    assert termination_message(_exited(tmp_path, 0, "FallbackToLogsOnError", "", "fine")) == ""


async def test_http_and_tcp_handlers() -> None:
    hits: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req = (await reader.readuntil(b"\r\n\r\n")).decode()
        hits.append(req.split("\r\n")[0])
        code = b"200 OK" if "/ok" in req else b"500 Boom"
        writer.write(b"HTTP/1.1 " + code + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rt = FakeRuntime()
    c = {"ports": [{"name": "web", "containerPort": port}]}
    try:
        ok = await run_handler({"httpGet": {"path": "/ok", "port": "web"}}, runtime=rt, container_id="x",
                               container=c, pod_ip="127.0.0.1", timeout=2)
        bad = await run_handler({"httpGet": {"path": "/bad", "port": port}}, runtime=rt, container_id="x",
                                container=c, pod_ip="127.0.0.1", timeout=2)
        tcp = await run_handler({"tcpSocket": {"port": port}}, runtime=rt, container_id="x", container=c,
                                pod_ip="127.0.0.1", timeout=2)
    finally:
        server.close()
        await server.wait_closed()
    closed = await run_handler({"tcpSocket": {"port": port}}, runtime=rt, container_id="x", container=c,
                               pod_ip="127.0.0.1", timeout=2)
    assert ok.ok and not bad.ok and "500" in bad.message and tcp.ok and not closed.ok
    assert hits[:2] == ["GET /ok HTTP/1.1", "GET /bad HTTP/1.1"]

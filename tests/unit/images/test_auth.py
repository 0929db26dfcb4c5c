"""Credentials (docker config, pull secrets) and the bearer/basic flows against a loopback fake registry."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from aiohttp import web
import pytest

from kubelet.runtime.images.auth import from_pull_secret, load_docker_config, parse_challenge
from kubelet.runtime.images.errors import RegistryError
from kubelet.runtime.images.registry import RegistryClient, RegistryConfig
from kubelet.runtime.images.service import auth_for_image
from kubelet.runtime.images.store import ImageStore
from tests.unit.images.conftest import base_store


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_docker_config_and_pull_secret(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": _b64("hub:pw")},
                                         "127.0.0.1:5000": {"username": "u", "password": "p"}}}))
    creds = load_docker_config(cfg)
    assert (creds["docker.io"].username, creds["docker.io"].password) == ("hub", "pw")
    assert creds["127.0.0.1:5000"].basic_header() == "Basic " + _b64("u:p")
    secret = {".dockerconfigjson": _b64(json.dumps({"auths": {"http://127.0.0.1:5000": {"auth": _b64("a:b:c")}}}))}
    got = from_pull_secret(secret)
    assert (got["127.0.0.1:5000"].username, got["127.0.0.1:5000"].password) == ("a", "b:c")
    auth = auth_for_image("127.0.0.1:5000/x/y:1", [{}, secret])
    assert auth is not None and auth.username == "a"
    assert auth_for_image("busybox", [secret]) is None


def test_parse_challenge() -> None:
    scheme, params = parse_challenge('Bearer realm="https://auth.example/token",service="registry.example",'
                                     'scope="repository:a/b:pull"')
    assert scheme == "bearer" and params == {"realm": "https://auth.example/token", "service": "registry.example",
                                             "scope": "repository:a/b:pull"}
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


def _fake_registry(store: ImageStore, mode: str, seen: list[str]) -> web.Application:
    """A token-protected (mode=bearer) or basic-protected registry serving ``store``'s busybox."""
    img = store.resolve("busybox:1.35")
    app = web.Application()

    def authorized(request: web.Request) -> bool:
        h = request.headers.get("Authorization", "")
        return h == "Bearer tok-for-repository:library/busybox:pull" if mode == "bearer" \
            else h == "Basic " + _b64("user:secret")

    def challenge(request: web.Request) -> web.Response:
        host = request.host
        value = (f'Bearer realm="http://{host}/token",service="fake",scope="repository:library/busybox:pull"'
                 if mode == "bearer" else 'Basic realm="fake"')
        return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                                 status=401, headers={"WWW-Authenticate": value})

    async def token(request: web.Request) -> web.Response:
        seen.append(f"token {request.query.get('scope')} {request.headers.get('Authorization', '')}")
        if request.headers.get("Authorization") != "Basic " + _b64("user:secret"):
            return web.json_response({"errors": [{"code": "DENIED", "message": "bad credentials"}]}, status=401)
        return web.json_response({"token": f"tok-for-{request.query['scope']}"})

    async def manifest(request: web.Request) -> web.Response:
        if not authorized(request):
            return challenge(request)
        body = store.blobs.read(img.manifest_digest)
        return web.Response(body=body, content_type=img.media_type,
                            headers={"Docker-Content-Digest": img.manifest_digest})

    async def blob(request: web.Request) -> web.StreamResponse:
        if not authorized(request):
            return challenge(request)
        return web.FileResponse(store.blobs.path(request.match_info["digest"]))

    app.router.add_get("/token", token)
    app.router.add_get("/v2/library/busybox/manifests/{ref}", manifest)
    app.router.add_get("/v2/library/busybox/blobs/{digest}", blob)
    return app


@pytest.mark.parametrize("mode", ["bearer", "basic"])
async def test_auth_flows_on_loopback(tmp_path: Path, mode: str, base_template: Path) -> None:
    src = base_store(base_template, tmp_path / "src")
    seen: list[str] = []
    runner = web.AppRunner(_fake_registry(src, mode, seen))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        ref = f"127.0.0.1:{port}/library/busybox:1.35"
        async with RegistryClient(RegistryConfig(offline=True)) as c:
            with pytest.raises(RegistryError, match="bad credentials|user name and password"):
                await c.pull(ImageStore(tmp_path / "anon"), ref)
        secret = {".dockerconfigjson": _b64(json.dumps({"auths": {f"127.0.0.1:{port}": {"auth": _b64("user:secret")}}}))}
        cfg = RegistryConfig(offline=True, credentials=from_pull_secret(secret))
        async with RegistryClient(cfg) as c:
            img = await c.pull(ImageStore(tmp_path / "dst"), ref)
        assert img.manifest_digest == src.resolve("busybox:1.35").manifest_digest
        if mode == "bearer":
            assert f"token repository:library/busybox:pull Basic {_b64('user:secret')}" in seen
    finally:
        await runner.cleanup()

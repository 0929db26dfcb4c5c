"""Pull and push against a real docker-registry on loopback, with images pushed by skopeo and by kubelite."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from kubelet.runtime.images import oci
from kubelet.runtime.images.base import ensure_base_images
from kubelet.runtime.images.errors import DigestMismatch, OfflineError, RegistryError
from kubelet.runtime.images.reference import parse
from kubelet.runtime.images.registry import RegistryClient
from kubelet.runtime.images.store import ImageStore
from tests.integration.images.conftest import Registry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pushed(registry: Registry, umoci_layout: Path) -> dict[str, str]:
    """The umoci image pushed by skopeo as an OCI manifest and as Docker v2s2, plus an index over it."""
    h = registry.host
    registry.skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{umoci_layout}:1.0", f"docker://{h}/mini/oci:1.0")
    registry.skopeo("copy", "-q", "--dest-tls-verify=false", "--format", "v2s2", f"oci:{umoci_layout}:1.0",
                    f"docker://{h}/mini/v2s2:1.0")
    registry.skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{umoci_layout}:1.0", f"docker://{h}/mini/idx:m")
    req = urllib.request.Request(f"http://{h}/v2/mini/idx/manifests/m", headers={"Accept": oci.OCI_MANIFEST})
    with urllib.request.urlopen(req) as r:
        mbytes = r.read()
    index = oci.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [
        {**oci.descriptor(oci.OCI_MANIFEST, mbytes), "platform": {"os": "linux", "architecture": "s390x"}},
        {**oci.descriptor(oci.OCI_MANIFEST, mbytes), "platform": {"os": "linux", "architecture": "amd64"}},
    ]})
    put = urllib.request.Request(f"http://{h}/v2/mini/idx/manifests/multi", data=index, method="PUT",
                                 headers={"Content-Type": oci.OCI_INDEX})
    urllib.request.urlopen(put).close()
    return {"manifest": oci.sha256_digest(mbytes), "index": oci.sha256_digest(index)}


async def test_pull_oci_and_v2s2_by_tag(tmp_path: Path, registry: Registry, pushed: dict[str, str]) -> None:
    store = ImageStore(tmp_path / "s")
    async with RegistryClient(registry.config) as c:
        a = await c.pull(store, f"{registry.host}/mini/oci:1.0")
        b = await c.pull(store, f"{registry.host}/mini/v2s2:1.0")
    assert a.media_type == oci.OCI_MANIFEST and b.media_type == oci.DOCKER_MANIFEST
    assert a.id == b.id and len(a.layers) == 3
    assert a.repo_digests == (f"{registry.host}/mini/oci@{pushed['manifest']}",)
    assert (a.layers[1].path / "etc/one").read_text() == "one\n"
    assert len(list(store.layers_dir.iterdir())) == 3


async def test_pull_by_digest_and_index(tmp_path: Path, registry: Registry, pushed: dict[str, str]) -> None:
    store = ImageStore(tmp_path / "s")
    async with RegistryClient(registry.config) as c:
        by_digest = await c.pull(store, f"{registry.host}/mini/oci@{pushed['manifest']}")
        via_index = await c.pull(store, f"{registry.host}/mini/idx:multi")
    assert by_digest.manifest_digest == pushed["manifest"]
    assert via_index.manifest_digest == pushed["manifest"]
    assert f"{registry.host}/mini/idx@{pushed['index']}" in via_index.repo_digests
    assert store.get(f"{registry.host}/mini/idx@{pushed['index']}") is not None
    assert store.blobs.has(pushed["index"])   # kept with the image, so gc does not drop it
    store.prune()
    assert store.blobs.has(pushed["index"])


async def test_push_by_kubelite_and_pull_back_byte_identical(tmp_path: Path, registry: Registry) -> None:
    src = ImageStore(tmp_path / "src")
    base = ensure_base_images(src)
    ref = f"{registry.host}/kubelite/busybox:1.35"
    async with RegistryClient(registry.config) as c:
        digest = await c.push(src, "busybox:1.35", ref)
        assert digest == base.manifest_digest
        again = await c.push(src, "busybox:1.35", ref)  # all blobs already there
        assert again == digest
        dst = ImageStore(tmp_path / "dst")
        pulled = await c.pull(dst, ref)
    assert pulled.manifest_digest == base.manifest_digest and pulled.id == base.id
    for d in [base.manifest_digest, base.id, *(layer.digest for layer in base.layers)]:
        assert dst.blobs.read(d) == src.blobs.read(d)


async def test_corrupted_blob_in_registry_refused(tmp_path: Path, registry: Registry, umoci_layout: Path) -> None:
    registry.skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{umoci_layout}:1.0",
                    f"docker://{registry.host}/mini/corrupt:1.0")
    with urllib.request.urlopen(urllib.request.Request(
            f"http://{registry.host}/v2/mini/corrupt/manifests/1.0", headers={"Accept": oci.OCI_MANIFEST})) as r:
        manifest = json.loads(r.read())
    # corrupt the biggest layer in the registry's own storage (shared by the other repos: restore after)
    layer = max(manifest["layers"], key=lambda d: d["size"])["digest"][7:]
    data_file = registry.dir / "storage/docker/registry/v2/blobs/sha256" / layer[:2] / layer / "data"
    good = data_file.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    data_file.write_bytes(bytes(bad))
    store = ImageStore(tmp_path / "s")
    try:
        async with RegistryClient(registry.config) as c:
            with pytest.raises(DigestMismatch, match="failed verification"):
                await c.pull(store, f"{registry.host}/mini/corrupt:1.0")
    finally:
        data_file.write_bytes(good)
    assert store.list() == [] and not store.blobs.has("sha256:" + layer)
    assert not (store.blobs.tmp / f"{layer}.partial").exists()


async def test_resume_from_partial_download(tmp_path: Path, registry: Registry, pushed: dict[str, str]) -> None:
    store = ImageStore(tmp_path / "s")
    async with RegistryClient(registry.config) as c:
        m = json.loads((await c.get_manifest(parse(f"{registry.host}/mini/oci:1.0")))[0])
        big = max(m["layers"], key=lambda d: d["size"])
        with urllib.request.urlopen(f"http://{registry.host}/v2/mini/oci/blobs/{big['digest']}") as r:
            content = r.read()
        store.blobs.tmp.mkdir(parents=True, exist_ok=True)
        (store.blobs.tmp / (big["digest"][7:] + ".partial")).write_bytes(content[:-1000])
        await c.pull(store, f"{registry.host}/mini/oci:1.0")
        small = sum(d["size"] for d in m["layers"] if d is not big) + m["config"]["size"]
        assert c.downloaded == small + 1000     # only the missing tail of the big layer came
    assert store.blobs.read(big["digest"]) == content


async def test_resume_with_a_bad_partial_starts_over(tmp_path: Path, registry: Registry,
                                                    pushed: dict[str, str]) -> None:
    store = ImageStore(tmp_path / "s")
    async with RegistryClient(registry.config) as c:
        m = json.loads((await c.get_manifest(parse(f"{registry.host}/mini/oci:1.0")))[0])
        big = max(m["layers"], key=lambda d: d["size"])
        store.blobs.tmp.mkdir(parents=True, exist_ok=True)
        (store.blobs.tmp / (big["digest"][7:] + ".partial")).write_bytes(b"garbage" * 100)
        img = await c.pull(store, f"{registry.host}/mini/oci:1.0")
    assert store.blobs.has(big["digest"]) and len(img.layers) == 3


async def test_offline_refuses_non_loopback_at_once(tmp_path: Path, registry: Registry) -> None:
    store = ImageStore(tmp_path / "s")
    async with RegistryClient(registry.config) as c:
        for ref in ("busybox", "registry.k8s.io/pause:3.9", "10.1.2.3:5000/x:1"):
            with pytest.raises(OfflineError, match="offline"):
                await c.pull(store, ref)


async def test_missing_image_names_the_registry_error(tmp_path: Path, registry: Registry) -> None:
    async with RegistryClient(registry.config) as c:
        with pytest.raises(RegistryError, match="MANIFEST_UNKNOWN|NAME_UNKNOWN"):
            await c.pull(ImageStore(tmp_path / "s"), f"{registry.host}/mini/absent:1")


async def test_chunked_push_and_cross_repo_mount(tmp_path: Path, registry: Registry,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from kubelet.runtime.images import registry as registry_mod
    monkeypatch.setattr(registry_mod, "MONOLITHIC_MAX", 100_000)
    monkeypatch.setattr(registry_mod, "PATCH_CHUNK", 256 * 1024)
    store = ImageStore(tmp_path / "s")
    base = ensure_base_images(store)
    first = f"{registry.host}/chunked/a:1"
    store.tag("busybox:1.35", first)
    events: list[tuple[str, str]] = []
    async with RegistryClient(registry.config, progress=lambda i, s, d, t: events.append((i, s))) as c:
        await c.push(store, first)
        layer = base.layers[0].digest
        assert (layer, "Pushing") in events and (layer, "Pushed") in events   # went up in PATCH chunks
        events.clear()
        await c.push(store, first, f"{registry.host}/chunked/b:1")        # same registry, another repo
        assert (layer, "Mounted") in events
        pulled = await c.pull(ImageStore(tmp_path / "back"), f"{registry.host}/chunked/b:1")
    assert pulled.manifest_digest == base.manifest_digest


def test_two_processes_pulling_at_once_share_the_downloads(tmp_path: Path, registry: Registry,
                                                           pushed: dict[str, str]) -> None:
    import os
    import subprocess
    import sys
    root = tmp_path / "shared"
    script = ("import asyncio, sys; from kubelet.runtime.images.registry import RegistryClient, RegistryConfig; "
              "from kubelet.runtime.images.store import ImageStore\n"
              "async def main():\n"
              "    async with RegistryClient(RegistryConfig(offline=True)) as c:\n"
              "        print((await c.pull(ImageStore(sys.argv[1]), sys.argv[2])).id)\n"
              "asyncio.run(main())")
    repo = Path(__file__).resolve().parents[3]
    procs = [subprocess.Popen([sys.executable, "-c", script, str(root), f"{registry.host}/mini/oci:1.0"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(repo)})
             for _ in range(3)]
    ids = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert [p.returncode for p in procs] == [0, 0, 0] and len(ids) == 1
    store = ImageStore(root)
    img = store.resolve(f"{registry.host}/mini/oci:1.0")
    assert all(store.blobs.has(layer.digest) for layer in img.layers)
    assert not list(store.blobs.tmp.glob("*.partial"))

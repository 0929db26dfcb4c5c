"""The kubelet's ImageService on a real store and the loopback registry: policies, typed errors, status."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubelet import cri
from kubelet.runtime.images.base import BASE_TAG
from kubelet.runtime.images.registry import RegistryConfig
from kubelet.runtime.images.service import (ALWAYS, IF_NOT_PRESENT, NEVER, ImageService, default_pull_policy,
                                            ensure_image, open_service)
from kubelet.runtime.images.store import ImageStore
from tests.integration.images.conftest import Registry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def remote(registry: Registry, umoci_layout: Path) -> str:
    ref = f"{registry.host}/svc/app:1.0"
    registry.skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{umoci_layout}:1.0", f"docker://{ref}")
    return ref


def test_default_pull_policy() -> None:
    assert default_pull_policy("busybox") == ALWAYS
    assert default_pull_policy("busybox:latest") == ALWAYS
    assert default_pull_policy("busybox:1.35") == IF_NOT_PRESENT
    assert default_pull_policy("busybox@sha256:" + "a" * 64) == IF_NOT_PRESENT


async def test_pull_status_list_remove(tmp_path: Path, remote: str) -> None:
    svc = ImageService(ImageStore(tmp_path / "s"), RegistryConfig(offline=True))
    assert await svc.image_status(remote) is None
    image_id = await svc.pull_image(remote)
    status = await svc.image_status(remote)
    assert status is not None and status.id == image_id
    assert status.repo_tags == (remote,) and status.repo_digests[0].startswith(remote.rsplit(":", 1)[0] + "@sha256:")
    assert [i.id for i in await svc.list_images()] == [image_id]
    fs = await svc.image_fs_info()
    assert fs.used_bytes > 1_000_000 and fs.inodes_used > 10 and fs.capacity_bytes >= fs.available_bytes > 0
    await svc.remove_image(image_id)
    await svc.remove_image(image_id)   # idempotent
    assert await svc.list_images() == []
    after = await svc.image_fs_info()
    assert after.used_bytes < fs.used_bytes - 1_000_000        # the content went too (image GC frees disk)
    assert list(svc.store.layers_dir.iterdir()) == []


async def test_policies_and_typed_errors(tmp_path: Path, registry: Registry, remote: str) -> None:
    svc = ImageService(ImageStore(tmp_path / "s"), RegistryConfig(offline=True))
    with pytest.raises(cri.ImageNeverPullError, match="not present with pull policy of Never"):
        await ensure_image(svc, remote, NEVER)
    image_id = await ensure_image(svc, remote, IF_NOT_PRESENT)
    assert await ensure_image(svc, remote, NEVER) == image_id
    assert await ensure_image(svc, remote, ALWAYS) == image_id
    with pytest.raises(cri.ImagePullError, match="MANIFEST_UNKNOWN|NAME_UNKNOWN"):
        await ensure_image(svc, f"{registry.host}/svc/missing:1", IF_NOT_PRESENT)
    with pytest.raises(cri.ImagePullError, match="offline"):
        await svc.pull_image("docker.io/library/alpine:3.19")
    with pytest.raises(cri.ImageInspectError):
        await svc.pull_image("Not A Ref")


async def test_base_image_needs_no_network(tmp_path: Path) -> None:
    svc = ImageService(ImageStore(tmp_path / "s"), RegistryConfig(offline=True))
    image_id = await ensure_image(svc, "busybox:1.35")
    status = await svc.image_status("busybox:1.35")
    assert status is not None and status.id == image_id and BASE_TAG in status.repo_tags
    assert (await open_service(tmp_path / "s2").image_status("busybox")) is not None


async def test_offline_setting_from_the_store(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "s")
    (store.root / "registries.json").write_text('{"offline": true}')
    svc = ImageService(store)            # as the kubelet builds it: settings come from the store
    assert svc.registry.offline
    with pytest.raises(cri.ImagePullError, match="offline mode"):
        await svc.pull_image("registry.k8s.io/pause:3.9")

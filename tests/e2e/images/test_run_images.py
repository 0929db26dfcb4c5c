"""Every kind of image runs as a real container: the offline base, imported archives, pulled, built."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kubelet.runtime.images.archive import import_archive
from kubelet.runtime.images.base import ensure_base_images
from kubelet.runtime.images.build import build
from kubelet.runtime.images.layers import changes
from kubelet.runtime.images.registry import RegistryClient
from kubelet.runtime.images.runner import OciRunStep
from kubelet.runtime.images.store import ImageStore
from kubelet.runtime.service import Runtime
from tests.e2e.images.conftest import run_image
from tests.e2e.runtime.conftest import Env
from tests.integration.images.conftest import Registry

pytestmark = pytest.mark.e2e


async def test_base_image_runs(env: Env, store: ImageStore, irt: Runtime) -> None:
    ensure_base_images(store)
    code, out = await run_image(irt, env, "busybox:1.35", "sh", "-c",
                                "echo hello; id -un; ls /bin/busybox; test -d /tmp && echo $PATH; exit 4")
    assert code == 4
    assert out == ["hello", "root", "/bin/busybox", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


async def test_imported_archives_run(env: Env, store: ImageStore, irt: Runtime, umoci_layout: Path) -> None:
    for kind in ("docker-archive", "oci-archive"):
        archive = env.root / f"{kind}.tar"
        dest = f"{kind}:{archive}:" + ("mini/x:1.0" if kind == "docker-archive" else "1.0")
        subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", f"oci:{umoci_layout}:1.0", dest], check=True)
        [img] = import_archive(store, archive, names=[f"imported/{kind}:1"])
        code, out = await run_image(irt, env, f"imported/{kind}:1", "/bin/sh", "-c",
                                    "cat /etc/two; test -e /etc/one && echo one-present || echo one-gone")
        assert (code, out) == (0, ["two", "one-gone"])


async def test_pulled_image_runs(env: Env, store: ImageStore, irt: Runtime, registry: Registry,
                                 umoci_layout: Path) -> None:
    ref = f"{registry.host}/e2e/mini:1.0"
    registry.skopeo("copy", "-q", "--dest-tls-verify=false", "--format", "v2s2", f"oci:{umoci_layout}:1.0",
                    f"docker://{ref}")
    async with RegistryClient(registry.config) as c:
        await c.pull(store, ref)
    code, out = await run_image(irt, env, ref, "/bin/sh", "-c", "ls /etc")
    assert code == 0 and "two" in out and "one" not in out


async def test_built_image_deletion_is_gone_in_a_container(env: Env, store: ImageStore, irt: Runtime) -> None:
    ensure_base_images(store)
    ctx = env.root / "ctx"
    ctx.mkdir()
    (ctx / "notes.txt").write_text("first layer\n")
    (ctx / "Dockerfile").write_text("FROM busybox:1.35\nCOPY notes.txt /srv/notes.txt\n"
                                    "RUN rm /srv/notes.txt && echo second > /srv/second\nCMD [\"ls\", \"/srv\"]\n")
    result = build(store, ctx, ["deleted:1"], runner=OciRunStep(state_root=env.root / "build-oci"))
    img = result.image
    per_layer = list(changes([layer.path for layer in img.layers]))
    assert ("A", "/srv/notes.txt") in per_layer[1]
    assert ("D", "/srv/notes.txt") in per_layer[2] and ("A", "/srv/second") in per_layer[2]
    code, out = await run_image(irt, env, "deleted:1", "ls", "/srv")
    assert (code, out) == (0, ["second"])
    again = build(store, ctx, ["deleted:1"], runner=OciRunStep(state_root=env.root / "build-oci"))
    assert again.cached == again.cacheable and again.image.id == img.id


async def test_prune_keeps_layers_a_running_container_uses(env: Env, store: ImageStore, irt: Runtime) -> None:
    import asyncio
    import time as time_
    from kubelet import cri
    ensure_base_images(store)
    ctx = env.root / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("still here\n")
    (ctx / "Dockerfile").write_text("FROM busybox:1.35\nCOPY f /f\n")
    img = build(store, ctx, ["inuse:1"])
    top = img.image.layers[-1].path
    pod = env.pod("inuse")
    sid = await irt.run_pod_sandbox(pod)
    cfg = cri.ContainerConfig(metadata=cri.ContainerMetadata(name="c"), image="inuse:1", log_path="c/0.log",
                              command=("sh", "-c", "while ! test -e /tmp/go; do sleep 0.05; done; cat /f"))
    cid = await irt.create_container(sid, cfg, pod)
    await irt.start_container(cid)
    store.remove("inuse:1")
    report = store.prune()
    assert top.is_dir() and report.layers == 0 and store.get(img.image.id) is None   # image gone, layer kept
    res = await irt.exec_sync(cid, ["touch", "/tmp/go"], timeout=10)
    assert res.exit_code == 0
    deadline = time_.monotonic() + 10
    while (st := await irt.container_status(cid)).state != cri.ContainerState.EXITED:
        assert time_.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert st.exit_code == 0
    await irt.remove_pod_sandbox(sid)
    await irt.remove_container(cid)
    store.prune()
    assert not top.exists()                                     # unused now: collected

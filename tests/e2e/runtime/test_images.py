"""Containers from the node's image store: the rootfs is the image's own layers as overlay lowerdirs."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from kubelet import cri
from kubelet.runtime.images import ImageStore
from kubelet.runtime.images.build import build
from kubelet.runtime.service import Runtime

from .conftest import Env
from .test_containers import log_lines, wait_exited

pytestmark = pytest.mark.e2e


async def test_container_from_a_two_layer_image(env: Env) -> None:
    ctx = env.root / "ctx"
    shutil.copytree(env.rootfs, ctx / "rootfs", symlinks=True)
    (ctx / "hello.txt").write_text("from layer two\n")
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY rootfs/ /\nCOPY hello.txt /srv/hello.txt\n"
                                    "ENV GREETING=hi\nWORKDIR /srv\nCMD [\"sh\", \"-c\", \"echo $GREETING; pwd; cat hello.txt\"]\n")
    store = ImageStore(env.root / "images")
    await asyncio.to_thread(build, store, ctx, ["kubelite.test/two-layers:1"])
    image = store.get("kubelite.test/two-layers:1")
    assert image is not None and len(image.layers) == 2
    async with Runtime(str(env.root / "state"), cgroup_root=env.cg_root, image_store=store) as rt:
        try:
            pod = env.pod("img")
            sid = await rt.run_pod_sandbox(pod)
            cfg = cri.ContainerConfig(cri.ContainerMetadata("c"), "kubelite.test/two-layers:1", log_path="c.log")
            cid = await rt.create_container(sid, cfg, pod)
            spec = json.loads(Path(rt.containers_dir, cid, "bundle", "config.json").read_text())
            [mount] = json.loads(spec["annotations"]["org.kubelite.rootfs.mounts"])
            lower = [o for o in mount["options"] if o.startswith("lowerdir=")][0][len("lowerdir="):]
            assert lower.split(":") == [str(layer.path) for layer in reversed(image.layers)]
            await rt.start_container(cid)
            st = await wait_exited(rt, cid)
            assert st.exit_code == 0 and log_lines(st.log_path) == ["hi", "/srv", "from layer two"]
            assert st.image_id == image.id
        finally:
            for s in await rt.list_pod_sandboxes():
                await rt.remove_pod_sandbox(s.id)

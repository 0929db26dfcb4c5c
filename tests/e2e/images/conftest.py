"""Fixtures: the runtime's private world and leak check (from tests.e2e.runtime), a Runtime reading an
image store, and the loopback registry and umoci image from the integration fixtures."""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator

import pytest

from kubelet import cri
from kubelet.runtime.images.store import ImageStore
from kubelet.runtime.service import Runtime
from tests.e2e.runtime.conftest import Env, busybox_rootfs, env, remove_all  # noqa: F401  (fixtures)
from tests.integration.images.conftest import registry, umoci_layout  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _links_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests make no network links (no pod network), so the runtime's leak check skips links:
    other suites running at the same time on this machine create ``kubelite*`` veths of their own.
    Mounts, cgroups and processes are still checked."""
    import tests.e2e.runtime.conftest as runtime_conftest
    monkeypatch.setattr(runtime_conftest, "_links", lambda: set())


@pytest.fixture
def store(env: Env) -> ImageStore:
    return ImageStore(env.root / "images")


@pytest.fixture
async def irt(env: Env, store: ImageStore) -> AsyncIterator[Runtime]:
    async with Runtime(str(env.root / "state"), cgroup_root=env.cg_root, image_store=store) as r:
        try:
            yield r
        finally:
            await remove_all(r)


async def run_image(rt: Runtime, env: Env, image: str, *cmd: str, timeout: float = 20) -> tuple[int, list[str]]:
    """Run ``cmd`` in a container of ``image`` in a fresh pod; returns (exit code, output lines)."""
    pod = env.pod(f"img{abs(hash((image, cmd))) % 100000}")
    sid = await rt.run_pod_sandbox(pod)
    cfg = cri.ContainerConfig(metadata=cri.ContainerMetadata(name="c"), image=image, command=cmd,
                              log_path="c/0.log")
    cid = await rt.create_container(sid, cfg, pod)
    await rt.start_container(cid)
    deadline = time.monotonic() + timeout
    while (st := await rt.container_status(cid)).state != cri.ContainerState.EXITED:
        assert time.monotonic() < deadline, f"container still {st.state}"
        await asyncio.sleep(0.02)
    with open(st.log_path) as f:
        lines = [line.rstrip("\n").split(" ", 3)[3] for line in f]
    await rt.remove_pod_sandbox(sid)
    return st.exit_code, lines


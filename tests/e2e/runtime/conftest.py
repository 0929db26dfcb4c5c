"""Fixtures for the runtime's e2e tests: a busybox rootfs, a Runtime on a private root, and a leak check.

Every test gets its own state root and cgroup root (with the pid and a random suffix in their names);
after it, ``no_leaks`` fails the test if any mount, cgroup, veth, network namespace or process made by
it is left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from kubelet import cri
from kubelet.runtime import network
from kubelet.runtime.service import Runtime
from kubelet.runtime.snapshots import scratch_root
from tests.support.leaks import links as _links, mounts as mount_points, procs_mentioning, remove_cgroups

REPO = Path(__file__).resolve().parents[3]
APPLETS = ("sh", "true", "cat", "echo", "sleep", "hostname", "ps", "ls", "id", "mknod", "mount", "nc", "ipcs",
           "ipcmk", "dd", "head", "yes", "stat", "grep", "wc", "kill", "env", "touch", "test", "ip", "timeout")

pytestmark = pytest.mark.e2e


def _cgroups(rel: str) -> list[str]:
    """Cgroups under ``rel`` other than the node-level ``rel`` and ``rel/kubepods`` (the node owns those)."""
    out = []
    for c in os.listdir("/sys/fs/cgroup"):
        base = f"/sys/fs/cgroup/{c}/{rel}"
        for dirpath, _dirs, _files in os.walk(base):
            if dirpath not in (base, f"{base}/kubepods", f"{base}/kubepods/burstable", f"{base}/kubepods/besteffort"):
                out.append(dirpath)
    return out


def _our_links(root: Path, e: "Env") -> set[str]:
    """Pod addresses still allocated in this test's IPAM, and the host veths of their sandboxes (other
    helpers' pods on this host share the veth prefix, so the names come from our own sandbox ids)."""
    if not (root / "state" / "ipam").exists():
        return set()
    owners = set(network.Ipam(root / "state" / "ipam", e.pod_cidr).allocations().values())
    return {f"ipam:{o}" for o in owners} | {network.host_veth_name(o) for o in owners} & _links()


@pytest.fixture(scope="session", autouse=True)
def _shared_bridge_removed() -> Iterator[None]:
    """Each test's node leaves the shared bridge (another node may be on it); at the end it goes when nobody
    uses it any more (no pod veth, no node's gateway address: kubelite down's rule)."""
    yield
    from kubelite.cli.kubelet_cleanup import _remove_bridge_if_unused
    _remove_bridge_if_unused()


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("busybox") / "rootfs"
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc", "root"):
        (r / d).mkdir(parents=True)
    shutil.copy("/bin/busybox", r / "bin" / "busybox")
    for a in APPLETS:
        (r / "bin" / a).symlink_to("busybox")
    (r / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    (r / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (r / "tmp").chmod(0o1777)
    return r


class Env:
    """One test's runtime world: its root, cgroup root and helpers to describe pods."""

    def __init__(self, root: Path, cg_root: str, rootfs: Path) -> None:
        self.root, self.cg_root, self.rootfs = root, cg_root, rootfs
        self.image = f"rootfs:{rootfs}"
        self.logs = root / "logs"

    def pod(self, name: str, **kw: object) -> cri.PodSandboxConfig:
        uid = uuid.uuid4().hex
        return cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name=name, namespace="default", uid=uid), hostname=name,
            log_directory=str(self.logs / f"default_{name}_{uid}"), cgroup_parent=f"kubepods/pod{uid}", **kw)

    def container(self, name: str, *cmd: str, **kw: object) -> cri.ContainerConfig:
        return cri.ContainerConfig(metadata=cri.ContainerMetadata(name=name), image=self.image, command=cmd,
                                   log_path=f"{name}/0.log", **kw)

    @property
    def pod_cidr(self) -> str:
        """A node subnet of its own for this test process (other helpers' nodes use low indexes)."""
        return network.node_subnet(network.DEFAULT_CLUSTER_CIDR, 150 + os.getpid() % 100)

    def network(self) -> network.NodeNetwork:
        return network.NodeNetwork(self.pod_cidr, network.DEFAULT_CLUSTER_CIDR, self.root / "state" / "ipam")

    def runtime(self) -> Runtime:
        return Runtime(str(self.root / "state"), cgroup_root=self.cg_root, network=self.network())

    def cli(self, *args: str, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        p = subprocess.run([sys.executable, "-m", "kubelite", "runtime", "--root", str(self.root / "state"),
                            "--cgroup-root", self.cg_root, "--log-root", str(self.logs),
                            "--pod-cidr", self.pod_cidr, *args], capture_output=True, text=True, env=env,
                           timeout=60, **kw)  # type: ignore[call-overload]
        if check and p.returncode != 0:
            raise AssertionError(f"kubelite runtime {' '.join(args)} -> {p.returncode}: {p.stderr}")
        return p


@pytest.fixture
def env(busybox_rootfs: Path) -> Iterator[Env]:
    """A private runtime world, checked for leaks afterwards."""
    tag = f"kubelite-t{os.getpid()}-{uuid.uuid4().hex[:6]}"
    root = Path("/tmp") / tag
    root.mkdir()
    mounts = mount_points()
    e = Env(root, tag, busybox_rootfs)
    try:
        yield e
    finally:
        left_links = _our_links(root, e)  # before the node's IPAM goes
        if (root / "state" / "ipam").exists():
            e.network().remove()  # the node's gateway address off the shared bridge (which stays)
        deadline = time.monotonic() + 5
        while True:
            left_mounts = {m for m in mount_points() - mounts if str(root) in m}
            left_cg = _cgroups(tag)
            left_procs = procs_mentioning(str(root))
            if not (left_mounts or left_cg or left_procs) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for p in left_procs:
            try:
                os.kill(p, 9)
            except ProcessLookupError:
                pass
        for m in sorted(left_mounts, reverse=True):
            subprocess.run(["umount", "-l", m], check=False)
        remove_cgroups(tag, kill=True)
        time.sleep(0.1)  # only after a leak: the killed processes must be gone before the last rmdir
        remove_cgroups(tag, kill=True)
        scratch = scratch_root(root / "state")
        left_scratch = [d for d, _dirs, _files in os.walk(scratch)] if scratch != root / "state" else []
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        assert not left_mounts, f"mounts left: {left_mounts}"
        assert not left_cg, f"cgroups left: {left_cg}"
        assert not left_procs, f"processes left: {left_procs}"
        assert not left_links, f"links left: {left_links}"
        assert not left_scratch, f"scratch dirs left: {left_scratch}"


async def remove_all(r: Runtime) -> None:
    """Remove every pod sandbox, then every container, the runtime knows (a fixture's teardown)."""
    for s in await r.list_pod_sandboxes():
        await r.remove_pod_sandbox(s.id)
    for c in await r.list_containers():
        await r.remove_container(c.id)


@pytest.fixture
async def rt(env: Env) -> AsyncIterator[Runtime]:
    async with env.runtime() as r:
        try:
            yield r
        finally:
            await remove_all(r)

"""Fixtures for the kubelet's e2e tests: a real apiserver + etcd, kubelets as real processes
(``python -m kubelet``) on their own root, cgroup root and node name, a busybox image store, and a
leak check after each test (processes, mounts, pod cgroups, state left by the node).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import pytest

from kubelite import kubeconfig
from kubelite.api.errors import NotFound
from kubelite.client import Client
from tests.support import cluster
from tests.support.leaks import kill_procs_mentioning, mounts_under, pod_cgroups, procs_mentioning, remove_cgroups

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.e2e


async def wait_for(cond: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    """Poll an async condition until truthy (errors count as not yet); TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = await cond()
            if value:
                return value
        except (NotFound, KeyError, IndexError, TypeError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f" ({last!r})" if last else ""))
        await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kubelet.runtime.images import ImageStore, ensure_base_images
    root = tmp_path_factory.mktemp("kubelet-images")
    ensure_base_images(ImageStore(root))
    return root


class Node:
    """One kubelet process: ``start()``, ``kill9()``, ``stop(stop_pods=...)``."""

    def __init__(self, name: str, base: Path, kubeconfig_path: str, image_root: Path, *extra: str) -> None:
        self.name = name
        self.root = base / "kubelet" / name
        self.cgroup_root = f"kubelite-e2e-{name}"
        self.kubeconfig = kubeconfig_path
        self.image_root = image_root
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = base / f"{name}.log"

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kubelet", "--node-name", self.name, "--root-dir", str(self.root),
                 "--image-root", str(self.image_root), "--cgroup-root", f"{self.cgroup_root}/{self.name}",
                 "--port", "0", "--kubeconfig", self.kubeconfig, "--crash-loop-base", "1", "--pod-cidr-wait", "0", "-v", *self.extra],
                stdout=log, stderr=log, env=env, cwd=str(REPO), start_new_session=True)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self, stop_pods: bool = True, timeout: float = 30) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGUSR1 if stop_pods else signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""


class Env:
    def __init__(self, base: Path, api_url: str, image_root: Path) -> None:
        self.base = base
        self.api_url = api_url
        self.kubeconfig = str(base / "kubeconfig")
        kubeconfig.write(self.kubeconfig, kubeconfig.render(api_url))
        self.image_root = image_root
        self.nodes: list[Node] = []
        self.uses_bridge = False
        self.client = Client.from_kubeconfig(self.kubeconfig)

    def node(self, *extra: str) -> Node:
        name = f"kl{os.getpid() % 100000}{uuid.uuid4().hex[:5]}"
        n = Node(name, self.base, self.kubeconfig, self.image_root, *extra)
        self.nodes.append(n)
        n.start()
        return n

    async def ready(self, node: Node, timeout: float = 20) -> dict[str, Any]:
        async def registered() -> Any:
            assert node.proc is not None
            if node.proc.poll() is not None:
                raise RuntimeError(f"kubelet exited: {node.log_tail()}")
            n = await self.client.get("nodes", node.name)
            ready = [c for c in (n.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"]
            return n if ready and ready[0]["status"] == "True" else None
        return await wait_for(registered, timeout, f"node {node.name} Ready")

    async def pod(self, name: str, ns: str = "default") -> dict[str, Any]:
        return await self.client.get("pods", name, ns)

    async def status(self, name: str) -> dict[str, Any]:
        return (await self.pod(name)).get("status") or {}

    async def wait_status(self, name: str, pred: Callable[[dict[str, Any]], Any], timeout: float, what: str) -> Any:
        async def check() -> Any:
            s = await self.status(name)
            return s if pred(s) else None
        try:
            return await wait_for(check, timeout, f"{name}: {what}")
        except TimeoutError as exc:
            logs = "\n".join(n.log_tail(2000) for n in self.nodes)
            raise TimeoutError(f"{exc}; status={await self.status(name)}\n{logs}") from None


@pytest.fixture
async def kenv(apiserver_url: str, image_root: Path) -> AsyncIterator[Env]:
    base = Path(tempfile.mkdtemp(prefix="klt", dir="/tmp"))      # short: the runtime's unix sockets live here
    env = Env(base, apiserver_url, image_root)
    try:
        yield env
    finally:
        await env.client.close()
        for n in env.nodes:
            n.stop(stop_pods=True)
        leaks = []
        for n in env.nodes:
            leaks += [f"process {p}" for p in procs_mentioning(str(n.root))]
            leaks += [f"mount {m}" for m in mounts_under(str(n.root))]
            leaks += [f"cgroup {c}" for c in pod_cgroups(n.cgroup_root)]
            kill_procs_mentioning(str(n.root))
            remove_cgroups(n.cgroup_root)
            shutil.rmtree(n.root, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
        if env.uses_bridge:
            from kubelite.cli.kubelet_cleanup import _remove_bridge_if_unused
            _remove_bridge_if_unused()                # only when no pod veth of anyone is left on it
        assert not leaks, f"left behind: {leaks}"


def pod_manifest(name: str, node: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2, "containers": list(containers), **spec}}


def container(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox:1.35", "command": ["sh", "-c", script], **extra}


def by_name(statuses: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(s for s in statuses if s["name"] == name)


def conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status.get("conditions") or []}


@pytest.fixture
def free_port() -> Iterator[Callable[[], int]]:
    yield cluster.free_port

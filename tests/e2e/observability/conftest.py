"""A whole single-node cluster for the observability tests, started the way a user starts one: ``kubelite up``
(etcd, apiserver, scheduler, controller-manager and a kubelet, each its own process) on a temp data dir,
free loopback ports, its own node name and cgroup root, and a busybox image store. Shared by the
package's tests; stopped with SIGTERM at the end, after which nothing it made may be left.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubelite.api.errors import ApiError, NotFound
from kubelite.client import SyncClient
from kubelite.kubeconfig import KubeconfigError
from tests.support.cluster import free_port
from tests.support.leaks import kill_procs_mentioning, pod_cgroups, procs_mentioning, remove_cgroups

REPO = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.e2e


def wait_for(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``cond()`` until truthy (API errors count as not yet); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = cond()
            if value:
                return value
        except (ApiError, KubeconfigError, KeyError, IndexError, TypeError, ValueError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" ({last!r})" if last else ""))
        time.sleep(interval)


@dataclass
class Cluster:
    data_dir: Path
    node: str
    cgroup_root: str
    api_url: str
    ports: dict[str, int]
    proc: subprocess.Popen[bytes]
    image_root: Path

    @property
    def kubeconfig(self) -> str:
        return str(self.data_dir / "kubeconfig")

    def client(self) -> SyncClient:
        return SyncClient.from_kubeconfig(self.kubeconfig)

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(REPO), KUBECONFIG=self.kubeconfig)

    def kubelite(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the kubelite CLI against this cluster."""
        p = subprocess.run([sys.executable, "-m", "kubelite", *args], capture_output=True, text=True,
                           env=self.env(), cwd=str(REPO), timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubelite {' '.join(args)} failed ({p.returncode}): {p.stderr}{p.stdout}")
        return p

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, *args], capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}): {p.stderr}{p.stdout}")
        return p

    def log(self, component: str, n: int = 3000) -> str:
        try:
            return (self.data_dir / "logs" / f"{component}.log").read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def wait_pod(self, name: str, pred: Callable[[dict[str, Any]], Any], timeout: float = 60, ns: str = "default",
                 what: str = "") -> dict[str, Any]:
        with self.client() as c:
            def check() -> Any:
                pod = c.get("pods", name, ns)
                return pod if pred(pod) else None
            try:
                return wait_for(check, timeout, f"pod {ns}/{name} {what}")
            except AssertionError as exc:
                try:
                    status = c.get("pods", name, ns).get("status")
                except ApiError as err:
                    status = err
                raise AssertionError(f"{exc}\nstatus: {status}\nkubelet log:\n{self.log('kubelet')}") from None

    def wait_running(self, name: str, timeout: float = 60, ns: str = "default") -> dict[str, Any]:
        def running(p: dict[str, Any]) -> bool:
            st = p.get("status") or {}
            return st.get("phase") == "Running" and all(c.get("ready") for c in st.get("containerStatuses") or [{}])
        return self.wait_pod(name, running, timeout, ns, "Running and ready")

    def delete_pod(self, name: str, ns: str = "default", wait: bool = True) -> None:
        with self.client() as c:
            try:
                c.delete("pods", name, ns, grace_period_seconds=0)
            except NotFound:
                return
            if wait:
                def gone() -> bool:
                    try:
                        c.get("pods", name, ns)
                    except NotFound:
                        return True
                    return False
                wait_for(gone, 60, f"pod {name} deleted")


@pytest.fixture(scope="session")
def obs_image_root() -> Iterator[Path]:
    """The node's image store; world-traversable like /var/lib/kubelite (user-namespaced pods read it)."""
    from kubelet.runtime.images import ImageStore, ensure_base_images
    root = Path(tempfile.mkdtemp(prefix="kobimg", dir="/tmp"))
    root.chmod(0o755)
    ensure_base_images(ImageStore(root))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(obs_image_root: Path) -> Iterator[Cluster]:
    tag = f"{os.getpid() % 100000}{uuid.uuid4().hex[:4]}"
    data = Path(tempfile.mkdtemp(prefix=f"kob{tag}", dir="/tmp"))
    data.chmod(0o755)                       # as /var/lib/kubelite: user-namespaced containers traverse it
    node = f"obs{tag}"
    cgroup_root = f"kubelite-obs{tag}"
    ports = {k: free_port() for k in ("etcd", "peer", "api", "sched", "cm")}
    argv = [sys.executable, "-m", "kubelite", "up", "--data-dir", str(data), "--etcd-port", str(ports["etcd"]),
            "--etcd-peer-port", str(ports["peer"]), "--apiserver-port", str(ports["api"]),
            "--scheduler-port", str(ports["sched"]), "--controller-manager-port", str(ports["cm"]),
            "--node-name", node, "--kubelet-arg=--port=0", f"--kubelet-arg=--root-dir={data}/kubelet/{node}",
            f"--kubelet-arg=--image-root={obs_image_root}", f"--kubelet-arg=--cgroup-root={cgroup_root}/{node}",
            "--kubelet-arg=--crash-loop-base=1", "--kubelet-arg=-v", "--controller-manager-arg=--node-monitor-grace-period=20"]
    log = open(data / "up.log", "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=log, env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO),
                            start_new_session=True)
    cl = Cluster(data, node, cgroup_root, f"http://127.0.0.1:{ports['api']}", ports, proc, obs_image_root)
    try:
        def node_ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"kubelite up exited: {(data / 'up.log').read_text()[-3000:]}")
            with cl.client() as c:
                n = c.get("nodes", node)
            conds = {x["type"]: x["status"] for x in (n.get("status") or {}).get("conditions") or []}
            return conds.get("Ready") == "True" and bool((n.get("spec") or {}).get("podCIDR"))
        wait_for(node_ready, 90, f"node {node} Ready")
        yield cl
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        leaks = [f"process {p}" for p in procs_mentioning(str(data))]
        leaks += [f"cgroup {c}" for c in pod_cgroups(cgroup_root)]
        kill_procs_mentioning(str(data))
        subprocess.run([sys.executable, "-m", "kubelite", "down", "--data-dir", str(data)], capture_output=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO), timeout=60)
        remove_cgroups(cgroup_root)
        shutil.rmtree(data, ignore_errors=True)
        assert not leaks, f"left behind: {leaks}"

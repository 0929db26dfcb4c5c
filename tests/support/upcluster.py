"""A whole single-node cluster started the way README tells a user to: ``kubelite up`` on a data dir.

Here the data dir is a temp one, on free loopback ports with its own node name, so clusters of several
test packages run beside each other on this machine. :class:`UpCluster` starts, stops (SIGINT as Ctrl-C,
SIGTERM, or SIGKILL as a crash) and restarts it on the same data dir, runs kubelite's CLI and the real
kubectl against it, and lists what of it is still on the machine (:meth:`UpCluster.leftovers`);
:func:`up_cluster` is the fixture body: start, yield, stop, ``kubelite down``, and fail on leftovers.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kubelite.api.errors import ApiError, NotFound
from kubelite.client import SyncClient
from kubelite.kubeconfig import KubeconfigError
from tests.support.cluster import free_port
from tests.support.leaks import alive, kill_procs_mentioning, procs_mentioning, remove_cgroups

REPO = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


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


class UpCluster:
    """A ``kubelite up`` process and what a user runs against it (kubelite's CLI and the real kubectl).

    ``cgroup_root`` empty keeps the node's default (``kubelite/<node>``); ``up_args`` are extra
    arguments of ``kubelite up`` (e.g. ``--kubelet-arg=...``)."""

    def __init__(self, data_dir: Path, image_root: Path, node: str, cgroup_root: str = "",
                 up_args: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        self.image_root = image_root
        self.node = node
        self.cgroup_root = cgroup_root or f"kubelite/{node}"
        self.up_args = list(up_args)
        self.cache_dir = data_dir / "kubectl-cache"
        self.ports = {k: free_port() for k in ("etcd", "peer", "api", "sched", "cm")}
        self.api_url = f"http://127.0.0.1:{self.ports['api']}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = datetime.datetime.now(datetime.UTC)
        self.veths: set[str] = set()           # host veths seen by `kubelite inspect`, for the leak check
        self.host_pids: set[int] = set()       # container processes seen by `kubelite inspect`

    @property
    def kubeconfig(self) -> str:
        return str(self.data_dir / "kubeconfig")

    def up(self) -> None:
        """Start ``kubelite up`` and wait until this run's kubelet reports the node Ready with a pod CIDR."""
        self.started = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        argv = [sys.executable, "-m", "kubelite", "up", "--data-dir", str(self.data_dir),
                "--etcd-port", str(self.ports["etcd"]), "--etcd-peer-port", str(self.ports["peer"]),
                "--apiserver-port", str(self.ports["api"]), "--scheduler-port", str(self.ports["sched"]),
                "--controller-manager-port", str(self.ports["cm"]), "--kubelet-arg=--port=0",
                "--node-name", self.node, f"--kubelet-arg=--image-root={self.image_root}"]
        if self.cgroup_root != f"kubelite/{self.node}":
            argv.append(f"--kubelet-arg=--cgroup-root={self.cgroup_root}")
        with open(self.data_dir / "up.log", "ab") as log:
            self.proc = subprocess.Popen([*argv, *self.up_args], stdout=log, stderr=log, cwd=str(REPO),
                                         start_new_session=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
        wait_for(self.node_ready, 90, f"node {self.node} Ready")

    def node_ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"kubelite up exited {self.proc.returncode}:\n{self.log('up', 3000)}")
        with self.client() as c:
            node = c.get("nodes", self.node)
        ready = [x for x in (node.get("status") or {}).get("conditions") or [] if x["type"] == "Ready"]
        if not ready or ready[0]["status"] != "True" or not (node.get("spec") or {}).get("podCIDR"):
            return False                 # a Ready from an earlier run is stale until this kubelet reports
        return datetime.datetime.fromisoformat(ready[0]["lastHeartbeatTime"]) >= self.started

    def stop(self, sig: int = signal.SIGINT, timeout: float = 90) -> int:
        """Send ``sig`` to ``kubelite up`` and wait for it to exit; its exit code."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"kubelite up did not stop on {sig!r} within {timeout}s:\n{self.log('up')}")

    def client(self) -> SyncClient:
        return SyncClient.from_kubeconfig(self.kubeconfig)

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(REPO), KUBECONFIG=self.kubeconfig)

    def kubelite(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run kubelite's CLI against this cluster."""
        p = subprocess.run([sys.executable, "-m", "kubelite", *args], capture_output=True, text=True,
                           env=self.env(), cwd=str(REPO), timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubelite {' '.join(args)} failed ({p.returncode}): {p.stderr}{p.stdout}")
        return p

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster (its own discovery cache)."""
        p = subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, "--cache-dir", str(self.cache_dir), *args],
                           capture_output=True, text=True, timeout=timeout, input="")
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}): {p.stderr}{p.stdout}"
                                 f"\n{self.diagnostics()}")
        return p

    def diagnostics(self) -> str:
        """What a failed step needs to be understood from CI's log alone: pods, events, component logs."""
        out = []
        for args in (("get", "pods", "-A", "-o", "wide"), ("get", "events", "-A")):
            p = subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, "--cache-dir", str(self.cache_dir),
                                *args], capture_output=True, text=True, timeout=30, input="")
            out.append(f"$ kubectl {' '.join(args)}\n{p.stdout}{p.stderr}")
        for component in ("kubelet", "controller-manager"):
            out.append(f"--- {component} log (tail)\n{self.log(component, 3000)}")
        return "\n".join(out)

    def log(self, component: str, n: int = 2000) -> str:
        path = self.data_dir / ("up.log" if component == "up" else f"logs/{component}.log")
        try:
            return path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def wait_pod(self, name: str, pred: Callable[[dict[str, Any]], Any], timeout: float = 60, ns: str = "default",
                 what: str = "") -> dict[str, Any]:
        """The pod once ``pred(pod)`` holds; on timeout, the failure shows its status and the kubelet's log."""
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
                raise AssertionError(f"{exc}\nstatus: {status}\nkubelet log:\n{self.log('kubelet', 3000)}") from None

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

    def inspect(self, pod: str) -> dict[str, Any]:
        """``kubelite inspect pod``: the containers' host PIDs and the host veth, remembered for leak checks."""
        out = self.kubelite("inspect", "pod", pod).stdout
        pids = [int(m) for m in re.findall(r"─ \S+  host PID (\d+)  image", out)]
        veths = re.findall(r"host veth (\S+)", out)
        self.host_pids.update(pids)
        self.veths.update(veths)
        return {"pids": pids, "veths": veths, "text": out}

    def leftovers(self) -> list[str]:
        """What of this cluster is still on the machine: processes, mounts, cgroups, veths."""
        left = [f"process {pid}" for pid in procs_mentioning(str(self.data_dir))]
        left += [f"container process {pid}" for pid in sorted(self.host_pids) if alive(pid)]
        with open("/proc/self/mountinfo") as f:
            left += [f"mount {line.split()[4]}" for line in f if str(self.data_dir) in line]
        for ctrl in os.listdir("/sys/fs/cgroup"):
            if os.path.isdir(path := f"/sys/fs/cgroup/{ctrl}/{self.cgroup_root}"):
                left.append(f"cgroup {path}")
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        left += [f"veth {v}" for v in sorted(self.veths) if re.search(rf"^\d+: {re.escape(v)}[@:]", links, re.M)]
        return left


@contextlib.contextmanager
def base_image_root(prefix: str) -> Iterator[Path]:
    """A node image store holding the offline busybox images, world-traversable like /var/lib/kubelite
    (user-namespaced pods read it); removed at the end."""
    from kubelet.runtime.images import ImageStore, ensure_base_images
    root = Path(tempfile.mkdtemp(prefix=f"kubelite-{prefix}img", dir="/tmp"))
    try:
        root.chmod(0o755)
        ensure_base_images(ImageStore(root))
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def up_cluster(prefix: str, image_root: Path | None = None, cgroup_root: str = "",
               up_args: Sequence[str] = (), stop_signal: int = signal.SIGINT) -> Iterator[UpCluster]:
    """A started :class:`UpCluster` on a temp data dir; at the end stopped with ``stop_signal``, cleaned
    with ``kubelite down``, and an AssertionError if anything of it was left on the machine.

    ``image_root`` None gives the node an empty image store (the kubelet builds busybox itself, as on a
    fresh machine)."""
    tag = f"{os.getpid() % 100000}{uuid.uuid4().hex[:4]}"
    data = Path(tempfile.mkdtemp(prefix=f"kubelite-{prefix}{tag}", dir="/tmp"))
    data.chmod(0o755)                    # as /var/lib/kubelite: user-namespaced containers traverse it
    own_images = image_root is None
    if image_root is None:
        image_root = Path(tempfile.mkdtemp(prefix=f"kubelite-{prefix}img", dir="/tmp"))
        image_root.chmod(0o755)
    cluster = UpCluster(data, image_root, f"{prefix}{tag}", cgroup_root.replace("{tag}", tag), up_args)
    try:
        cluster.up()
        yield cluster
    finally:
        if cluster.proc is not None and cluster.proc.poll() is None:
            cluster.stop(stop_signal)
        left = cluster.leftovers()
        kill_procs_mentioning(str(data))
        subprocess.run([sys.executable, "-m", "kubelite", "down", "--data-dir", str(data)], capture_output=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO), timeout=120)
        if cgroup_root:
            remove_cgroups(cluster.cgroup_root.split("/")[0])
        shutil.rmtree(data, ignore_errors=True)
        if own_images:
            shutil.rmtree(image_root, ignore_errors=True)
        assert not left, f"kubelite up left behind: {left}"

"""One ``kubelite up`` cluster per module, run the way README tells a user to: ``kubelite up`` on a data dir
(here a temp one, on free loopback ports and its own node name, so it runs beside other clusters on this
machine), with the node's defaults otherwise (cgroup root ``kubelite/<node>``, an image store the kubelet
fills itself with the offline busybox). The cluster can be stopped (SIGINT, as Ctrl-C), crashed (SIGKILL)
and started again on the same data dir; everything it made is listed by :meth:`UpCluster.leftovers`.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.client import SyncClient
from tests.support.cluster import free_port, wait_for
from tests.support.leaks import alive as _alive, procs_mentioning as _procs_mentioning

REPO = Path(__file__).resolve().parents[3]
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


class UpCluster:
    """A ``kubelite up`` process and what a user runs against it (kubelite's CLI and the real kubectl)."""

    def __init__(self, data_dir: Path, image_root: Path) -> None:
        self.data_dir = data_dir
        self.node = f"kla{uuid.uuid4().hex[:8]}"
        self.image_root = image_root
        self.cache_dir = data_dir / "kubectl-cache"
        self.ports = {k: free_port() for k in ("etcd", "peer", "api", "sched", "cm")}
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
                "--controller-manager-port", str(self.ports["cm"]), "--kubelet-port", "0",
                "--node-name", self.node, f"--kubelet-arg=--image-root={self.image_root}"]
        with open(self.data_dir / "up.log", "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, cwd=str(REPO), start_new_session=True,
                                         env=dict(os.environ, PYTHONPATH=str(REPO)))
        wait_for(self.node_ready, 90, f"node {self.node} Ready")

    def node_ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"kubelite up exited {self.proc.returncode}:\n{self.log('up', 3000)}")
        with SyncClient.from_kubeconfig(self.kubeconfig) as c:
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

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(REPO), KUBECONFIG=self.kubeconfig)

    def kubelite(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([sys.executable, "-m", "kubelite", *args], capture_output=True, text=True,
                           env=self.env(), cwd=str(REPO), timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubelite {' '.join(args)} failed ({p.returncode}): {p.stderr}{p.stdout}")
        return p

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
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
        left = [f"process {pid}" for pid in _procs_mentioning(str(self.data_dir))]
        left += [f"container process {pid}" for pid in sorted(self.host_pids) if _alive(pid)]
        with open("/proc/self/mountinfo") as f:
            left += [f"mount {line.split()[4]}" for line in f if str(self.data_dir) in line]
        for ctrl in os.listdir("/sys/fs/cgroup"):
            path = f"/sys/fs/cgroup/{ctrl}/kubelite/{self.node}"
            if os.path.isdir(path):
                left.append(f"cgroup {path}")
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        left += [f"veth {v}" for v in sorted(self.veths) if re.search(rf"^\d+: {re.escape(v)}[@:]", links, re.M)]
        return left


@pytest.fixture(scope="module")
def cluster() -> Iterator[UpCluster]:
    data = Path(tempfile.mkdtemp(prefix="kubelite-acc", dir="/tmp"))
    data.chmod(0o755)                    # as /var/lib/kubelite: user-namespaced containers traverse it
    images = Path(tempfile.mkdtemp(prefix="kubelite-accimg", dir="/tmp"))
    images.chmod(0o755)                  # empty: the kubelet builds busybox:1.35 itself, as on a fresh machine
    cl = UpCluster(data, images)
    try:
        cl.up()
        yield cl
    finally:
        if cl.proc is not None and cl.proc.poll() is None:
            cl.stop(signal.SIGINT)
        left = cl.leftovers()
        subprocess.run([sys.executable, "-m", "kubelite", "down", "--data-dir", str(data)], capture_output=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO), timeout=120)
        for pid in _procs_mentioning(str(data)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(images, ignore_errors=True)
        assert not left, f"kubelite up left behind: {left}"

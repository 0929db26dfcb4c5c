"""`kubelite up` for real: etcd + apiserver (+ whatever components exist) as processes on a temp data dir.

Kill -9 each component in turn and the cluster recovers with every object; SIGTERM stops everything;
a second `up` on the same data dir keeps the objects; a kill -9 of `up` itself takes its children down
(PDEATHSIG) and `kubelite down` clears what is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubelite.api.errors import ApiError
from kubelite.client import SyncClient

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
if not (ROOT / "apiserver" / "__main__.py").exists():   # only until the apiserver branch is merged
    pytest.skip("the apiserver has no entry point in this tree yet", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = cond()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - keep polling
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT)
    e.pop("KUBECONFIG", None)
    return e


class Up:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = [free_port() for _ in range(6)]
        self.node = f"kubelite-up-{os.getpid()}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Any = None

    def start(self, *extra: str) -> None:
        etcd, peer, api, sched, cm, kubelet = self.ports
        if self.log is not None:
            self.log.close()
        self.log = open(self.data_dir.parent / "up.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubelite", "up", "--data-dir", str(self.data_dir), "--etcd-port", str(etcd),
             "--etcd-peer-port", str(peer), "--apiserver-port", str(api), "--scheduler-port", str(sched),
             "--controller-manager-port", str(cm), "--kubelet-port", str(kubelet), "--node-name", self.node, *extra],
            env=env(), stdout=self.log, stderr=self.log, start_new_session=True)
        wait_for(lambda: self.api_ok(), 60, "the apiserver of kubelite up")

    def client(self) -> SyncClient:
        return SyncClient.from_kubeconfig(str(self.data_dir / "kubeconfig"))

    def api_ok(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, (self.data_dir.parent / "up.log").read_text()
        with self.client() as c:
            return c.request("GET", "/readyz") is not None

    def pids(self) -> dict[str, int]:
        out = {}
        for f in (self.data_dir / "run").glob("*.pid"):
            try:
                out[f.stem] = int(f.read_text().split()[0])
            except (ValueError, IndexError, OSError):
                pass
        return out

    def kubelite(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kubelite", *args, "--kubeconfig",
                               str(self.data_dir / "kubeconfig")], env=env(), capture_output=True, text=True,
                              timeout=60)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    u = Up(tmp_path / "data")
    try:
        yield u
    finally:
        if u.proc is not None and u.proc.poll() is None:
            u.proc.kill()
            u.proc.wait()
        if u.log is not None:
            u.log.close()
        subprocess.run([sys.executable, "-m", "kubelite", "down", "--data-dir", str(u.data_dir)], env=env(),
                       capture_output=True, timeout=60)


def pod_names(u: Up) -> list[str]:
    with u.client() as c:
        return [p["metadata"]["name"] for p in c.list("pods", "default")["items"]]


MARKER = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept}\ndata: {a: b}\n"


def components_of(up: Up) -> set[str]:
    expected = {"etcd", "apiserver", "up"}
    for name, package in (("scheduler", "scheduler"), ("controller-manager", "controllers"), ("kubelet", "kubelet")):
        if (ROOT / package / "__main__.py").exists():
            expected.add(name)
    return expected


def test_up_recovers_from_kill_9_and_stops_cleanly(up: Up, tmp_path: Path) -> None:
    up.start()
    assert (up.data_dir / "kubeconfig").stat().st_mode & 0o777 == 0o600
    r = up.kubelite("apply", "-f", str(ROOT / "manifests" / "pod.yaml"))
    assert r.returncode == 0 and r.stdout.strip() == "pod/hello created", r.stderr
    (tmp_path / "cm.yaml").write_text(MARKER)
    assert up.kubelite("apply", "-f", str(tmp_path / "cm.yaml")).returncode == 0
    expected = components_of(up)
    started = wait_for(lambda: (lambda p: p if set(p) >= expected else None)(up.pids()), 30, "every component")
    for name in ("etcd", "apiserver", "scheduler", "controller-manager", "kubelet"):
        pid = started.get(name)
        if pid is None:
            continue
        os.kill(pid, signal.SIGKILL)
        new = wait_for(lambda: (p := up.pids().get(name)) and p != pid and alive(p) and p, 30, f"{name} restarted")
        assert new != pid
        assert wait_for(lambda: "hello" in pod_names(up), 60, f"the pod after killing {name}")
    r = up.kubelite("get", "pods,cm")
    assert r.returncode == 0 and "pod/hello " in r.stdout and "configmap/kept " in r.stdout, r.stdout + r.stderr
    # the "done when": the real kubectl sees the pod through up's kubeconfig, and deletes it
    kubectl = [shutil.which("kubectl") or "/usr/bin/kubectl", "--kubeconfig", str(up.data_dir / "kubeconfig"),
               "--cache-dir", str(tmp_path / "kcache")]
    kenv = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    r = subprocess.run([*kubectl, "get", "pods", "-o", "wide"], env=kenv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.splitlines()[1].split()[0] == "hello", r.stdout + r.stderr
    r = subprocess.run([*kubectl, "delete", "pod", "hello", "--grace-period=1", "--timeout=90s"], env=kenv,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == 'pod "hello" deleted\n', r.stderr
    assert "hello" not in pod_names(up)
    running = up.pids()
    assert up.stop() == 0
    for name, pid in running.items():
        assert not alive(pid), f"{name} (pid {pid}) still running after up stopped"
    assert not any((up.data_dir / "run").glob("*.pid"))
    # same data dir again: every object is still there
    up.start("--no-kubelet")
    with up.client() as c:
        assert c.get("configmaps", "kept", "default")["data"] == {"a": "b"}
    assert up.stop() == 0


def test_children_die_with_up_and_down_cleans(up: Up) -> None:
    up.start("--no-kubelet")
    children = {n: p for n, p in up.pids().items() if n != "up"}
    assert up.proc is not None
    up.proc.kill()                       # up is gone without a chance to clean up
    up.proc.wait()
    for name, pid in children.items():
        wait_for(lambda: not alive(pid), 15, f"{name} to die with up (PDEATHSIG)")
    r = subprocess.run([sys.executable, "-m", "kubelite", "down", "--data-dir", str(up.data_dir)], env=env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not any((up.data_dir / "run").glob("*.pid"))


def test_refuses_a_second_up_on_the_same_data_dir(up: Up) -> None:
    up.start("--no-kubelet")
    etcd, peer, api = (free_port() for _ in range(3))  # other ports: the refusal comes first
    r = subprocess.run([sys.executable, "-m", "kubelite", "up", "--data-dir", str(up.data_dir), "--etcd-port",
                        str(etcd), "--etcd-peer-port", str(peer), "--apiserver-port", str(api)],
                       env=env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "already running" in r.stderr
    with up.client() as c:
        with pytest.raises(ApiError):
            c.get("pods", "nope")
    assert up.stop() == 0

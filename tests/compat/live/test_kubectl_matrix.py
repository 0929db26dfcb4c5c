"""The kubectl compat matrix against a live cluster with real containers (issue 7, point 4).

Protocol-sensitive commands run with every binary: the gcloud dispatcher (``/usr/bin/kubectl``, which picks
the pinned build matching the server's /version, 1.32) and each pinned kubectl 1.27–1.33:

* ``exec -it`` (on a pty) and ``cp`` (exec + tar, both directions): WebSocket v5 from kubectl 1.30 on,
  a raw SPDY/3.1 upgrade (v4.channel.k8s.io streams) before;
* ``port-forward``: SPDY tunnelled in a WebSocket from 1.31 on (1.30 with
  ``KUBECTL_PORT_FORWARD_WEBSOCKETS=true``), a raw SPDY/3.1 upgrade before;
* ``get --sort-by`` (a Table with full objects in its rows) and the everyday commands (describe with
  Events, logs, top, events, explain, api-resources, get -w, scale, rollout status).

Commands whose wire does not vary by version (``run``, ``wait``, port-forward errors, ``kubelite
port-forward``) run once, with the dispatcher.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.compat.test_kubectl_basic import DISPATCHER, PINNED_DIR
from tests.support.cluster import free_port
from tests.support.upcluster import UpCluster as Cluster
from tests.support.upcluster import wait_for

pytestmark = [pytest.mark.compat, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[3]
BINARIES = ["dispatcher"] + [f"1.{m}" for m in range(27, 34)]
PAGE = f"hello-from-pod-{uuid.uuid4().hex[:8]}"


def minor(binary: str) -> int:
    return 32 if binary == "dispatcher" else int(binary.split(".")[1])


@dataclass
class Kubectl:
    argv: list[str]
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True, stdin: str | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([*self.argv, *args], env=self.env, input=stdin, capture_output=True, text=True,
                           timeout=timeout)
        if check:
            assert r.returncode == 0, f"kubectl {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r


def make_kubectl(binary: str, cluster: Cluster, tmp: Path, **extra_env: str) -> Kubectl:
    path = DISPATCHER if binary == "dispatcher" else str(PINNED_DIR / f"kubectl.{binary}")
    assert os.path.exists(path), f"{path} missing"
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": cluster.kubeconfig,
           **extra_env}
    return Kubectl([path, "--cache-dir", str(tmp / "cache")], env)


@pytest.fixture(scope="module")
def web(cluster: Cluster) -> Iterator[str]:
    """A running pod whose httpd listens on the pod's loopback only (127.0.0.1:8080): reachable through
    port-forward, not from the host."""
    name = f"web-{uuid.uuid4().hex[:6]}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
               "name": "httpd", "image": "busybox:1.35",
               "command": ["sh", "-c", f"mkdir -p /www && echo {PAGE} > /www/index.html && echo serving {PAGE} && "
                                       "exec httpd -f -p 127.0.0.1:8080 -h /www"]}]}}
    with cluster.client() as c:
        c.create("pods", pod, "default")
    try:
        cluster.wait_running(name)
        yield name
    finally:
        cluster.delete_pod(name)


# ------------------------------------------------------------------------------------------------- exec -it
def run_on_pty(argv: list[str], env: dict[str, str], lines: list[bytes], timeout: float = 30) -> tuple[int, bytes]:
    """Run ``argv`` with a pty as its terminal; type each line once the output shows the previous prompt."""
    pid, fd = pty.fork()
    if pid == 0:                                            # pragma: no cover - the child
        os.execve(argv[0], argv, env)
    out = b""
    deadline = time.monotonic() + timeout

    def read_until(marker: bytes) -> bool:
        nonlocal out
        while marker not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:                             # EIO: the child is gone
                    return marker in out
                if not chunk:
                    return marker in out
                out += chunk
        return marker in out

    try:
        for line in lines:
            if not read_until(b"# "):
                break
            os.write(fd, line + b"\r")
        read_until(b"\0")                                   # drain until the child closes the pty
        for _ in range(int(timeout * 10)):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), out
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), out
    finally:
        os.close(fd)


@pytest.mark.parametrize("binary", BINARIES)
def test_exec_it(binary: str, cluster: Cluster, web: str, tmp_path: Path) -> None:
    k = make_kubectl(binary, cluster, tmp_path)
    code, out = run_on_pty([*k.argv, "exec", "-it", web, "--", "sh"], k.env,
                           [b"echo $((6*7))-$((1+1))", b"exit 5"])
    assert b"42-2\r\n" in out and code == 5, out          # the shell ran on a tty, its exit code came back
    r = k("exec", "-i", web, "--", "sh", "-c", "cat; echo err >&2; exit 3", stdin="through stdin\n", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (3, "through stdin\n", "err\ncommand terminated with exit code 3\n")


# ------------------------------------------------------------------------------------------------------ cp
@pytest.mark.parametrize("binary", BINARIES)
def test_cp(binary: str, cluster: Cluster, web: str, tmp_path: Path) -> None:
    k = make_kubectl(binary, cluster, tmp_path)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(os.urandom(200_000))
    (src / "sub" / "b.txt").write_text(f"copied by {binary}\n")
    remote = f"/tmp/cp-{binary}-{uuid.uuid4().hex[:6]}"
    k("cp", str(src), f"{web}:{remote}")
    assert k("exec", web, "--", "cat", f"{remote}/sub/b.txt").stdout == f"copied by {binary}\n"
    k("cp", f"{web}:{remote}", str(tmp_path / "back"))
    assert (tmp_path / "back" / "a.txt").read_bytes() == (src / "a.txt").read_bytes()
    assert (tmp_path / "back" / "sub" / "b.txt").read_text() == f"copied by {binary}\n"
    k("cp", f"{web}:/www/index.html", str(tmp_path / "index.html"))
    assert (tmp_path / "index.html").read_text() == f"{PAGE}\n"


# ---------------------------------------------------------------------------------------------- port-forward
def start_forward(argv: list[str], env: dict[str, str], target: str, remote: int, sigint_ignored: bool = False
                  ) -> tuple[subprocess.Popen[bytes], int | None]:
    """Start a port-forward; (process, local port) once it listens, or (process, None) if it exited.
    ``sigint_ignored`` starts it as a shell's ``cmd &`` does: SIGINT ignored, inherited through exec."""
    port = free_port()
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    proc = subprocess.Popen([*argv, "port-forward", target, f"{port}:{remote}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ignore)
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + 30
    while f"Forwarding from 127.0.0.1:{port}".encode() not in seen:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"port-forward did not start: {seen!r}")
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                proc.wait(30)
                return proc, None
            seen += chunk
    return proc, port


def fetch(port: int, path: str = "/") -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as r:
        return bytes(r.read())


def stop(proc: subprocess.Popen[bytes]) -> str:
    """Ctrl-C the port-forward; its stderr once it exited (killed, and an AssertionError, if it does not)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"{proc.args} did not stop on SIGINT within 30 s") from None
    return err.decode(errors="replace")


@pytest.mark.parametrize("binary,ws_env", [(b, False) for b in BINARIES] + [("1.30", True)],
                         ids=[*BINARIES, "1.30-websockets"])
def test_port_forward(binary: str, ws_env: bool, cluster: Cluster, web: str, tmp_path: Path) -> None:
    k = make_kubectl(binary, cluster, tmp_path, **({"KUBECTL_PORT_FORWARD_WEBSOCKETS": "true"} if ws_env else {}))
    proc, port = start_forward(k.argv, k.env, f"pod/{web}", 8080)
    try:
        assert port is not None
        # two connections in a row through one session, the pod's loopback-only httpd answers both
        assert fetch(port) == f"{PAGE}\n".encode()
        assert fetch(port, "/index.html") == f"{PAGE}\n".encode()
    finally:
        stop(proc)


@pytest.mark.parametrize("binary", ["dispatcher", "1.27"])         # WebSocket tunnel, raw SPDY
def test_port_forward_closed_port_and_big_transfer(binary: str, cluster: Cluster, web: str, tmp_path: Path) -> None:
    k = make_kubectl(binary, cluster, tmp_path)
    k("exec", web, "--", "sh", "-c", "head -c 3000000 /dev/urandom > /www/big")
    want = k("exec", web, "--", "md5sum", "/www/big").stdout.split()[0]
    proc, port = start_forward(k.argv, k.env, web, 8080)
    try:
        assert port is not None
        import hashlib
        assert hashlib.md5(fetch(port, "/big")).hexdigest() == want
    finally:
        stop(proc)
    # nothing listens on 9999 in the pod: kubectl reports the kubelet's reason and gives up
    proc, port = start_forward(k.argv, k.env, web, 9999)
    assert port is not None
    with pytest.raises(OSError):
        fetch(port)
    if binary == "dispatcher":
        proc.wait(30)                   # kubectl >= 1.29 gives up on the session after such an error
    err = stop(proc)
    assert "error forwarding port 9999 to pod default/" in err and "Connection refused" in err, err
    if binary == "dispatcher":
        assert "lost connection to pod" in err


def test_kubelite_port_forward(cluster: Cluster, web: str) -> None:
    env = dict(cluster.env(), PYTHONUNBUFFERED="1")
    # started as from a script's `&` (SIGINT ignored): Ctrl-C must still stop it, as it stops kubectl
    proc, port = start_forward([sys.executable, "-m", "kubelite"], env, f"pod/{web}", 8080, sigint_ignored=True)
    try:
        assert port is not None
        assert fetch(port) == f"{PAGE}\n".encode()
        assert fetch(port) == f"{PAGE}\n".encode()
    finally:
        stop(proc)
    r = cluster.kubelite("port-forward", web, "x:80", check=False)
    assert (r.returncode, r.stderr.strip()) == (1, "error: error parsing port 'x:80': use [LOCAL_PORT:]REMOTE_PORT")


# ------------------------------------------------------------------------------------- sort-by, run, wait
@pytest.fixture(scope="module")
def sorted_pods(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Three pods made by `kubectl run` in the order b, c, a, with args that sort a, b, c; the label value."""
    k = make_kubectl("dispatcher", cluster, tmp_path_factory.mktemp("run"))
    label = f"sort{uuid.uuid4().hex[:6]}"
    names = {n: f"{label}-{n}" for n in "abc"}
    try:
        for n, rank in (("b", 2), ("c", 3), ("a", 1)):
            out = k("run", names[n], "--image=busybox:1.35", f"--labels=compat={label}",
                    '--overrides={"spec":{"terminationGracePeriodSeconds":1}}', "--", "sleep", f"300{rank}").stdout
            assert out == f"pod/{names[n]} created\n"
        out = k("wait", "--for=condition=Ready", "pod", "-l", f"compat={label}", "--timeout=90s").stdout
        assert sorted(out.splitlines()) == [f"pod/{names[n]} condition met" for n in "abc"]
        yield label
    finally:
        k("delete", "pod", "-l", f"compat={label}", "--wait=false", check=False)


@pytest.mark.parametrize("binary", BINARIES)
def test_sort_by(binary: str, cluster: Cluster, sorted_pods: str, tmp_path: Path) -> None:
    k = make_kubectl(binary, cluster, tmp_path)
    out = k("get", "pods", "-l", f"compat={sorted_pods}", "--sort-by=.spec.containers[0].args[1]").stdout
    rows = out.splitlines()
    assert rows[0].split()[:3] == ["NAME", "READY", "STATUS"]
    assert [r.split()[0] for r in rows[1:]] == [f"{sorted_pods}-{n}" for n in "abc"]
    out = k("get", "pods", "-l", f"compat={sorted_pods}", "-o", "name",
            "--sort-by={.spec.containers[0].args[1]}").stdout
    assert out.split() == [f"pod/{sorted_pods}-{n}" for n in "abc"]


def test_run_wait_logs_delete(cluster: Cluster, tmp_path: Path) -> None:
    k = make_kubectl("dispatcher", cluster, tmp_path)
    name = f"once-{uuid.uuid4().hex[:6]}"
    assert k("run", name, "--image=busybox:1.35", "--restart=Never", "--env=WHO=kubectl-run", "--",
             "sh", "-c", "echo hello $WHO").stdout == f"pod/{name} created\n"
    r = k("wait", "--for=jsonpath={.status.phase}=Succeeded", f"pod/{name}", "--timeout=60s", check=False, timeout=90)
    assert r.returncode == 0, f"{r.stderr}\n{k('get', 'pod', name, '-o', 'yaml').stdout}\n{cluster.log('kubelet')}"
    out = r.stdout
    assert out == f"pod/{name} condition met\n"
    assert k("logs", name).stdout == "hello kubectl-run\n"
    pod = k("get", "pod", name, "-o", "jsonpath={.spec.restartPolicy} {.spec.containers[0].image}").stdout
    assert pod == "Never busybox:1.35"
    r = k("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=2s", check=False)
    assert r.returncode == 1 and "timed out waiting for the condition on pods/" + name in r.stderr, r.stderr
    k("delete", "pod", name, "--wait=false")
    assert k("wait", "--for=delete", f"pod/{name}", "--timeout=60s").returncode == 0
    r = k("get", "pod", name, check=False)
    assert r.returncode == 1 and "NotFound" in r.stderr


# ------------------------------------------------------------------------------------------ everyday commands
@pytest.fixture(scope="module")
def deployment(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    k = make_kubectl("dispatcher", cluster, tmp_path_factory.mktemp("deploy"))
    name = f"dep-{uuid.uuid4().hex[:6]}"
    k("create", "deployment", name, "--image=busybox:1.35", "--", "sleep", "3600")
    k("rollout", "status", f"deployment/{name}", "--timeout=90s", timeout=100)
    try:
        yield name
    finally:
        k("delete", "deployment", name, "--wait=false", check=False)


def first_line_of_watch(k: Kubectl, *args: str, want: str, timeout: float = 30) -> str:
    proc = subprocess.Popen([*k.argv, *args], env=k.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while want.encode() not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                seen += chunk
        return seen.decode()
    finally:
        proc.kill()
        proc.communicate()


@pytest.mark.parametrize("binary", BINARIES)
def test_everyday_commands(binary: str, cluster: Cluster, web: str, deployment: str, tmp_path: Path) -> None:
    k = make_kubectl(binary, cluster, tmp_path)
    desc = k("describe", "pod", web).stdout
    events = desc[desc.index("\nEvents:"):]
    assert "Scheduled" in events and "Started" in events, desc
    assert k("logs", web, "-c", "httpd", "--tail=1").stdout == f"serving {PAGE}\n"
    assert "Started container httpd" in k("events", "--for", f"pod/{web}").stdout
    assert "restartPolicy" in k("explain", "pod.spec.restartPolicy").stdout
    assert any(line.split()[:1] == ["pods"] for line in k("api-resources").stdout.splitlines())
    out = first_line_of_watch(k, "get", "pod", web, "-w", want=web)
    assert out.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], out

    def top() -> str:
        r = k("top", "pod", web, check=False)
        return r.stdout if r.returncode == 0 else ""
    rows = wait_for(top, 60, "kubectl top pod").splitlines()
    assert rows[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"] and rows[1].split()[0] == web
    replicas = 2 if minor(binary) % 2 else 1
    assert k("scale", f"deployment/{deployment}", f"--replicas={replicas}").stdout == \
        f"deployment.apps/{deployment} scaled\n"
    out = k("rollout", "status", f"deployment/{deployment}", "--timeout=90s", timeout=100).stdout
    assert out.endswith(f'deployment "{deployment}" successfully rolled out\n')
    assert json.loads(k("get", "deployment", deployment, "-o", "json").stdout)["status"]["readyReplicas"] == replicas

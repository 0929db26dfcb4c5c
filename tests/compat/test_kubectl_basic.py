"""The real kubectl against a real apiserver + etcd: the commands issue 2 promises work, on 1.27–1.33.

Runs `/usr/bin/kubectl` (the gcloud dispatcher, which picks a pinned kubectl from /version) and each
pinned binary beside it, with a throwaway HOME, kubeconfig and --cache-dir per test.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from kubelite import kubeconfig

pytestmark = pytest.mark.compat

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
DISPATCHER = shutil.which("kubectl") or "/usr/bin/kubectl"
PINNED_DIR = Path("/usr/lib/google-cloud-sdk/bin")
PINNED = [f"1.{m}" for m in range(27, 34)]

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def make_kubectl(binary: str, apiserver_url: str, tmp: Path) -> Kubectl:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    cfg = tmp / "kubeconfig"
    kubeconfig.write(cfg, kubeconfig.render(apiserver_url))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": str(cfg)}

    def run(*args: str, stdin: str | None = None, extra_env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([binary, "--cache-dir", str(tmp / "cache"), *args], env={**env, **(extra_env or {})},
                           input=stdin, capture_output=True, text=True, timeout=60)
        if check:
            assert r.returncode == 0, f"kubectl {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r
    return run


@pytest.fixture
def kubectl(apiserver_url: str, tmp_path: Path) -> Kubectl:
    return make_kubectl(DISPATCHER, apiserver_url, tmp_path)


def test_get_apply_describe_delete(kubectl: Kubectl) -> None:
    assert kubectl("apply", "-f", str(MANIFESTS / "pod.yaml")).stdout == "pod/hello created\n"
    assert kubectl("apply", "-f", str(MANIFESTS / "pod.yaml")).stdout == "pod/hello unchanged\n"
    out = kubectl("get", "pods", "-o", "wide").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                              "READINESS", "GATES"]
    assert out[1].split()[:3] == ["hello", "0/1", "Pending"]
    pod = yaml.safe_load(kubectl("get", "pod", "hello", "-o", "yaml").stdout)
    assert pod["kind"] == "Pod" and pod["spec"]["containers"][0]["image"] == "busybox:1.35"
    assert "kubectl.kubernetes.io/last-applied-configuration" in pod["metadata"]["annotations"]
    desc = kubectl("describe", "pod", "hello").stdout
    assert desc.splitlines()[0].split() == ["Name:", "hello"] and "Image:" in desc and "busybox:1.35" in desc
    assert kubectl("delete", "pod", "hello").stdout == 'pod "hello" deleted\n'
    r = kubectl("get", "pod", "hello", check=False)
    assert r.returncode == 1 and r.stderr.strip() == 'Error from server (NotFound): pods "hello" not found'


def test_create_label_annotate_patch_replace_edit(kubectl: Kubectl, tmp_path: Path) -> None:
    out = kubectl("create", "-f", str(MANIFESTS)).stdout.splitlines()
    assert out == ["deployment.apps/hello-deploy created", "pod/hello created", "replicaset.apps/hello-rs created"]
    r = kubectl("create", "-f", str(MANIFESTS / "pod.yaml"), check=False)
    assert r.returncode == 1 and "(AlreadyExists)" in r.stderr
    assert kubectl("label", "deploy", "hello-deploy", "tier=web").stdout == "deployment.apps/hello-deploy labeled\n"
    assert kubectl("annotate", "rs", "hello-rs", "note=hi").stdout == "replicaset.apps/hello-rs annotated\n"
    assert kubectl("patch", "deploy", "hello-deploy", "-p", '{"spec":{"replicas":3}}').stdout == \
        "deployment.apps/hello-deploy patched\n"
    kubectl("patch", "deploy", "hello-deploy", "--type", "json", "-p",
            '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"busybox:1.36"}]')
    deploy = yaml.safe_load(kubectl("get", "deploy", "hello-deploy", "-o", "yaml").stdout)
    assert deploy["spec"]["replicas"] == 3 and deploy["metadata"]["labels"]["tier"] == "web"
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"
    assert kubectl("replace", "-f", str(MANIFESTS / "replicaset.yaml")).stdout == "replicaset.apps/hello-rs replaced\n"
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/replicas: 3/replicas: 4/' \"$1\"\n")
    editor.chmod(0o755)
    assert kubectl("edit", "deploy", "hello-deploy", extra_env={"EDITOR": str(editor)}).stdout == \
        "deployment.apps/hello-deploy edited\n"
    assert yaml.safe_load(kubectl("get", "deploy", "hello-deploy", "-o", "yaml").stdout)["spec"]["replicas"] == 4
    rs_desc = kubectl("describe", "rs", "hello-rs").stdout
    assert "Replicas:     0 current / 2 desired" in rs_desc
    table = kubectl("get", "deploy,rs").stdout
    assert "deployment.apps/hello-deploy" in table and "replicaset.apps/hello-rs" in table
    assert kubectl("delete", "-f", str(MANIFESTS)).returncode == 0


def test_server_side_apply_watch_and_api_resources(kubectl: Kubectl, apiserver_url: str, tmp_path: Path) -> None:
    assert kubectl("apply", "--server-side", "-f", str(MANIFESTS / "deployment.yaml")).stdout == \
        "deployment.apps/hello-deploy serverside-applied\n"
    resources = kubectl("api-resources").stdout
    for line in ("pods", "deployments", "replicasets", "leases"):
        assert any(row.split()[0] == line for row in resources.splitlines()[1:]), line
    # get -w: the list, then the watch delivers a new pod while kubectl runs
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path / "home"), "KUBECONFIG": str(tmp_path / "kubeconfig")}
    watcher = subprocess.Popen([DISPATCHER, "--cache-dir", str(tmp_path / "cache"), "get", "pods", "-w"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        kubectl("apply", "-f", str(MANIFESTS / "pod.yaml"))
        assert watcher.stdout is not None
        fd = watcher.stdout.fileno()
        deadline = time.monotonic() + 30
        seen = b""
        while not (b"hello" in seen and b"Pending" in seen) and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                seen += chunk
        assert b"hello" in seen and b"Pending" in seen, seen
    finally:
        watcher.kill()
        watcher.communicate()


def test_kubelite_prints_what_kubectl_prints(kubectl: Kubectl, tmp_path: Path) -> None:
    """kubelite's get/describe/apply output is byte-for-byte kubectl's (ages normalised)."""
    import re
    import sys

    def norm(text: str) -> str:
        return re.sub(r"\b\d+(s|m\d*s?|h\d*m?)\b", "AGE", text)

    env = {**os.environ, "PYTHONPATH": str(ROOT), "KUBECONFIG": str(tmp_path / "kubeconfig")}

    def kl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kubelite", *args], env=env, capture_output=True, text=True,
                              timeout=60)

    created = kl("apply", "-f", str(MANIFESTS)).stdout
    assert created.count(" created\n") == 3
    # the same last-applied bytes: each tool sees the other's apply as a no-op
    assert kubectl("apply", "-f", str(MANIFESTS)).stdout == created.replace(" created\n", " unchanged\n")
    assert kl("apply", "-f", str(MANIFESTS)).stdout == kubectl("apply", "-f", str(MANIFESTS)).stdout
    kubectl("label", "pod", "hello", "x=y")
    for args in (["get", "pods"], ["get", "pods", "-o", "wide"], ["get", "all"], ["get", "pods", "-A", "--show-labels"],
                 ["get", "pod", "hello", "-o", "yaml"], ["get", "deploy", "-o", "json"], ["get", "ns"],
                 ["describe", "pod", "hello"], ["describe", "rs", "hello-rs"], ["describe", "deploy", "hello-deploy"],
                 ["describe", "ns", "default"], ["get", "pod", "nope"],
                 ["get", "pods", "-o", 'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{..image}{"\\n"}{end}'],
                 ["get", "deploy,rs", "-o", "custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas"],
                 ["get", "pod", "-o", "jsonpath={.spec.containers[0].command}", "hello"]):
        ours, theirs = kl(*args), kubectl(*args, check=False)
        assert (ours.returncode, norm(ours.stdout), ours.stderr) == \
            (theirs.returncode, norm(theirs.stdout), theirs.stderr), args


@pytest.mark.parametrize("version", PINNED)
def test_pinned_binaries(version: str, apiserver_url: str, tmp_path: Path) -> None:
    binary = PINNED_DIR / f"kubectl.{version}"
    assert binary.exists(), f"{binary} missing"
    kubectl = make_kubectl(str(binary), apiserver_url, tmp_path)
    assert kubectl("version", "-o", "yaml").returncode == 0
    assert kubectl("apply", "-f", str(MANIFESTS / "pod.yaml")).stdout == "pod/hello created\n"
    assert kubectl("get", "pods").stdout.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert kubectl("label", "pod", "hello", "v=1").stdout == "pod/hello labeled\n"
    assert kubectl("describe", "pod", "hello").stdout.startswith("Name:")
    assert kubectl("delete", "pod", "hello").stdout == 'pod "hello" deleted\n'

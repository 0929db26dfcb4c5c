"""The real kubectl against a real apiserver (real etcd): explain, apply (client- and server-side),
patch (every type), edit, validation errors and Table output.

Each test gets a fresh apiserver on its own etcd prefix, a throwaway kubeconfig and its own
``--cache-dir``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest

pytestmark = pytest.mark.compat

KUBECTL = os.environ.get("KUBELITE_KUBECTL", shutil.which("kubectl") or "/usr/bin/kubectl")
PINNED_DIR = Path(os.environ.get("KUBELITE_KUBECTL_PINNED", "/usr/lib/google-cloud-sdk/bin"))

if not Path(KUBECTL).exists():  # pragma: no cover - machines without kubectl
    pytest.skip("kubectl is not installed", allow_module_level=True)
try:  # the real-etcd + apiserver fixtures (tests/conftest.py, tests/support) come with the apiserver
    import tests.support.cluster  # noqa: F401
except ImportError:  # pragma: no cover - only before the apiserver has landed
    pytest.skip("the apiserver fixtures are not available yet", allow_module_level=True)

Run = Callable[..., subprocess.CompletedProcess[str]]

DEPLOY_V1 = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {tier: x, app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: a
        image: nginx:1.25
        env: [{name: EX, value: "1"}, {name: EY, value: "2"}]
      - name: b
        image: busybox
"""

DEPLOY_V2 = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy: {type: Recreate}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: a
        image: nginx:1.26
        env: [{name: EX, value: "1"}]
"""

POD = """\
apiVersion: v1
kind: Pod
metadata: {name: p1, labels: {app: x}}
spec:
  containers:
  - name: c
    image: busybox
    resources: {limits: {cpu: "1", memory: 64Mi}}
"""


def _make_runner(server: str, tmp_path: Path, binary: str = KUBECTL) -> Run:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "default"}}]}))
    cache = tmp_path / f"cache-{Path(binary).name}"

    def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ, HOME=str(tmp_path), **(env or {}))
        proc = subprocess.run([binary, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args],
                              input=stdin, capture_output=True, text=True, timeout=60, env=full_env)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc
    return run


@pytest.fixture
def kubectl(apiserver_url: str, tmp_path: Path) -> Run:
    return _make_runner(apiserver_url, tmp_path)


def _get(kubectl: Run, *what: str) -> dict:
    return json.loads(kubectl("get", *what, "-o", "json").stdout)


def test_explain(kubectl: Run) -> None:
    out = kubectl("explain", "pods").stdout
    assert "KIND:       Pod" in out and "VERSION:    v1" in out and "spec\t<PodSpec>" in out
    out = kubectl("explain", "deploy.spec").stdout
    assert "GROUP:      apps" in out and "replicas\t<integer>" in out and "template\t<PodTemplateSpec> -required-" in out
    out = kubectl("explain", "pod.metadata.labels").stdout
    assert "FIELD: labels <map[string]string>" in out
    out = kubectl("explain", "deploy.spec.strategy", "--recursive").stdout
    assert "maxSurge" in out


def test_client_side_apply_three_way(kubectl: Run, tmp_path: Path) -> None:
    (tmp_path / "d1.yaml").write_text(DEPLOY_V1)
    (tmp_path / "d2.yaml").write_text(DEPLOY_V2)
    assert "deployment.apps/web created" in kubectl("apply", "-f", str(tmp_path / "d1.yaml")).stdout
    assert "deployment.apps/web configured" in kubectl("apply", "-f", str(tmp_path / "d2.yaml")).stdout
    d = _get(kubectl, "deploy", "web")
    assert d["metadata"]["labels"] == {"app": "web"}
    assert d["spec"]["strategy"] == {"type": "Recreate"}
    assert d["spec"]["replicas"] == 3 and d["metadata"]["generation"] == 2
    (c,) = d["spec"]["template"]["spec"]["containers"]
    assert c["name"] == "a" and c["image"] == "nginx:1.26" and c["env"] == [{"name": "EX", "value": "1"}]
    assert c["imagePullPolicy"] == "IfNotPresent"  # defaulting survived the patch
    assert "deployment.apps/web unchanged" in kubectl("apply", "-f", str(tmp_path / "d2.yaml")).stdout


def test_server_side_apply_conflicts_and_force(kubectl: Run, tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(DEPLOY_V2)
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", str(tmp_path / "d.yaml")).stdout
    d = json.loads(kubectl("get", "deploy", "web", "-o", "json", "--show-managed-fields").stdout)
    assert {(e["manager"], e["operation"]) for e in d["metadata"]["managedFields"]} == {("kubectl", "Apply")}
    kubectl("patch", "deploy", "web", "-p", '{"spec":{"replicas":7}}')
    (tmp_path / "d4.yaml").write_text(DEPLOY_V2.replace("replicas: 3", "replicas: 4"))
    proc = kubectl("apply", "--server-side", "-f", str(tmp_path / "d4.yaml"), check=False)
    assert proc.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl-patch" using apps/v1: .spec.replicas' in proc.stderr
    assert "--force-conflicts" in proc.stderr
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(tmp_path / "d4.yaml"))
    assert _get(kubectl, "deploy", "web")["spec"]["replicas"] == 4
    # dropping a field the manager applied removes it
    (tmp_path / "d5.yaml").write_text(DEPLOY_V2.replace("  labels: {app: web}\n", ""))
    kubectl("apply", "--server-side", "-f", str(tmp_path / "d5.yaml"))
    assert "labels" not in _get(kubectl, "deploy", "web")["metadata"]


def test_server_side_apply_takes_over_client_side_apply(kubectl: Run, tmp_path: Path) -> None:
    # kubectl's switch from client-side to server-side apply: the fields the last-applied
    # configuration names may be taken over by manager "kubectl" without conflicts
    (tmp_path / "d1.yaml").write_text(DEPLOY_V1)
    (tmp_path / "d2.yaml").write_text(DEPLOY_V2.replace("strategy: {type: Recreate}",
                                                        "strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1}}"))
    kubectl("apply", "-f", str(tmp_path / "d1.yaml"))
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", str(tmp_path / "d2.yaml")).stdout
    d = _get(kubectl, "deploy", "web")
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    # the server kept the last-applied annotation in step: client-side apply still works on top
    assert "deployment.apps/web" in kubectl("apply", "-f", str(tmp_path / "d2.yaml")).stdout
    annotation = _get(kubectl, "deploy", "web")["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert json.loads(annotation)["spec"]["replicas"] == 3
    # another field manager gets the conflicts
    (tmp_path / "d3.yaml").write_text(DEPLOY_V2.replace("replicas: 3", "replicas: 5"))
    proc = kubectl("apply", "--server-side", "--field-manager=other", "-f", str(tmp_path / "d3.yaml"), check=False)
    assert proc.returncode == 1 and "conflict" in proc.stderr


def test_patch_types(kubectl: Run, tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(DEPLOY_V1)
    kubectl("apply", "-f", str(tmp_path / "d.yaml"))
    kubectl("patch", "deploy", "web", "--type=json",
            "-p", '[{"op":"replace","path":"/spec/replicas","value":6},{"op":"add","path":"/metadata/labels/x","value":"y"}]')
    kubectl("patch", "deploy", "web", "--type=merge", "-p", '{"metadata":{"labels":{"tier":null}}}')
    kubectl("patch", "deploy", "web", "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"nginx:2"}]}}}}')
    d = _get(kubectl, "deploy", "web")
    assert d["spec"]["replicas"] == 6 and d["metadata"]["labels"] == {"app": "web", "x": "y"}
    assert [(c["name"], c["image"]) for c in d["spec"]["template"]["spec"]["containers"]] == [
        ("a", "nginx:2"), ("b", "busybox")]  # strategic merge keeps the other container
    proc = kubectl("patch", "deploy", "web", "--type=json", "-p", '[{"op":"test","path":"/spec/replicas","value":1}]',
                   check=False)
    assert proc.returncode == 1 and "test failed" in proc.stderr
    proc = kubectl("patch", "deploy", "web", "-p", '{"spec":{"selector":{"matchLabels":{"app":"other"}}}}', check=False)
    assert proc.returncode == 1 and "spec.selector: Invalid value" in proc.stderr and "field is immutable" in proc.stderr


def test_edit(kubectl: Run, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POD)
    kubectl("apply", "-f", str(tmp_path / "p.yaml"))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/image: busybox$/image: busybox:1.36/' \"$1\"\n")
    editor.chmod(0o755)
    assert "pod/p1 edited" in kubectl("edit", "pod", "p1", env={"EDITOR": str(editor)}).stdout
    assert _get(kubectl, "pod", "p1")["spec"]["containers"][0]["image"] == "busybox:1.36"
    editor.write_text("#!/bin/sh\nsed -i 's/restartPolicy: Always/restartPolicy: Never/' \"$1\"\n")
    proc = kubectl("edit", "pod", "p1", env={"EDITOR": str(editor)}, check=False)
    assert proc.returncode == 1 and 'pods "p1" is invalid' in proc.stderr
    assert _get(kubectl, "pod", "p1")["spec"]["restartPolicy"] == "Always"


def test_defaults_validation_and_strict_fields(kubectl: Run, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POD)
    kubectl("create", "-f", str(tmp_path / "p.yaml"))
    pod = _get(kubectl, "pod", "p1")
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "64Mi"}
    assert pod["status"] == {"phase": "Pending", "qosClass": "Guaranteed"}
    assert {t["key"] for t in pod["spec"]["tolerations"]} == {"node.kubernetes.io/not-ready",
                                                              "node.kubernetes.io/unreachable"}
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Pod}\nspec:\n"
                                       "  restartPolicy: Sometimes\n  containers:\n  - name: c\n  - name: c\n"
                                       "    image: x\n    resources: {limits: {cpu: '1'}, requests: {cpu: '2'}}\n")
    proc = kubectl("apply", "-f", str(tmp_path / "bad.yaml"), check=False)
    assert proc.returncode == 1 and 'The Pod "Bad_Pod" is invalid' in proc.stderr
    for text in ('metadata.name: Invalid value: "Bad_Pod"', "spec.containers[0].image: Required value",
                 'spec.containers[1].name: Duplicate value: "c"',
                 'spec.containers[1].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1',
                 'spec.restartPolicy: Unsupported value: "Sometimes"'):
        assert text in proc.stderr
    (tmp_path / "unk.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: unk}\nspec:\n  foo: bar\n"
                                       "  containers:\n  - {name: c, image: x, bogus: 1}\n")
    for args in (["create"], ["apply"], ["apply", "--server-side"]):
        proc = kubectl(*args, "-f", str(tmp_path / "unk.yaml"), check=False)
        assert proc.returncode == 1
        assert ('strict decoding error: unknown field "spec.containers[0].bogus", unknown field "spec.foo"'
                in proc.stderr), proc.stderr
    kubectl("apply", "--validate=false", "-f", str(tmp_path / "unk.yaml"))
    assert "foo" not in _get(kubectl, "pod", "unk")["spec"]
    (tmp_path / "typed.yaml").write_text(DEPLOY_V2.replace("replicas: 3", 'replicas: "3"'))
    proc = kubectl("apply", "--validate=false", "-f", str(tmp_path / "typed.yaml"), check=False)
    assert proc.returncode == 1 and ("json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas "
                                     "of type int32") in proc.stderr


def test_tables(kubectl: Run, tmp_path: Path) -> None:
    (tmp_path / "all.yaml").write_text(POD + "---\n" + DEPLOY_V2 + """---
apiVersion: v1
kind: Node
metadata: {name: node1, labels: {node-role.kubernetes.io/control-plane: ""}}
status:
  conditions: [{type: Ready, status: "True"}]
  addresses: [{type: InternalIP, address: 10.0.0.1}]
  nodeInfo: {kubeletVersion: v1.32.4-kubelite, osImage: Debian, kernelVersion: "6.1", containerRuntimeVersion: "kubelite://0.1",
             machineID: "", systemUUID: "", bootID: "", kubeProxyVersion: "", operatingSystem: linux, architecture: amd64}
---
apiVersion: v1
kind: Event
metadata: {name: p1.1}
involvedObject: {kind: Pod, name: p1, namespace: default}
reason: Scheduled
message: assigned
type: Normal
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: runc}
handler: runc
""")
    kubectl("apply", "-f", str(tmp_path / "all.yaml"))
    lines = kubectl("get", "pods", "-o", "wide").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                                "READINESS", "GATES"]
    assert lines[1].split()[:4] == ["p1", "0/1", "Pending", "0"]
    lines = kubectl("get", "deploy").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:4] == ["web", "0/3", "0", "0"]
    wide = kubectl("get", "deploy", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"] and wide[1].split()[-3:] == ["a", "nginx:1.26", "app=web"]
    lines = kubectl("get", "nodes", "-o", "wide").stdout.splitlines()
    assert lines[1].split()[:3] == ["node1", "Ready", "control-plane"] and "10.0.0.1" in lines[1]
    lines = kubectl("get", "events").stdout.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert lines[1].split()[1:] == ["Normal", "Scheduled", "pod/p1", "assigned"]
    assert kubectl("get", "runtimeclass").stdout.splitlines()[1].split()[:2] == ["runc", "runc"]
    assert kubectl("get", "ns", "default").stdout.splitlines()[1].split()[:2] == ["default", "Active"]


@pytest.mark.parametrize("minor", range(27, 34))
def test_pinned_kubectl_explain_and_apply(minor: int, apiserver_url: str, tmp_path: Path) -> None:
    binary = PINNED_DIR / f"kubectl.1.{minor}"
    if not binary.exists():
        pytest.skip(f"{binary} is not installed")
    run = _make_runner(apiserver_url, tmp_path, str(binary))
    assert "KIND:" in run("explain", "deploy.spec").stdout and "replicas" in run("explain", "deploy.spec").stdout
    (tmp_path / "d1.yaml").write_text(DEPLOY_V1)
    (tmp_path / "d2.yaml").write_text(DEPLOY_V2)
    run("apply", "-f", str(tmp_path / "d1.yaml"))
    run("apply", "-f", str(tmp_path / "d2.yaml"))
    containers = json.loads(run("get", "deploy", "web", "-o", "json").stdout)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a"]
    assert "serverside-applied" in run("apply", "--server-side", "--force-conflicts", "-f", str(tmp_path / "d1.yaml")).stdout

"""The real kubectl against a real apiserver: warnings, field ownership without ``fieldManager``,
client-side → server-side apply migration and the typed create commands, which send protobuf."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.compat

KUBECTL = os.environ.get("KUBELITE_KUBECTL", shutil.which("kubectl") or "/usr/bin/kubectl")
if not Path(KUBECTL).exists():  # pragma: no cover - machines without kubectl
    pytest.skip("kubectl is not installed", allow_module_level=True)

from tests.compat.test_kubectl_semantics import PINNED_DIR, Run, _make_runner  # noqa: E402

CM = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: cm1}
data: {a: "1"}
"""

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: a, image: nginx:1.25}
"""


@pytest.fixture
def kubectl(apiserver_url: str, tmp_path: Path) -> Run:
    return _make_runner(apiserver_url, tmp_path)


def _get(kubectl: Run, *what: str) -> dict:
    return json.loads(kubectl("get", *what, "-o", "json", "--show-managed-fields").stdout)


def test_validate_warn_prints_the_warning(kubectl: Run, tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: warned}\nspec:\n  foo: bar\n"
                                     "  containers:\n  - {name: c, image: busybox}\n")
    proc = kubectl("apply", "--validate=warn", "-f", str(tmp_path / "p.yaml"))
    assert 'Warning: unknown field "spec.foo"' in proc.stderr, proc.stderr
    assert "pod/warned created" in proc.stdout
    assert "foo" not in _get(kubectl, "pod", "warned")["spec"]


def test_server_side_apply_migration_drops_client_side_only_fields(kubectl: Run, tmp_path: Path) -> None:
    # kubectl migrates the client-side apply manager's fields to "kubectl" (a managedFields-only
    # JSON patch) before applying server-side; that ownership change must be stored, or the fields
    # only the old manifest had stay forever
    (tmp_path / "d1.yaml").write_text(DEPLOY.replace("metadata: {name: web}", "metadata: {name: web, labels: {tier: x, app: web}}"))
    (tmp_path / "d2.yaml").write_text(DEPLOY.replace("metadata: {name: web}", "metadata: {name: web, labels: {app: web}}"))
    kubectl("apply", "-f", str(tmp_path / "d1.yaml"))
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", str(tmp_path / "d2.yaml")).stdout
    d = _get(kubectl, "deploy", "web")
    assert d["metadata"]["labels"] == {"app": "web"}
    managers = {(e["manager"], e["operation"]) for e in d["metadata"]["managedFields"]}
    assert ("kubectl-client-side-apply", "Update") not in managers and ("kubectl", "Apply") in managers


def test_scale_then_server_side_apply_conflicts(kubectl: Run, tmp_path: Path) -> None:
    # kubectl scale names no fieldManager: the server takes "kubectl" from the User-Agent
    (tmp_path / "d.yaml").write_text(DEPLOY)
    kubectl("apply", "--server-side", "-f", str(tmp_path / "d.yaml"))
    kubectl("scale", "deploy", "web", "--replicas=5")
    managers = {(e["manager"], e["operation"], e.get("subresource")) for e in _get(kubectl, "deploy", "web")["metadata"]["managedFields"]}
    assert ("kubectl", "Update", "scale") in managers, managers
    proc = kubectl("apply", "--server-side", "-f", str(tmp_path / "d.yaml"), check=False)
    assert proc.returncode == 1 and 'conflict with "kubectl"' in proc.stderr and ".spec.replicas" in proc.stderr, proc.stderr


@pytest.mark.parametrize("minor", [27, 30, 33])
def test_typed_create_commands_send_protobuf_and_work(apiserver_url: str, tmp_path: Path, minor: int) -> None:
    # kubectl's typed create commands send Kubernetes protobuf (no JSON fallback in client-go); oldest,
    # middle and newest pinned binary, as the messages grew fields between them
    kubectl = _make_runner(apiserver_url, tmp_path, str(PINNED_DIR / f"kubectl.1.{minor}"))
    ns = f"pb{minor}"
    assert f"namespace/{ns} created" in kubectl("create", "namespace", ns).stdout
    assert _get(kubectl, "ns", ns)["status"]["phase"] == "Active"
    kubectl("create", "configmap", "cm1", "-n", ns, "--from-literal=a=b", "--from-literal=empty=")
    assert _get(kubectl, "cm", "cm1", "-n", ns)["data"] == {"a": "b", "empty": ""}
    kubectl("create", "secret", "generic", "s1", "-n", ns, "--from-literal=k=v")
    secret = _get(kubectl, "secret", "s1", "-n", ns)
    assert (secret["data"], secret["type"]) == ({"k": "dg=="}, "Opaque"), secret
    kubectl("create", "deployment", "web", "-n", ns, "--image=busybox:1.35", "--replicas=0", "--port=80",
            "--", "sleep", "3600")
    deploy = _get(kubectl, "deploy", "web", "-n", ns)
    assert deploy["spec"]["replicas"] == 0, deploy["spec"]          # a pointer's zero is a value, not "unset"
    assert deploy["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["command"], container["ports"][0]["containerPort"]) == \
        ("busybox:1.35", ["sleep", "3600"], 80), container
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"    # defaulted as for a JSON body
    proc = kubectl("create", "deployment", "web", "-n", ns, "--image=busybox:1.35", check=False)
    assert proc.returncode == 1 and "already exists" in proc.stderr, proc.stderr

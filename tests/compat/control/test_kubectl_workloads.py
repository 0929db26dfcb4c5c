"""The real kubectl drives kubelite's controllers: rollout status/undo/restart/pause, scale, set image,
cordon, taint, drain (through pods/eviction) and --cascade=orphan."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.compat, pytest.mark.timeout(200)]

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: nginx, image: "nginx:1"}]}
"""


def kubectl(kubeconfig: str, *args: str, check: bool = True) -> str:
    r = subprocess.run([KUBECTL, "--kubeconfig", kubeconfig, *args], capture_output=True, text=True, timeout=90)
    if check and r.returncode != 0:
        state = ""
        if args[:2] == ("rollout", "status"):   # what the controllers left, for a rollout that never finished
            state = "\n" + subprocess.run(
                [KUBECTL, "--kubeconfig", kubeconfig, "get", "deploy,rs,pods", "-o", "wide", "--show-labels"],
                capture_output=True, text=True, timeout=30).stdout + subprocess.run(
                [KUBECTL, "--kubeconfig", kubeconfig, "get", "deploy,rs,pods", "-o",
                 "jsonpath={range .items[*]}{.kind}/{.metadata.name} rv={.metadata.resourceVersion} "
                 "status={.status}{'\\n'}{end}"], capture_output=True, text=True, timeout=30).stdout
        raise AssertionError(f"kubectl {' '.join(args)}: {r.stdout}{r.stderr}{state}")
    return r.stdout


def test_kubectl_rollout_scale_undo_restart(control_plane, kubeconfig, tmp_path: Path):
    manifest = tmp_path / "web.yaml"
    manifest.write_text(DEPLOYMENT)
    assert kubectl(kubeconfig, "apply", "-f", str(manifest)) == "deployment.apps/web created\n"
    out = kubectl(kubeconfig, "rollout", "status", "deployment/web", "--timeout=60s")
    assert out.endswith('deployment "web" successfully rolled out\n')
    assert kubectl(kubeconfig, "scale", "deployment/web", "--replicas=4") == "deployment.apps/web scaled\n"
    assert kubectl(kubeconfig, "set", "image", "deployment/web", "nginx=nginx:2") == "deployment.apps/web image updated\n"
    kubectl(kubeconfig, "rollout", "status", "deployment/web", "--timeout=60s")
    hist = kubectl(kubeconfig, "rollout", "history", "deployment/web").splitlines()
    assert hist[1:4] == ["REVISION  CHANGE-CAUSE", "1         <none>", "2         <none>"]
    assert kubectl(kubeconfig, "rollout", "undo", "deployment/web") == "deployment.apps/web rolled back\n"
    kubectl(kubeconfig, "rollout", "status", "deployment/web", "--timeout=60s")
    d = json.loads(kubectl(kubeconfig, "get", "deployment", "web", "-o", "json"))
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert (d["status"]["updatedReplicas"], d["status"]["availableReplicas"]) == (4, 4)
    assert kubectl(kubeconfig, "rollout", "restart", "deployment/web") == "deployment.apps/web restarted\n"
    kubectl(kubeconfig, "rollout", "status", "deployment/web", "--timeout=60s")
    d = json.loads(kubectl(kubeconfig, "get", "deployment", "web", "-o", "json"))
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
    assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]
    assert kubectl(kubeconfig, "rollout", "pause", "deployment/web") == "deployment.apps/web paused\n"
    assert kubectl(kubeconfig, "rollout", "resume", "deployment/web") == "deployment.apps/web resumed\n"
    kubectl(kubeconfig, "delete", "deployment", "web", "--cascade=orphan")
    rs = json.loads(kubectl(kubeconfig, "get", "rs", "-o", "json"))["items"]
    assert len(rs) == 3 and all(not r["metadata"].get("ownerReferences") for r in rs)   # orphaned before delete
    assert len(json.loads(kubectl(kubeconfig, "get", "pods", "-o", "json"))["items"]) >= 4


def test_kubectl_cordon_taint_drain(control_plane, kubeconfig, tmp_path: Path):
    manifest = tmp_path / "web.yaml"
    manifest.write_text(DEPLOYMENT)
    kubectl(kubeconfig, "apply", "-f", str(manifest))
    kubectl(kubeconfig, "rollout", "status", "deployment/web", "--timeout=60s")
    assert kubectl(kubeconfig, "cordon", "hollow-b-0") == "node/hollow-b-0 cordoned\n"
    assert kubectl(kubeconfig, "uncordon", "hollow-b-0") == "node/hollow-b-0 uncordoned\n"
    assert kubectl(kubeconfig, "taint", "nodes", "hollow-a-1", "k=v:NoSchedule") == "node/hollow-a-1 tainted\n"
    pods = json.loads(kubectl(kubeconfig, "get", "pods", "-o", "json"))["items"]
    on_a0 = [p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") == "hollow-a-0"]
    on_a1 = {p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") == "hollow-a-1"}
    out = kubectl(kubeconfig, "drain", "hollow-a-0", "--ignore-daemonsets", "--timeout=60s")
    assert out.startswith("node/hollow-a-0 cordoned\n") and out.endswith("node/hollow-a-0 drained\n")
    for name in on_a0:
        assert f"pod/{name} evicted" in out
    kubectl(kubeconfig, "rollout", "status", "deployment/web", "--timeout=60s")
    pods = json.loads(kubectl(kubeconfig, "get", "pods", "-o", "json"))["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 3 and all(p["spec"]["nodeName"] != "hollow-a-0" for p in live)
    # the replacements avoided the cordoned node and the tainted one
    assert all(p["spec"]["nodeName"] == "hollow-b-0" for p in live if p["metadata"]["name"] not in on_a1)

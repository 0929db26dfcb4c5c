"""kubelite's workload and node commands against a real apiserver with the control plane running."""

from __future__ import annotations

import time

import pytest

from kubelite.api.resources import DEPLOYMENTS, NODES, PODS, REPLICASETS
from kubelite.cli.main import main
from kubelite.client import SyncClient
from tests.component.control.test_workloads import deploy_manifest

pytestmark = [pytest.mark.component, pytest.mark.timeout(150)]


def kl(capsys, url: str, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([*args, "-s", url])
    out, err = capsys.readouterr()
    return rc, out, err


def wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise TimeoutError(what)


def test_scale_rollout_set_and_undo(control_plane, apiserver_url, capsys):
    with SyncClient.from_url(apiserver_url) as c:
        _scale_rollout_set_and_undo(c, apiserver_url, capsys)


def _scale_rollout_set_and_undo(c, apiserver_url, capsys):
    c.create(DEPLOYMENTS, deploy_manifest("web", 2, "nginx:1"), namespace="default")
    rc, out, _ = kl(capsys, apiserver_url, "rollout", "status", "deployment/web", "--timeout", "60s")
    assert rc == 0 and out.strip().endswith('deployment "web" successfully rolled out')
    rc, out, _ = kl(capsys, apiserver_url, "scale", "deployment", "web", "--replicas", "3")
    assert (rc, out) == (0, "deployment.apps/web scaled\n")
    rc, out, _ = kl(capsys, apiserver_url, "rollout", "status", "deploy/web", "--timeout", "60s")
    assert rc == 0 and c.get(DEPLOYMENTS, "web", "default")["status"]["availableReplicas"] == 3
    rc, out, _ = kl(capsys, apiserver_url, "set", "image", "deployment/web", "c=nginx:2")
    assert (rc, out) == (0, "deployment.apps/web image updated\n")
    rc, out, _ = kl(capsys, apiserver_url, "rollout", "status", "deployment/web", "--timeout", "60s")
    assert rc == 0 and "successfully rolled out" in out
    rc, out, _ = kl(capsys, apiserver_url, "rollout", "history", "deployment/web")
    assert out.splitlines()[1:4] == ["REVISION  CHANGE-CAUSE", "1         <none>", "2         <none>"]
    rc, out, _ = kl(capsys, apiserver_url, "rollout", "undo", "deployment/web")
    assert (rc, out) == (0, "deployment.apps/web rolled back\n")
    kl(capsys, apiserver_url, "rollout", "status", "deployment/web", "--timeout", "60s")
    d = c.get(DEPLOYMENTS, "web", "default")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    rc, out, _ = kl(capsys, apiserver_url, "rollout", "restart", "deployment/web")
    assert (rc, out) == (0, "deployment.apps/web restarted\n")
    wait(lambda: c.get(DEPLOYMENTS, "web", "default")["metadata"]["annotations"].get(
        "deployment.kubernetes.io/revision") == "4", 30, "restart makes revision 4")
    rc, out, _ = kl(capsys, apiserver_url, "rollout", "pause", "deployment/web")
    assert (rc, out) == (0, "deployment.apps/web paused\n")
    rc, _, err = kl(capsys, apiserver_url, "rollout", "undo", "deployment/web")
    assert rc == 1 and err.startswith("error: you cannot rollback a paused deployment")
    rc, out, _ = kl(capsys, apiserver_url, "rollout", "resume", "deployment/web")
    assert (rc, out) == (0, "deployment.apps/web resumed\n")
    rc, out, _ = kl(capsys, apiserver_url, "set", "env", "deployment/web", "MODE=prod")
    assert (rc, out) == (0, "deployment.apps/web env updated\n")
    assert c.get(DEPLOYMENTS, "web", "default")["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "MODE", "value": "prod"}]
    rc, _, err = kl(capsys, apiserver_url, "scale", "deployment", "web", "--replicas", "-1")
    assert rc == 1 and err.startswith("error:")
    assert len(c.list(REPLICASETS, "default")["items"]) >= 2


def test_cordon_taint_and_drain(control_plane, apiserver_url, capsys):
    with SyncClient.from_url(apiserver_url) as c:
        _cordon_taint_and_drain(c, apiserver_url, capsys)


def _cordon_taint_and_drain(c, apiserver_url, capsys):
    wait(lambda: len(c.list(NODES)["items"]) == 3, 30, "3 hollow nodes")
    rc, out, _ = kl(capsys, apiserver_url, "cordon", "hollow-b-0")
    assert (rc, out) == (0, "node/hollow-b-0 cordoned\n")
    rc, out, _ = kl(capsys, apiserver_url, "cordon", "hollow-b-0")
    assert out == "node/hollow-b-0 already cordoned\n"
    rc, out, _ = kl(capsys, apiserver_url, "uncordon", "hollow-b-0")
    assert (rc, out) == (0, "node/hollow-b-0 uncordoned\n")
    rc, out, _ = kl(capsys, apiserver_url, "taint", "nodes", "hollow-a-1", "dedicated=db:NoSchedule")
    assert (rc, out) == (0, "node/hollow-a-1 tainted\n")
    assert c.get(NODES, "hollow-a-1")["spec"]["taints"] == [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    rc, _, err = kl(capsys, apiserver_url, "taint", "nodes", "hollow-a-1", "dedicated=db:Sometimes")
    assert rc == 1 and "unsupported taint effect" in err
    rc, out, _ = kl(capsys, apiserver_url, "taint", "nodes", "hollow-a-1", "dedicated-")
    assert (rc, out) == (0, "node/hollow-a-1 untainted\n")
    c.create(DEPLOYMENTS, deploy_manifest("drainme", 3, "nginx:1"), namespace="default")
    wait(lambda: len([p for p in c.list(PODS, "default", label_selector="app=drainme")["items"]
                      if (p.get("status") or {}).get("phase") == "Running"]) == 3, 30, "3 running")
    rc, out, err = kl(capsys, apiserver_url, "drain", "hollow-a-0", "--ignore-daemonsets", "--timeout", "60")
    assert rc == 0, err
    assert out.startswith("node/hollow-a-0 cordoned\n") and out.endswith("node/hollow-a-0 drained\n")
    pods = [p for p in c.list(PODS, "default", label_selector="app=drainme")["items"]]
    assert all(p["spec"].get("nodeName") != "hollow-a-0" for p in pods)
    wait(lambda: len([p for p in c.list(PODS, "default", label_selector="app=drainme")["items"]
                      if (p.get("status") or {}).get("phase") == "Running"]) == 3, 30, "replacements running")
    assert c.get(NODES, "hollow-a-0")["spec"]["unschedulable"] is True

"""Acceptance: README's flow end to end on one ``kubelite up`` cluster, with kubelite's CLI and the real kubectl.

manifests/pod.yaml runs as real containers (logs, exec, describe with Events, inspect, delete);
manifests/replicaset.yaml self-heals (a deleted pod is replaced, a SIGKILLed container restarts);
manifests/deployment.yaml rolls (set image, rollout status/history/undo); top and events work; Ctrl-C
on ``up`` stops everything, a SIGKILLed ``up`` started again re-adopts its running containers, and
``kubelite down`` clears what a crashed ``up`` left. The tests run in order on the module's cluster.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest

from tests.e2e.acceptance.conftest import REPO, UpCluster
from tests.support.cluster import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MANIFESTS = REPO / "manifests"


def _pods(cl: UpCluster, selector: str) -> list[dict[str, Any]]:
    return json.loads(cl.kubectl("get", "pods", "-l", selector, "-o", "json").stdout)["items"]


def _running(pods: list[dict[str, Any]], n: int, exact: bool = True) -> list[dict[str, Any]] | None:
    """The ``n`` Running and ready pods not being deleted; ``exact``: and no other pods (terminating ones)."""
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") == "Running"
            and all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}])]
    return live if len(live) == n and (len(pods) == n or not exact) else None


def _events(describe: str) -> str:
    assert "Events:" in describe, describe
    return describe.split("Events:", 1)[1]


def test_node_ready_with_events(cluster: UpCluster) -> None:
    out = cluster.kubectl("get", "nodes", "-o", "wide").stdout
    assert cluster.node in out and " Ready " in out, out
    events = wait_for(lambda: "Starting kubelet" in (e := _events(cluster.kubectl("describe", "node", cluster.node)
                                                                    .stdout)) and e, 30, "node Events")
    assert "NodeReady" in events, events


def test_pod_yaml_runs_real_containers(cluster: UpCluster) -> None:
    cluster.kubelite("apply", "-f", str(MANIFESTS / "pod.yaml"))
    wait_for(lambda: _running(_pods(cluster, "app=hello"), 1), 60, "pod hello Running")
    wide = cluster.kubectl("get", "pods", "-o", "wide").stdout
    row = next(line for line in wide.splitlines() if line.startswith("hello "))
    assert "Running" in row and cluster.node in row and "10.244." in row, wide
    wait_for(lambda: "hello from kubelite" in cluster.kubectl("logs", "hello").stdout, 30, "hello's log line")
    assert cluster.kubectl("exec", "hello", "--", "cat", "/etc/hostname").stdout.strip() == "hello"
    ps = cluster.kubectl("exec", "hello", "--", "ps").stdout
    assert "sleep 3600" in ps.splitlines()[1], ps               # PID 1 of its own PID namespace
    events = _events(cluster.kubectl("describe", "pod", "hello").stdout)
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        assert reason in events, events
    seen = cluster.inspect("hello")
    assert seen["pids"] and seen["veths"], seen["text"]
    with open(f"/proc/{seen['pids'][0]}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"3600"]
    assert "Running" in cluster.kubelite("get", "pods").stdout
    cluster.kubectl("delete", "pod", "hello", "--grace-period=1")
    assert "hello" not in cluster.kubectl("get", "pods").stdout
    wait_for(lambda: not os.path.exists(f"/proc/{seen['pids'][0]}"), 30, "the container's process gone")


def test_replicaset_self_heals(cluster: UpCluster) -> None:
    cluster.kubelite("apply", "-f", str(MANIFESTS / "replicaset.yaml"))
    pods = wait_for(lambda: _running(_pods(cluster, "app=hello-rs"), 2), 60, "2 hello-rs pods Running")
    victim = pods[0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", victim, "--grace-period=1", "--wait=false")
    pods = wait_for(lambda: (r := _running(_pods(cluster, "app=hello-rs"), 2))
                    and victim not in {p["metadata"]["name"] for p in r} and r, 60, "a replacement pod Running")
    name = pods[0]["metadata"]["name"]
    pid = cluster.inspect(name)["pids"][0]
    os.kill(pid, signal.SIGKILL)                                # from the host, as an OOM kill would

    def restarted() -> bool:
        pod = json.loads(cluster.kubectl("get", "pod", name, "-o", "json").stdout)
        cs = pod["status"]["containerStatuses"][0]
        return cs["restartCount"] >= 1 and "running" in cs["state"] and cs["ready"]
    wait_for(restarted, 60, f"{name}'s container restarted")
    assert pid not in cluster.inspect(name)["pids"]
    last = json.loads(cluster.kubectl("get", "pod", name, "-o", "json").stdout)["status"]["containerStatuses"][0]
    assert last["lastState"]["terminated"]["exitCode"] == 137, last
    events = _events(cluster.kubectl("describe", "rs", "hello-rs").stdout)
    assert events.count("SuccessfulCreate") >= 3, events
    assert "RESTARTS" in cluster.kubelite("get", "pods", "-l", "app=hello-rs").stdout


def test_deployment_rolls_and_undoes(cluster: UpCluster) -> None:
    cluster.kubelite("apply", "-f", str(MANIFESTS / "deployment.yaml"))
    cluster.kubectl("rollout", "status", "deploy/hello-deploy", "--timeout=90s")
    cluster.kubectl("set", "image", "deploy/hello-deploy", "hello=busybox:latest")
    cluster.kubectl("rollout", "status", "deploy/hello-deploy", "--timeout=90s")
    images = {c["image"] for p in _pods(cluster, "app=hello-deploy") if not p["metadata"].get("deletionTimestamp")
              for c in p["spec"]["containers"]}
    assert images == {"busybox:latest"}, images
    history = cluster.kubectl("rollout", "history", "deploy/hello-deploy").stdout
    assert [line.split()[0] for line in history.splitlines() if line[:1].isdigit()] == ["1", "2"], history
    cluster.kubectl("rollout", "undo", "deploy/hello-deploy")
    cluster.kubectl("rollout", "status", "deploy/hello-deploy", "--timeout=90s")
    deploy = json.loads(cluster.kubectl("get", "deploy", "hello-deploy", "-o", "json").stdout)
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.35"
    assert deploy["status"].get("readyReplicas") == 2 and deploy["status"].get("updatedReplicas") == 2, deploy
    rs = cluster.kubectl("get", "rs", "-l", "app=hello-deploy").stdout
    assert len([line for line in rs.splitlines()[1:] if line.strip()]) == 2, rs
    events = _events(cluster.kubectl("describe", "deploy", "hello-deploy").stdout)
    assert "ScalingReplicaSet" in events, events


def test_top_events_and_inspect(cluster: UpCluster) -> None:
    wait_for(lambda: cluster.node in cluster.kubectl("top", "node", check=False).stdout, 60, "kubectl top node")
    top = wait_for(lambda: "hello-deploy" in (out := cluster.kubectl("top", "pod", check=False).stdout) and out,
                   60, "kubectl top pod")
    assert "MEMORY" in top, top
    assert "hello-rs" in cluster.kubelite("top", "pod").stdout
    events = cluster.kubectl("get", "events").stdout
    for reason in ("Scheduled", "Started", "SuccessfulCreate", "ScalingReplicaSet", "Killing"):
        assert reason in events, events
    cluster.kubectl("create", "configmap", "acc-cm", "--from-literal=k=v")      # typed creates: protobuf bodies
    cluster.kubectl("create", "secret", "generic", "acc-secret", "--from-literal=k=v")
    for kind, name, ns in (("namespace", "default", ""), ("configmap", "acc-cm", "default"),
                           ("secret", "acc-secret", "default"), ("lease", cluster.node, "kube-node-lease")):
        out = cluster.kubectl("describe", kind, name, *(["-n", ns] if ns else [])).stdout
        assert name in out, out
    for pod in _pods(cluster, "app=hello-deploy") + _pods(cluster, "app=hello-rs"):
        if not pod["metadata"].get("deletionTimestamp"):
            cluster.inspect(pod["metadata"]["name"])


def _container_pids(cl: UpCluster) -> dict[str, list[int]]:
    pods = [p for sel in ("app=hello-rs", "app=hello-deploy") for p in _pods(cl, sel)
            if not p["metadata"].get("deletionTimestamp")]
    return {p["metadata"]["name"]: cl.inspect(p["metadata"]["name"])["pids"] for p in pods}


def test_kill9_up_then_up_readopts_pods(cluster: UpCluster) -> None:
    before = _container_pids(cluster)
    assert len(before) == 4, before
    cluster.stop(signal.SIGKILL)
    alive = {pid for pids in before.values() for pid in pids if os.path.exists(f"/proc/{pid}")}
    assert alive == {pid for pids in before.values() for pid in pids}, "containers outlive a crashed up"
    cluster.up()
    wait_for(lambda: _running(_pods(cluster, "app=hello-rs"), 2)
             and _running(_pods(cluster, "app=hello-deploy"), 2, exact=False), 60, "the pods Running again")
    assert _container_pids(cluster) == before, "the same containers, re-adopted"


def test_down_clears_a_crashed_up(cluster: UpCluster) -> None:
    cluster.inspect(next(iter(_container_pids(cluster))))
    cluster.stop(signal.SIGKILL)
    assert cluster.leftovers(), "a crashed up leaves its containers (to re-adopt)"
    cluster.kubelite("down", "--data-dir", str(cluster.data_dir), timeout=120)
    assert cluster.leftovers() == []


def test_ctrl_c_leaves_nothing(cluster: UpCluster) -> None:
    cluster.up()                                              # the objects are still in etcd: pods come back
    wait_for(lambda: _running(_pods(cluster, "app=hello-rs"), 2), 60, "hello-rs Running after down and up")
    _container_pids(cluster)
    assert cluster.stop(signal.SIGINT) == 0, cluster.log("up")
    assert cluster.leftovers() == []

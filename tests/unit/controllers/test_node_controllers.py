"""Node lifecycle (heartbeats, taints, NoExecute evictions), PodGC and node IPAM."""

from __future__ import annotations

import pytest

from controllers.nodeipam import NodeIpamController
from controllers.nodelifecycle import NOT_READY, UNREACHABLE, NodeLifecycleController, eviction_deadline
from controllers.podgc import PodGC
from kubelite.api.resources import NODES, PODS
from tests.unit.controllers.fakes import FakeClient, FakeQueue, FakeRecorder, FakeStore

pytestmark = pytest.mark.unit


def node(name, ready="True", taints=None, cidr=None):
    n = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": f"u-{name}", "resourceVersion": "3"},
         "spec": {"taints": taints or []},
         "status": {"conditions": [{"type": "Ready", "status": ready, "lastHeartbeatTime": "2024-01-01T00:00:00Z"}]}}
    if cidr:
        n["spec"]["podCIDR"] = cidr
    return n


def pod(name, node_name="n1", tolerations=None, phase="Running", created="2024-01-01T00:00:00Z", deleting=False):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": name, "namespace": "default", "uid": f"u-{name}", "creationTimestamp": created},
         "spec": {"nodeName": node_name, "tolerations": tolerations or []},
         "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}]}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return p


def lease(name, renew):
    return {"metadata": {"name": name, "namespace": "kube-node-lease"}, "spec": {"renewTime": renew}}


def lifecycle(nodes, pods, now):
    client = FakeClient(*((NODES, n) for n in nodes), *((PODS, p) for p in pods))
    ctl = NodeLifecycleController(client, FakeStore(*nodes), FakeStore(*pods), FakeQueue(), FakeRecorder(),
                                  grace_period=50, clock=lambda: now[0], wall=lambda: 1_700_000_000 + now[0])
    for n in nodes:
        ctl.on_node(n)
    return ctl, client


async def test_silent_node_becomes_unknown_tainted_and_pods_evicted():
    now = [0.0]
    default_tols = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
    pods = [pod("plain"), pod("tolerant", tolerations=default_tols),
            pod("forever", tolerations=[{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}])]
    ctl, client = lifecycle([node("n1")], pods, now)
    ctl.on_lease(lease("n1", "t0"))
    now[0] = 30
    ctl.on_lease(lease("n1", "t1"))
    await ctl.sync("n1")
    assert client.verbs("patch", "nodes") == [] and client.verbs("patch", "nodes/status") == []
    now[0] = 81   # 51 s after the last renewal
    await ctl.sync("n1")
    status_patch = client.verbs("patch", "nodes/status")[0][4]
    ready = next(c for c in status_patch["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("Unknown", "NodeStatusUnknown")
    taints = client.verbs("patch", "nodes")[-1][4]["spec"]["taints"]
    assert {(t["key"], t["effect"]) for t in taints} == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    assert "NodeNotReady" in ctl.recorder.reasons()
    # the patched node carries the NoExecute taint: the intolerant pod is evicted at once
    assert [a[3] for a in client.verbs("delete", "pods")] == ["plain"]
    assert "TaintManagerEviction" in ctl.recorder.reasons()
    assert any(k == "n1" and 299 < d < 301 for k, d in ctl.queue.after)
    ctl.pod_store.remove("default/plain")
    ctl.node_store.add(client.objects[("nodes", "", "n1")])
    now[0] = 81 + 100
    await ctl.sync("n1")
    assert [a[3] for a in client.verbs("delete", "pods")] == ["plain"]
    now[0] = 81 + 301
    await ctl.sync("n1")
    assert [a[3] for a in client.verbs("delete", "pods")] == ["plain", "tolerant"]


async def test_ready_false_gets_not_ready_and_recovery_removes_taints():
    now = [0.0]
    n = node("n1", ready="False")
    ctl, client = lifecycle([n], [], now)
    await ctl.sync("n1")
    taints = client.verbs("patch", "nodes")[-1][4]["spec"]["taints"]
    assert {(t["key"], t["effect"]) for t in taints} == {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}
    healed = node("n1", ready="True", taints=taints)
    healed["status"]["conditions"][0]["lastHeartbeatTime"] = "2024-01-01T00:01:00Z"
    ctl.node_store.add(healed)
    ctl.on_node(healed)
    await ctl.sync("n1")
    assert client.verbs("patch", "nodes")[-1][4]["spec"]["taints"] is None


def test_eviction_deadline():
    taint = {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2024-01-01T00:00:00Z"}
    t0 = 1704067200.0
    assert eviction_deadline(pod("p"), [taint], t0 + 5) == t0 + 5
    tol = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    assert eviction_deadline(pod("p", tolerations=[tol]), [taint], t0) == t0 + 300
    assert eviction_deadline(pod("p", tolerations=[{"operator": "Exists"}]), [taint], t0) is None


async def test_podgc_removes_orphans_unscheduled_terminating_and_excess_terminated():
    pods = [pod("orphan", node_name="gone"), pod("ok", node_name="n1"),
            pod("stuck", node_name="", deleting=True),
            pod("old-done", phase="Succeeded", created="2024-01-01T00:00:00Z"),
            pod("new-done", phase="Failed", created="2024-02-01T00:00:00Z")]
    client = FakeClient((NODES, node("n1")), *((PODS, p) for p in pods))
    gc = PodGC(client, FakeStore(*pods), FakeStore(node("n1")), terminated_threshold=1)
    await gc.sync()
    assert sorted(a[3] for a in client.verbs("delete", "pods")) == ["old-done", "orphan", "stuck"]


async def test_ipam_allocates_distinct_cidrs_and_survives_restart():
    nodes = [node("a", cidr="10.244.0.0/24"), node("b"), node("c")]
    client = FakeClient(*((NODES, n) for n in nodes))
    store = FakeStore(*nodes)
    ipam = NodeIpamController(client, store, FakeQueue())
    for n in nodes:
        ipam.on_node(n)
    await ipam.sync("b")
    await ipam.sync("c")
    got = {a[3]: a[4]["spec"]["podCIDR"] for a in client.verbs("patch", "nodes")}
    assert got == {"b": "10.244.1.0/24", "c": "10.244.2.0/24"}
    # a fresh controller (restart) rebuilds the state from the nodes
    restarted = [node("a", cidr="10.244.0.0/24"), node("b", cidr="10.244.1.0/24"), node("c", cidr="10.244.2.0/24"),
                 node("d")]
    client2 = FakeClient(*((NODES, n) for n in restarted))
    ipam2 = NodeIpamController(client2, FakeStore(*restarted), FakeQueue())
    await ipam2.sync("d")
    assert client2.verbs("patch", "nodes")[0][4]["spec"]["podCIDR"] == "10.244.3.0/24"
    with pytest.raises(ValueError):
        NodeIpamController(client, store, FakeQueue(), cluster_cidr="10.0.0.0/24", node_mask=16)

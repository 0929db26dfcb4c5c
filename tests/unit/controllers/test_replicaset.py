"""ReplicaSet sync against recorded client actions."""

from __future__ import annotations

import pytest

from controllers.expectations import Expectations
from controllers.podutil import deletion_order
from controllers.replicaset import ReplicaSetController, slow_start_batch
from kubelite.api.errors import Forbidden
from kubelite.api.resources import PODS, REPLICASETS
from tests.unit.controllers.fakes import FakeClient, FakeQueue, FakeRecorder, FakeStore

pytestmark = pytest.mark.unit


def make_rs(name="web", replicas=3, generation=1, min_ready=0):
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default", "uid": f"rs-{name}", "generation": generation,
                         "resourceVersion": "1"},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def make_pod(name, rs=None, labels=None, node="", phase="Running", ready=True, created="2024-01-01T00:00:00Z",
             ready_since="2024-01-01T00:00:00Z", deleting=False, restarts=0):
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": labels or {"app": "web"},
            "creationTimestamp": created, "resourceVersion": "5"}
    if rs is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs["metadata"]["name"],
                                    "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                       "lastTransitionTime": ready_since}],
                       "containerStatuses": [{"restartCount": restarts}]}}


def controller(rs, *pods):
    client = FakeClient((REPLICASETS, rs), *((PODS, p) for p in pods))
    c = ReplicaSetController(client, FakeStore(rs), FakeStore(*pods), FakeQueue(), FakeRecorder())
    return c, client


async def test_creates_missing_replicas_with_owner_refs_and_status():
    rs = make_rs(replicas=3)
    c, client = controller(rs)
    await c.sync("default/web")
    creates = client.verbs("create", "pods")
    assert len(creates) == 3
    pod = creates[0][4]
    assert pod["metadata"]["generateName"] == "web-"
    assert pod["metadata"]["labels"] == {"app": "web"}
    assert pod["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                                   "uid": "rs-web", "controller": True, "blockOwnerDeletion": True}]
    assert c.recorder.reasons().count("SuccessfulCreate") == 3
    status = client.verbs("update", "replicasets/status")[-1][4]["status"]
    assert status == {"replicas": 0, "fullyLabeledReplicas": 0, "readyReplicas": 0, "availableReplicas": 0,
                      "observedGeneration": 1}


async def test_expectations_stop_a_second_sync_from_double_creating():
    rs = make_rs(replicas=3)
    c, client = controller(rs)
    await c.sync("default/web")
    await c.sync("default/web")    # the watch has not shown the pods yet
    assert len(client.verbs("create", "pods")) == 3
    # the watch shows them: expectations met, the next sync creates nothing more
    for _, _, _, name, body in client.verbs("create", "pods"):
        c.pod_store.add(body)
        c.on_pod_add(body)
    assert c.expectations.satisfied("default/web")
    await c.sync("default/web")
    assert len(client.verbs("create", "pods")) == 3


async def test_expectations_expire_after_the_ttl():
    now = [0.0]
    rs = make_rs(replicas=1)
    c, client = controller(rs)
    c.expectations = Expectations(ttl=300, clock=lambda: now[0])
    await c.sync("default/web")
    now[0] = 301
    await c.sync("default/web")
    assert len(client.verbs("create", "pods")) == 2


async def test_slow_start_stops_at_the_first_failing_batch():
    calls = []

    async def fn():
        calls.append(1)
        if len(calls) > 3:
            raise Forbidden("quota")

    done, err = await slow_start_batch(10, 1, fn)
    # batches 1, 2 succeed; batch of 4 fails -> 7 calls, 3 done
    assert len(calls) == 7 and done == 3 and isinstance(err, Forbidden)


async def test_create_failure_sets_replica_failure_and_lowers_expectations():
    rs = make_rs(replicas=5)
    c, client = controller(rs)
    client.fail["create"] = Forbidden('pods "x" is forbidden: exceeded quota')
    client.fail_after["create"] = 1
    with pytest.raises(Forbidden):
        await c.sync("default/web")
    assert len(client.verbs("create", "pods")) == 1
    assert c.expectations.pending("default/web") == (1, 0)
    assert "FailedCreate" in c.recorder.reasons()
    cond = client.verbs("update", "replicasets/status")[-1][4]["status"]["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("ReplicaFailure", "True", "FailedCreate")


async def test_scale_down_deletes_least_progressed_pods_first():
    rs = make_rs(replicas=2)
    pods = [make_pod("running-ready", rs, node="n1"),
            make_pod("pending", rs, node="", phase="Pending", ready=False),
            make_pod("running-notready", rs, node="n1", ready=False),
            make_pod("running-ready-2", rs, node="n2")]
    c, client = controller(rs, *pods)
    await c.sync("default/web")
    assert [a[3] for a in client.verbs("delete", "pods")] == ["pending", "running-notready"]
    assert c.recorder.reasons().count("SuccessfulDelete") == 2
    assert c.expectations.pending("default/web") == (0, 2)
    c.on_pod_delete(pods[1])
    c.on_pod_delete(pods[2])
    assert c.expectations.satisfied("default/web")


def test_deletion_order_rules():
    a = make_pod("old-ready", node="n1", ready_since="2024-01-01T00:00:00Z", created="2024-01-01T00:00:00Z")
    b = make_pod("new-ready", node="n2", ready_since="2024-01-02T00:00:00Z", created="2024-01-02T00:00:00Z")
    c = make_pod("restarty", node="n3", ready_since="2024-01-01T00:00:00Z", restarts=5)
    d = make_pod("unknown", node="n4", phase="Unknown")
    assert [p["metadata"]["name"] for p in deletion_order([a, b, c, d])] == ["unknown", "new-ready", "restarty", "old-ready"]
    # doubled up pods go first
    e = make_pod("dup1", node="n5")
    f = make_pod("dup2", node="n5")
    g = make_pod("alone", node="n6")
    assert deletion_order([g, e, f])[-1]["metadata"]["name"] == "alone"


async def test_failed_and_deleting_pods_are_replaced_at_once():
    rs = make_rs(replicas=2)
    pods = [make_pod("ok", rs, node="n1"), make_pod("failed", rs, node="n1", phase="Failed"),
            make_pod("terminating", rs, node="n1", deleting=True)]
    c, client = controller(rs, *pods)
    await c.sync("default/web")
    assert len(client.verbs("create", "pods")) == 1
    assert client.verbs("delete") == []


async def test_adopts_orphans_and_releases_non_matching_pods():
    rs = make_rs(replicas=2)
    orphan = make_pod("orphan")
    stray = make_pod("stray", rs, labels={"app": "other"})
    foreign = make_pod("foreign", labels={"app": "web"})
    foreign["metadata"]["ownerReferences"] = [{"kind": "ReplicaSet", "name": "x", "uid": "other", "controller": True}]
    c, client = controller(rs, orphan, stray, foreign)
    await c.sync("default/web")
    patches = {a[3]: a[4] for a in client.verbs("patch", "pods")}
    assert patches["orphan"]["metadata"]["ownerReferences"][0]["uid"] == "rs-web"
    assert patches["orphan"]["metadata"]["uid"] == "uid-orphan"      # precondition on the uid
    assert patches["stray"]["metadata"]["ownerReferences"] is None
    assert "foreign" not in patches
    assert len(client.verbs("create", "pods")) == 1                   # orphan adopted: 1 + 1 new


async def test_status_counts_ready_available_and_fully_labeled():
    rs = make_rs(replicas=3, min_ready=3600, generation=4)
    rs["spec"]["template"]["metadata"]["labels"] = {"app": "web", "tier": "fe"}
    rs["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    pods = [make_pod("a", rs, labels={"app": "web", "tier": "fe"}, ready_since="2020-01-01T00:00:00Z"),
            make_pod("b", rs, ready_since="2099-01-01T00:00:00Z"),
            make_pod("c", rs, ready=False)]
    c, client = controller(rs, *pods)
    await c.sync("default/web")
    status = client.verbs("update", "replicasets/status")[-1][4]["status"]
    assert status == {"replicas": 3, "fullyLabeledReplicas": 1, "readyReplicas": 2, "availableReplicas": 1,
                      "observedGeneration": 4}
    assert c.queue.after and c.queue.after[0][0] == "default/web"


async def test_handlers_enqueue_the_owner():
    rs = make_rs()
    c, _ = controller(rs)
    c.on_pod_add(make_pod("x", rs))
    c.on_pod_add(make_pod("orphan"))
    assert c.queue.added == ["default/web", "default/web"]
    c.rs_store.remove("default/web")
    await c.sync("default/web")    # deleted set: nothing to do

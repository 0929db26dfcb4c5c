"""Garbage collector: each propagation policy against recorded client actions."""

from __future__ import annotations

import pytest

from controllers.garbagecollector import GarbageCollector
from kubelite.api.resources import DEPLOYMENTS, PODS, REPLICASETS
from tests.unit.controllers.fakes import FakeClient, FakeQueue

pytestmark = pytest.mark.unit


def obj(kind, name, uid, owner=None, deleting=False, finalizers=None, block=True):
    api = {"Pod": "v1", "ReplicaSet": "apps/v1", "Deployment": "apps/v1"}[kind]
    meta = {"name": name, "namespace": "default", "uid": uid, "resourceVersion": "7"}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                    "controller": True, "blockOwnerDeletion": block}]
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": api, "kind": kind, "metadata": meta}


RES = {"Pod": PODS, "ReplicaSet": REPLICASETS, "Deployment": DEPLOYMENTS}


def setup(*objs):
    client = FakeClient(*((RES[o["kind"]], o) for o in objs))
    queue = FakeQueue()
    gc = GarbageCollector(client, queue)
    for o in objs:
        gc.on_add(o)
    return gc, client, queue


async def drain(gc, queue, rounds=5):
    for _ in range(rounds):
        keys, queue.added[:] = list(dict.fromkeys(queue.added)), []
        for k in keys:
            await gc.sync(k)


async def test_background_deletes_dependents_of_a_deleted_owner():
    d = obj("Deployment", "web", "d1")
    rs = obj("ReplicaSet", "web-abc", "rs1", owner=d)
    pod = obj("Pod", "web-abc-1", "p1", owner=rs)
    gc, client, queue = setup(d, rs, pod)
    await drain(gc, queue)
    assert client.verbs("delete") == []          # everything has its owner
    del client.objects[("deployments", "default", "web")]
    gc.on_delete(d)
    await drain(gc, queue)
    assert [(a[1], a[3], a[4]) for a in client.verbs("delete")] == [("replicasets", "web-abc", "Background")]
    gc.on_delete(rs)
    await drain(gc, queue)
    assert [(a[1], a[3]) for a in client.verbs("delete")][-1] == ("pods", "web-abc-1")


async def test_dependent_of_an_owner_that_never_existed_is_collected():
    ghost = obj("ReplicaSet", "ghost", "g1")
    pod = obj("Pod", "p", "p1", owner=ghost)
    gc, client, queue = setup(pod)
    await drain(gc, queue)
    assert [(a[1], a[3]) for a in client.verbs("delete")] == [("pods", "p")]


async def test_owner_with_same_name_but_other_uid_counts_as_gone():
    old = obj("ReplicaSet", "rs", "old-uid")
    pod = obj("Pod", "p", "p1", owner=old)
    gc, client, queue = setup(pod)
    client.put(REPLICASETS, obj("ReplicaSet", "rs", "new-uid"))
    await drain(gc, queue)
    assert [(a[1], a[3]) for a in client.verbs("delete")] == [("pods", "p")]


async def test_foreground_deletes_dependents_then_removes_the_finalizer():
    rs = obj("ReplicaSet", "rs", "rs1", deleting=True, finalizers=["foregroundDeletion"])
    pods = [obj("Pod", f"p{i}", f"p{i}", owner=rs) for i in range(2)]
    gc, client, queue = setup(rs, *pods)
    await drain(gc, queue)
    deletes = sorted((a[1], a[3]) for a in client.verbs("delete"))
    assert deletes == [("pods", "p0"), ("pods", "p1")]
    assert "foregroundDeletion" in client.objects[("replicasets", "default", "rs")]["metadata"]["finalizers"]
    for p in pods:
        gc.on_delete(p)
    await drain(gc, queue)
    patch = client.verbs("patch", "replicasets")[-1]
    assert patch[4]["metadata"]["finalizers"] is None and patch[4]["metadata"]["uid"] == "rs1"


async def test_foreground_does_not_wait_for_non_blocking_dependents():
    rs = obj("ReplicaSet", "rs", "rs1", deleting=True, finalizers=["foregroundDeletion"])
    pod = obj("Pod", "p", "p1", owner=rs, block=False)
    gc, client, queue = setup(rs, pod)
    await drain(gc, queue)
    assert client.verbs("patch", "replicasets")


async def test_orphan_removes_owner_references_then_the_finalizer():
    rs = obj("ReplicaSet", "rs", "rs1", deleting=True, finalizers=["orphan"])
    pods = [obj("Pod", f"p{i}", f"p{i}", owner=rs) for i in range(2)]
    gc, client, queue = setup(rs, *pods)
    await drain(gc, queue)
    assert client.verbs("delete") == []
    pod_patches = {a[3]: a[4] for a in client.verbs("patch", "pods")}
    assert pod_patches.keys() == {"p0", "p1"}
    assert all(p["metadata"]["ownerReferences"] is None for p in pod_patches.values())
    rs_patch = client.verbs("patch", "replicasets")[-1]
    assert rs_patch[4]["metadata"]["finalizers"] is None

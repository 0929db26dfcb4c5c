"""Deployment sync against recorded client actions, and a simulated rollout checking its bounds."""

from __future__ import annotations

import copy

import pytest

from controllers.deployment import DeploymentController
from controllers.deployment.rsutil import (
    HASH_LABEL, REVISION, compute_hash, resolve_fenceposts, safe_encode,
)
from kubelite.api.resources import DEPLOYMENTS
from tests.unit.controllers.fakes import FakeClient, FakeQueue, FakeRecorder, FakeStore

pytestmark = pytest.mark.unit


def make_deploy(replicas=3, image="nginx:1", strategy=None, generation=1, **spec):
    d = {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": "default", "uid": "d-web", "generation": generation,
                      "resourceVersion": "1"},
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                  "strategy": strategy or {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                  "progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "c", "image": image}]}}}}
    d["spec"].update(spec)
    return d


class Cluster:
    """The fake client's objects mirrored into the stores, with ReplicaSets made available at once
    (standing in for the ReplicaSet controller and kubelets)."""

    def __init__(self, d):
        self.client = FakeClient((DEPLOYMENTS, d))
        self.d_store, self.rs_store, self.pod_store = FakeStore(d), FakeStore(), FakeStore()
        self.recorder = FakeRecorder()
        self.ctl = DeploymentController(self.client, self.d_store, self.rs_store, self.pod_store, FakeQueue(),
                                        self.recorder)
        self.ready_fraction = 1.0

    def refresh(self, make_available=True):
        self.rs_store.items.clear()
        for (res, ns, name), obj in self.client.objects.items():
            if res == "replicasets":
                if make_available:
                    n = obj["spec"]["replicas"]
                    obj["status"] = {"replicas": n, "readyReplicas": n, "availableReplicas": n,
                                     "observedGeneration": 1}
                obj["metadata"].setdefault("creationTimestamp", f"2024-01-01T00:00:{len(self.rs_store.items):02d}Z")
                self.rs_store.add(copy.deepcopy(obj))
            elif res == "deployments":
                self.d_store.add(copy.deepcopy(obj))

    async def sync(self, make_available=True):
        await self.ctl.sync("default/web")
        self.refresh(make_available)

    def rss(self):
        return sorted(self.rs_store.list(), key=lambda r: int(r["metadata"]["annotations"][REVISION]))

    def deployment(self):
        return self.d_store.get("default/web")

    def set_template(self, image):
        d = copy.deepcopy(self.deployment())
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        d["metadata"]["generation"] += 1
        self.client.put(DEPLOYMENTS, d)
        self.d_store.add(d)


def test_hash_is_fnv_in_the_safe_alphabet_and_changes_with_collisions():
    t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "a"}]}}
    h = compute_hash(t, None)
    assert h == compute_hash(copy.deepcopy(t), None)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10
    assert compute_hash(t, 1) != h
    assert safe_encode("0123456789") == "ghjklmnpqr"[:0] + "".join("bcdfghjklmnpqrstvwxz2456789"[ord(c) % 27] for c in "0123456789")


def test_fenceposts_round_surge_up_and_unavailable_down():
    assert resolve_fenceposts(make_deploy(10)) == (3, 2)
    assert resolve_fenceposts(make_deploy(3)) == (1, 0)
    d = make_deploy(3, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})
    assert resolve_fenceposts(d) == (0, 1)


async def test_first_sync_creates_the_replicaset_with_hash_revision_and_event():
    c = Cluster(make_deploy(3))
    await c.sync(make_available=False)
    (rs,) = c.rss()
    h = rs["metadata"]["labels"][HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", HASH_LABEL: h}
    assert rs["spec"]["template"]["metadata"]["labels"][HASH_LABEL] == h
    assert rs["spec"]["replicas"] == 3
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == "d-web"
    assert c.deployment()["metadata"]["annotations"][REVISION] == "1"
    assert ("web", "Normal", "ScalingReplicaSet", f"Scaled up replica set web-{h} from 0 to 3") in c.recorder.events
    status = c.deployment()["status"]
    assert status["observedGeneration"] == 1
    prog = next(x for x in status["conditions"] if x["type"] == "Progressing")
    assert prog["reason"] in ("NewReplicaSetCreated", "ReplicaSetUpdated")


async def test_rolling_update_stays_within_surge_and_unavailability_then_completes():
    c = Cluster(make_deploy(4))     # maxSurge 1, maxUnavailable 1
    for _ in range(3):
        await c.sync()
    c.set_template("nginx:2")
    steps = 0
    while True:
        await c.sync()
        rss = c.rss()
        total = sum(r["spec"]["replicas"] for r in rss)
        available = sum(r["status"]["availableReplicas"] for r in rss)
        assert total <= 4 + 1, rss
        assert available >= 4 - 1
        steps += 1
        new = rss[-1]
        if new["spec"]["replicas"] == 4 and all(r["spec"]["replicas"] == 0 for r in rss[:-1]):
            break
        assert steps < 20
    await c.sync()
    await c.sync()
    status = c.deployment()["status"]
    assert status["updatedReplicas"] == 4 and status["replicas"] == 4 and status["availableReplicas"] == 4
    assert status["unavailableReplicas"] == 0
    conds = {x["type"]: x for x in status["conditions"]}
    assert (conds["Available"]["status"], conds["Available"]["reason"]) == ("True", "MinimumReplicasAvailable")
    assert (conds["Progressing"]["status"], conds["Progressing"]["reason"]) == ("True", "NewReplicaSetAvailable")
    assert c.deployment()["metadata"]["annotations"][REVISION] == "2"


async def test_rollback_reuses_the_old_replicaset_with_a_new_revision():
    c = Cluster(make_deploy(2))
    for _ in range(2):
        await c.sync()
    first = c.rss()[0]["metadata"]["name"]
    c.set_template("nginx:2")
    for _ in range(6):
        await c.sync()
    c.set_template("nginx:1")   # what `kubectl rollout undo` does: the old template, patched in
    for _ in range(6):
        await c.sync()
    rss = {r["metadata"]["name"]: r for r in c.rs_store.list()}
    assert len(rss) == 2
    assert rss[first]["metadata"]["annotations"][REVISION] == "3"
    assert rss[first]["spec"]["replicas"] == 2
    assert c.deployment()["metadata"]["annotations"][REVISION] == "3"


async def test_revision_history_limit_deletes_the_oldest_sets():
    c = Cluster(make_deploy(1, revisionHistoryLimit=1))
    for image in ("a", "b", "c", "d"):
        c.set_template(image)
        for _ in range(5):
            await c.sync()
    names = [r["spec"]["template"]["spec"]["containers"][0]["image"] for r in c.rss()]
    assert names == ["c", "d"]
    assert len(c.client.verbs("delete", "replicasets")) == 2


async def test_recreate_scales_old_to_zero_before_creating_new():
    c = Cluster(make_deploy(3, strategy={"type": "Recreate"}))
    await c.sync()
    await c.sync()
    c.set_template("nginx:2")
    await c.sync()
    rss = c.rss()
    assert len(rss) == 1 and rss[0]["spec"]["replicas"] == 0       # old scaled to 0, no new set yet
    await c.sync()
    rss = c.rss()
    assert len(rss) == 2 and rss[1]["spec"]["replicas"] == 3


async def test_scaling_during_a_rollout_is_proportional():
    c = Cluster(make_deploy(10, strategy={"type": "RollingUpdate",
                                          "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}))
    for _ in range(3):
        await c.sync()
    c.set_template("nginx:2")
    await c.sync(make_available=False)        # new set gets the surge (3), old drops by maxUnavailable (2)
    rss = c.rss()
    assert [r["spec"]["replicas"] for r in rss] == [8, 3]
    d = copy.deepcopy(c.deployment())
    d["spec"]["replicas"] = 20
    c.client.put(DEPLOYMENTS, d)
    c.d_store.add(d)
    await c.ctl.sync("default/web")
    c.refresh(make_available=False)
    sizes = [r["spec"]["replicas"] for r in c.rss()]
    assert sum(sizes) == 23                    # 20 + maxSurge 3
    assert sizes[0] > sizes[1] > 3             # both grew, in proportion


async def test_paused_deployment_does_not_roll_and_reports_paused():
    c = Cluster(make_deploy(2))
    await c.sync()
    d = copy.deepcopy(c.deployment())
    d["spec"]["paused"] = True
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    c.client.put(DEPLOYMENTS, d)
    c.d_store.add(d)
    await c.sync()
    assert len(c.rss()) == 1
    prog = next(x for x in c.deployment()["status"]["conditions"] if x["type"] == "Progressing")
    assert (prog["status"], prog["reason"], prog["message"]) == ("Unknown", "DeploymentPaused", "Deployment is paused")


async def test_progress_deadline_exceeded():
    c = Cluster(make_deploy(2, progressDeadlineSeconds=1))
    await c.sync(make_available=False)
    d = copy.deepcopy(c.deployment())
    for cond in d["status"]["conditions"]:
        if cond["type"] == "Progressing":
            cond["lastUpdateTime"] = "2000-01-01T00:00:00Z"
    c.client.put(DEPLOYMENTS, d)
    c.d_store.add(d)
    await c.sync(make_available=False)
    prog = next(x for x in c.deployment()["status"]["conditions"] if x["type"] == "Progressing")
    assert (prog["status"], prog["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert prog["message"].endswith("has timed out progressing.")

"""What a DELETE does to one object, decided without a store (apiserver.deletion)."""

from __future__ import annotations

import pytest

from apiserver.deletion import FOREGROUND, ORPHAN, DeleteOptions, plan_delete
from kubelite.api import errors
from kubelite.api.resources import NAMESPACES, PODS, REPLICASETS

pytestmark = pytest.mark.unit


def now(offset: int) -> str:
    return f"T+{offset}"


def pod(node: str = "n1", **meta: object) -> dict:
    return {"metadata": {"name": "p", "uid": "u1", "resourceVersion": "7", **meta},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 5}, "status": {"phase": "Running"}}


def test_a_running_pod_is_marked_with_its_grace_then_a_shorter_grace_shortens_it() -> None:
    action, new = plan_delete(PODS, "p", pod(), DeleteOptions(), now)
    assert action == "mark" and new["metadata"]["deletionTimestamp"] == "T+5"
    assert new["metadata"]["deletionGracePeriodSeconds"] == 5
    again, same = plan_delete(PODS, "p", new, DeleteOptions(grace_period_seconds=30), now)
    assert again == "keep" and same is new                          # a longer grace never lengthens it
    action, shorter = plan_delete(PODS, "p", new, DeleteOptions(grace_period_seconds=1), now)
    assert action == "mark" and shorter["metadata"]["deletionGracePeriodSeconds"] == 1
    assert plan_delete(PODS, "p", new, DeleteOptions(grace_period_seconds=0), now)[0] == "remove"


def test_a_pod_on_no_node_goes_at_once() -> None:
    assert plan_delete(PODS, "p", pod(node=""), DeleteOptions(), now) == ("remove", pod(node=""))


def test_propagation_policies_add_their_finalizer_and_keep_the_object() -> None:
    obj = {"metadata": {"name": "rs", "uid": "u"}, "spec": {"replicas": 2}}
    assert plan_delete(REPLICASETS, "rs", obj, DeleteOptions(propagation_policy="Background"), now)[0] == "remove"
    for policy, finalizer in (("Orphan", ORPHAN), ("Foreground", FOREGROUND)):
        action, new = plan_delete(REPLICASETS, "rs", obj, DeleteOptions(propagation_policy=policy), now)
        assert action == "mark" and new["metadata"]["finalizers"] == [finalizer]
        assert new["metadata"]["deletionTimestamp"] == "T+0" and "finalizers" not in obj["metadata"]


def test_a_namespace_goes_terminating() -> None:
    ns = {"metadata": {"name": "team", "uid": "u"}, "spec": {}, "status": {"phase": "Active"}}
    action, new = plan_delete(NAMESPACES, "team", ns, DeleteOptions(), now)
    assert action == "mark" and new["status"]["phase"] == "Terminating"
    assert new["spec"]["finalizers"] == ["kubernetes"]


@pytest.mark.parametrize("options,text", [(DeleteOptions(precondition_uid="other"), "UID in precondition: other"),
                                          (DeleteOptions(precondition_rv="6"), "ResourceVersion in precondition: 6")])
def test_a_failed_precondition_is_a_conflict(options: DeleteOptions, text: str) -> None:
    with pytest.raises(errors.Conflict, match=text):
        plan_delete(PODS, "p", pod(), options, now)

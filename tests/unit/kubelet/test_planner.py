"""compute_pod_actions, table-tested (as Kubernetes' kuberuntime_manager_test does)."""

from __future__ import annotations

import pytest

from kubelet.planner import Backoff, backoff_key, compute_pod_actions
from tests.unit.kubelet.builders import S, ctr, pod, rp, sandbox

pytestmark = pytest.mark.unit


def test_new_pod_creates_sandbox_and_starts_all() -> None:
    a = compute_pod_actions(pod("a", "b"), rp())
    assert a.create_sandbox and not a.kill_pod and a.attempt == 0
    assert a.containers_to_start == ("a", "b")


def test_new_pod_with_init_starts_first_init_only() -> None:
    a = compute_pod_actions(pod("a", init=("i1", "i2")), rp())
    assert a.create_sandbox and a.next_init_container == "i1" and a.containers_to_start == ()


@pytest.mark.parametrize("init_states, expect_next, expect_apps", [
    ((("i1", "running", 0),), None, ()),
    ((("i1", "exited", 0),), "i2", ()),
    ((("i1", "exited", 0), ("i2", "exited", 0)), None, ("a",)),
    ((("i1", "exited", 1),), "i1", ()),
])
def test_init_containers_in_order(init_states, expect_next, expect_apps) -> None:
    cs = [ctr(n, s, c) for n, s, c in init_states]
    a = compute_pod_actions(pod("a", init=("i1", "i2")), rp(*cs, sandboxes=(sandbox(),)))
    assert not a.create_sandbox and not a.kill_pod
    assert a.next_init_container == expect_next
    assert a.containers_to_start == expect_apps


def test_failed_init_with_never_fails_pod() -> None:
    a = compute_pod_actions(pod("a", init=("i1",), policy="Never"),
                            rp(ctr("i1", "exited", 2), sandboxes=(sandbox(),)))
    assert a.kill_pod and a.pod_failed


@pytest.mark.parametrize("policy, code, restart", [
    ("Always", 0, True), ("Always", 1, True), ("OnFailure", 0, False), ("OnFailure", 1, True),
    ("Never", 0, False), ("Never", 1, False),
])
def test_restart_policy(policy: str, code: int, restart: bool) -> None:
    a = compute_pod_actions(pod("a", "b", policy=policy),
                            rp(ctr("a", "exited", code), ctr("b"), sandboxes=(sandbox(),)))
    assert a.containers_to_start == (("a",) if restart else ())
    assert not a.kill_pod


def test_all_exited_never_kills_pod() -> None:
    a = compute_pod_actions(pod("a", policy="Never"), rp(ctr("a", "exited", 0), sandboxes=(sandbox(),)))
    assert a.kill_pod and a.containers_to_start == ()


def test_running_pod_is_left_alone() -> None:
    a = compute_pod_actions(pod("a", "b"), rp(ctr("a"), ctr("b"), sandboxes=(sandbox(),)))
    assert a == type(a)(sandbox_id="sb1")


def test_dead_sandbox_is_recreated_with_next_attempt() -> None:
    a = compute_pod_actions(pod("a"), rp(ctr("a", "exited", 137), sandboxes=(sandbox(ready=False),)))
    assert a.create_sandbox and a.kill_pod and a.attempt == 1 and a.containers_to_start == ("a",)


def test_dead_sandbox_never_policy_is_not_rerun() -> None:
    a = compute_pod_actions(pod("a", policy="Never"), rp(ctr("a", "exited", 1), sandboxes=(sandbox(ready=False),)))
    assert a.kill_pod and not a.create_sandbox


def test_sandbox_without_ip_is_kept() -> None:
    # the runtime fails a sandbox whose network cannot be set up; one without an IP is not re-created
    a = compute_pod_actions(pod("a"), rp(ctr("a"), sandboxes=(sandbox(ip=None),)))
    assert not a.create_sandbox and not a.kill_pod


def test_changed_image_restarts_that_container() -> None:
    p = pod("a", "b")
    p["spec"]["containers"][0]["image"] = "nginx"
    a = compute_pod_actions(p, rp(ctr("a", id="ca"), ctr("b"), sandboxes=(sandbox(),)))
    assert list(a.containers_to_kill) == ["ca"] and a.containers_to_start == ("a",)
    assert "definition changed" in a.containers_to_kill["ca"].message


def test_liveness_failure_restarts() -> None:
    a = compute_pod_actions(pod("a"), rp(ctr("a", id="ca"), sandboxes=(sandbox(),)),
                            liveness_failed=frozenset({"a"}))
    assert a.containers_to_kill["ca"].reason == "Unhealthy" and a.containers_to_start == ("a",)


def test_deletion_kills_pod() -> None:
    p = pod("a")
    p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    a = compute_pod_actions(p, rp(ctr("a", id="ca"), sandboxes=(sandbox(),)))
    assert a.kill_pod and list(a.containers_to_kill) == ["ca"]


def test_crashloop_backoff_doubles_to_cap_and_resets() -> None:
    b = Backoff(base=10, cap=300)
    delays = [b.next("k", t) for t in range(0, 8)]
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]
    assert b.next("k", 7 + 601) == 10         # untouched for 10 min: from the base again


def test_planner_holds_container_in_backoff() -> None:
    p = pod("a")
    b = Backoff(base=10, cap=300)
    b.next(backoff_key(p, p["spec"]["containers"][0]), 30)
    state = rp(ctr("a", "exited", 1, finished=30 * S), sandboxes=(sandbox(),))
    a = compute_pod_actions(p, state, backoff=b, now=35)
    assert a.containers_to_start == () and a.backoff == {"a": pytest.approx(5)} and not a.kill_pod
    a = compute_pod_actions(p, state, backoff=b, now=41)
    assert a.containers_to_start == ("a",)


def test_dead_container_gc_keeps_newest_two() -> None:
    from kubelet.gc import dead_containers
    state = rp(ctr("a", "exited", 1, attempt=3), ctr("a", "exited", 1, attempt=2), ctr("a", "exited", 1, attempt=1),
               ctr("a", "exited", 1, attempt=0), ctr("b"), sandboxes=(sandbox(),))
    assert dead_containers(state) == ["a-1", "a-0"]

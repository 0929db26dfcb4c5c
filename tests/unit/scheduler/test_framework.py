"""The cycle runner (sampling, round robin, FitError message), the queue and the assume cache."""

from __future__ import annotations

import random

import pytest

from scheduler.cache import Cache
from scheduler.framework import CycleState, FitError
from scheduler.framework.runtime import Framework, num_feasible_nodes_to_find
from scheduler.plugins import SCORE_WEIGHTS, default_plugins
from scheduler.queue import SchedulingQueue
from tests.unit.scheduler.helpers import make_node, make_pod, node_info

pytestmark = pytest.mark.unit


def framework() -> Framework:
    return Framework("default-scheduler", default_plugins(), SCORE_WEIGHTS, rng=random.Random(1))


def test_adaptive_percentage_of_nodes_to_score():
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(100) == 100
    assert num_feasible_nodes_to_find(150) == 100            # 49 % of 150 = 73 -> at least 100
    assert num_feasible_nodes_to_find(1000) == 420           # 50 - 8 = 42 %
    assert num_feasible_nodes_to_find(5000) == 500           # 50 - 40 = 10 %
    assert num_feasible_nodes_to_find(20000) == 1000         # floor of 5 %
    assert num_feasible_nodes_to_find(1000, percentage=100) == 1000


def test_filter_stops_at_enough_feasible_nodes_and_rotates_start():
    fw = framework()
    nodes = [node_info(make_node(f"n{i:04}")) for i in range(1000)]
    res = fw.schedule(CycleState(), make_pod("p", cpu="100m"), nodes)
    assert res.feasible_nodes == 420 and res.evaluated_nodes == 420
    assert fw.next_start == 420
    fw.schedule(CycleState(), make_pod("q", cpu="100m"), nodes)
    assert fw.next_start == 840


def test_fit_error_message_is_kube_schedulers():
    fw = framework()
    nodes = [node_info(make_node(f"n{i}", memory="1Gi")) for i in range(3)]
    with pytest.raises(FitError) as err:
        fw.schedule(CycleState(), make_pod("big", memory="2Gi"), nodes)
    assert str(err.value) == ("0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are "
                              "available: 3 No preemption victims found for incoming pod.")
    mixed = [node_info(make_node("a", memory="1Gi")), node_info(make_node("b", unschedulable=True)),
             node_info(make_node("c", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]))]
    with pytest.raises(FitError) as err:
        fw.schedule(CycleState(), make_pod("big", memory="2Gi"), mixed)
    assert str(err.value) == (
        "0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {k: v}, "
        "1 node(s) were unschedulable. preemption: 0/3 nodes are available: 1 No preemption victims found "
        "for incoming pod, 2 Preemption is not helpful for scheduling.")
    with pytest.raises(FitError) as err:
        fw.schedule(CycleState(), make_pod("p"), [])
    assert str(err.value) == "0/0 nodes are available: ."


def test_scores_pick_the_least_allocated_node():
    fw = framework()
    nodes = [node_info(make_node("full"), make_pod("x", cpu="3", memory="6Gi")), node_info(make_node("empty"))]
    assert fw.schedule(CycleState(), make_pod("p", cpu="100m"), nodes).node == "empty"


def test_assumed_pods_prevent_overcommit_in_a_burst():
    cache = Cache()
    cache.add_node(make_node("n1", cpu="1", memory="1Gi"))
    cache.add_node(make_node("n2", cpu="1", memory="1Gi"))
    fw = framework()
    placed = []
    for i in range(4):
        pod = make_pod(f"p{i}", cpu="600m")
        try:
            res = fw.schedule(CycleState(), pod, cache.node_list())
        except FitError:
            placed.append(None)
            continue
        cache.assume_pod(pod, res.node)
        placed.append(res.node)
    assert sorted(p for p in placed if p) == ["n1", "n2"] and placed.count(None) == 2
    # the watch confirms p0; a failed binding forgets p1
    p0 = make_pod("p0", cpu="600m", node=placed[0])
    cache.add_pod(p0)
    assert not cache.is_assumed("default/p0")
    cache.forget_pod("default/p1")
    assert cache.get_node(placed[1]).requested.milli_cpu == 0
    assert cache.get_node(placed[0]).requested.milli_cpu == 600


def test_assumption_expires_after_binding_without_confirmation():
    now = [0.0]
    cache = Cache(ttl=30, clock=lambda: now[0])
    cache.add_node(make_node("n1"))
    cache.assume_pod(make_pod("p", cpu="1"), "n1")
    cache.finish_binding("default/p")
    now[0] = 29
    assert cache.cleanup_assumed() == []
    now[0] = 31
    assert cache.cleanup_assumed() == ["default/p"]
    assert cache.get_node("n1").requested.milli_cpu == 0


def test_queue_priority_backoff_and_move_on_event():
    now = [100.0]
    q = SchedulingQueue(clock=lambda: now[0])
    q.add(make_pod("low"))
    q.add(make_pod("high", priority=10))
    first = q.pop_nowait()
    assert first.key == "default/high"
    second = q.pop_nowait()
    assert second.key == "default/low" and q.pop_nowait() is None
    q.add_unschedulable(first, {"NodeResourcesFit"})
    assert q.pending()["unschedulable"] == 1
    q.move_all_to_active_or_backoff("NodeAdd")      # still backing off (1 s after the failure)
    assert q.pending()["backoff"] == 1 and q.pop_nowait() is None
    now[0] += 1.01
    again = q.pop_nowait()
    assert again.key == "default/high" and again.attempts == 2
    q.add_unschedulable(again)                        # no event since this pop: waits unschedulable
    assert q.pending()["unschedulable"] == 1
    # a move request during the in-flight cycle of "low" sends it to backoff, not unschedulable
    q.move_all_to_active_or_backoff("PodDelete")
    q.add_unschedulable(second)
    assert q.pending()["backoff"] == 2
    now[0] += 1.5     # high: 2nd attempt backs off 2 s; low: 1 s
    assert q.pop_nowait().key == "default/low"


def test_queue_backoff_caps_at_ten_seconds():
    now = [0.0]
    q = SchedulingQueue(clock=lambda: now[0])
    q.add(make_pod("p"))
    info = q.pop_nowait()
    info.attempts = 9
    q.add_unschedulable(info, error=True)
    now[0] = 9.9
    assert q.pop_nowait() is None
    now[0] = 10.0
    assert q.pop_nowait() is not None

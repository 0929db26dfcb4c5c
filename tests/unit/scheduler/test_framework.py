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


def test_cache_counts_tainted_and_cordoned_nodes_and_plugins_skip_when_none():
    cache = Cache()
    cache.add_node(make_node("a"))
    cache.add_node(make_node("b", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]))
    cache.add_node(make_node("c", unschedulable=True))
    st = cache.cycle_state()
    assert (st.get("NodesWithTaints"), st.get("UnschedulableNodes")) == (1, 1)
    fw = framework()
    for _ in range(3):     # taints and cordons are still honoured while some node has them
        assert fw.schedule(cache.cycle_state(), make_pod("p", cpu="100m"), cache.node_list()).node == "a"
    cache.update_node(make_node("b"))
    cache.remove_node("c")
    cache.add_node(make_node("c", unschedulable=True))
    cache.update_node(make_node("c"))
    st = cache.cycle_state()
    assert (st.get("NodesWithTaints"), st.get("UnschedulableNodes")) == (0, 0)
    fw.schedule(st, make_pod("p", cpu="100m"), cache.node_list())
    assert {"TaintToleration", "NodeUnschedulable"} <= st.skip_filter and "TaintToleration" in st.skip_score
    cache.update_node(make_node("a", taints=[{"key": "k", "effect": "NoExecute"}]))
    cache.remove_node("b")
    st = cache.cycle_state()
    assert st.get("NodesWithTaints") == 1
    assert fw.schedule(st, make_pod("p", cpu="100m"), cache.node_list()).node == "c"


def test_batch_scores_equal_per_node_scores_on_odd_nodes():
    from scheduler.plugins.balanced_allocation import BalancedAllocation
    from scheduler.plugins.noderesources_fit import NodeResourcesFit
    nodes = [node_info(make_node("zero-cpu", cpu="0")), node_info(make_node("zero-mem", memory="0")),
             node_info(make_node("full", cpu="1", memory="1Gi"), make_pod("x"), make_pod("y", cpu="950m")),
             node_info(make_node("over", cpu="100m", memory="100Mi"), make_pod("z")),
             node_info(make_node("big", cpu="64", memory="512Gi"), make_pod("w", cpu="3", memory="1Gi"))]
    pod = make_pod("p", cpu="250m", memory="300Mi")
    for plugin in (NodeResourcesFit(), BalancedAllocation()):
        state = CycleState()
        plugin.pre_score(state, pod, nodes) if hasattr(plugin, "pre_score") else plugin.pre_filter(state, pod, nodes)
        assert plugin.score_all(state, pod, nodes) == [plugin.score(state, pod, ni)[0] for ni in nodes]
        assert plugin.score_all(state, pod, nodes[2:]) == [plugin.score(state, pod, ni)[0] for ni in nodes[2:]]


def test_cache_update_of_a_bound_pod_recounts_only_when_its_requests_change():
    cache = Cache()
    cache.add_node(make_node("n1", cpu="1", memory="1Gi"))
    pod = make_pod("p", cpu="300m")
    cache.assume_pod(pod, "n1")
    bound = make_pod("p", cpu="300m", node="n1")
    cache.add_pod(bound)                     # the watch event confirming the assumption
    ni = cache.get_node("n1")
    assert not cache.is_assumed("default/p") and ni.pods["default/p"].pod is bound and ni.free_cpu == 700
    cache.update_pod(make_pod("p", cpu="500m", node="n1"))       # resized in place
    assert ni.requested.milli_cpu == 500 and ni.free_cpu == 500 and ni.free_pods == 109
    cache.remove_pod(bound)
    assert ni.free_cpu == 1000 and ni.free_pods == 110


def test_score_memo_follows_node_changes():
    from scheduler.plugins.noderesources_fit import NodeResourcesFit
    cache = Cache()
    cache.add_node(make_node("n1", cpu="2", memory="4Gi"))
    ni = cache.get_node("n1")
    fit, state, pod = NodeResourcesFit(), CycleState(), make_pod("p", cpu="500m", memory="1Gi")
    fit.pre_filter(state, pod, [ni])
    first = fit.score_all(state, pod, [ni])
    assert ni.memo0_key and fit.score_all(state, pod, [ni]) == first
    cache.assume_pod(make_pod("q", cpu="1", memory="2Gi"), "n1")     # the node changed: its memo goes
    assert ni.memo0_key is None
    assert fit.score_all(state, pod, [ni]) == [fit.score(state, pod, ni)[0]] != first
    cache.update_node(make_node("n1", cpu="8", memory="4Gi"))
    assert fit.score_all(state, pod, [ni]) == [fit.score(state, pod, ni)[0]]


def test_filter_wraps_around_the_node_list_and_visits_each_node_once():
    fw = framework()
    nodes = [node_info(make_node(f"n{i:04}", memory="1Gi" if i % 3 else "8Gi")) for i in range(300)]
    fw.next_start = 250
    seen: list[str] = []
    fit = next(p for p in fw.filter if p.name == "NodeResourcesFit")
    original = fit.filter_batch

    def spy(state, pod, chunk):
        seen.extend(ni.name for ni in chunk)
        return original(state, pod, chunk)
    fit.filter_batch = spy
    res = fw.schedule(CycleState(), make_pod("p", memory="2Gi"), nodes)
    assert res.feasible_nodes == 100 and len(seen) == len(set(seen)) == 300      # 1 in 3 fits: all visited
    assert seen[:50] == [f"n{i:04}" for i in range(250, 300)] and seen[50] == "n0000"
    assert fw.next_start == 250          # the 100th fitting node was n0249, the last one visited
    with pytest.raises(FitError):
        fw.schedule(CycleState(), make_pod("q", memory="16Gi"), nodes)
    assert len(seen) == 600 and len(set(seen[300:])) == 300


def test_cycle_parses_the_pod_once_and_the_assumption_reuses_it():
    cache = Cache()
    cache.add_node(make_node("n1", cpu="1", memory="1Gi"))
    pod = make_pod("p", cpu="600m")
    state = cache.cycle_state(pod)
    res = framework().schedule(state, pod, cache.node_list())
    pi = state.get("PodInfo")
    assert pi.requests.milli_cpu == 600 and state.get("PreFilterNodeResourcesFit")[0] is pi.requests
    cache.assume_pod(pod, res.node, pi)
    assert cache.get_node("n1").pods["default/p"] is pi and cache.get_node("n1").free_cpu == 400
    other = make_pod("q", cpu="300m")
    cache.assume_pod(other, "n1", pi)          # a PodInfo of another pod is not taken for this one
    assert cache.get_node("n1").pods["default/q"].requests.milli_cpu == 300

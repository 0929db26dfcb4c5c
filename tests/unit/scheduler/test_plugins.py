"""Each default plugin's Filter/Score on hand-built NodeInfos."""

from __future__ import annotations

import pytest

from scheduler.framework import Code, CycleState
from scheduler.framework.resources import parse_quantity, pod_requests
from scheduler.plugins import (
    BalancedAllocation, InterPodAffinity, NodeAffinity, NodeName, NodeResourcesFit, NodeUnschedulable,
    PodTopologySpread, TaintToleration,
)
from tests.unit.scheduler.helpers import make_node, make_pod, node_info

pytestmark = pytest.mark.unit


def run_filter(plugin, pod, ni, nodes=None):
    state = CycleState()
    if hasattr(plugin, "pre_filter"):
        st = plugin.pre_filter(state, pod, nodes or [ni])
        if st.is_skip():
            return None
    return plugin.filter(state, pod, ni)


def test_quantities_and_pod_requests_use_the_init_container_max_rule():
    assert parse_quantity("100m") * 1000 == 100
    assert parse_quantity("64Mi") == 64 * 2**20
    assert parse_quantity("1e3") == 1000
    with pytest.raises(ValueError):
        parse_quantity("12xyz")
    pod = make_pod("p", cpu="200m", memory="100Mi",
                   initContainers=[{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "10Mi"}}}])
    req = pod_requests(pod)
    assert (req.milli_cpu, req.memory) == (1000, 100 * 2**20)
    pod["spec"]["initContainers"][0]["restartPolicy"] = "Always"   # a sidecar adds up
    req = pod_requests(pod)
    assert (req.milli_cpu, req.memory) == (1200, 110 * 2**20)


def test_node_unschedulable_rejects_unless_tolerated():
    ni = node_info(make_node("n1", unschedulable=True))
    st = run_filter(NodeUnschedulable(), make_pod("p"), ni)
    assert st.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE and st.reasons == ("node(s) were unschedulable",)
    tol = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
    assert run_filter(NodeUnschedulable(), make_pod("p", tolerations=tol), ni).is_success()


def test_node_name():
    ni = node_info(make_node("n1"))
    assert run_filter(NodeName(), make_pod("p"), ni) is None   # skipped
    assert run_filter(NodeName(), make_pod("p", node="n1"), ni).is_success()
    st = run_filter(NodeName(), make_pod("p", node="n2"), ni)
    assert st.reasons == ("node(s) didn't match the requested node name",)


def test_resources_fit_counts_bound_and_assumed_pods():
    ni = node_info(make_node("n1", cpu="2", memory="1Gi", pods="3"),
                   make_pod("a", cpu="1500m", memory="512Mi"), make_pod("b", cpu="100m"))
    fit = NodeResourcesFit()
    assert run_filter(fit, make_pod("p", cpu="400m", memory="512Mi"), ni).is_success()
    st = run_filter(fit, make_pod("p", cpu="500m", memory="600Mi"), ni)
    assert st.code is Code.UNSCHEDULABLE
    assert st.reasons == ("Insufficient cpu", "Insufficient memory")
    ni.add_pod(__import__("scheduler.framework", fromlist=["PodInfo"]).PodInfo.of(make_pod("c")))
    assert run_filter(fit, make_pod("p"), ni).reasons == ("Too many pods",)
    gpu = make_pod("g")
    gpu["spec"]["containers"][0]["resources"] = {"requests": {"example.com/gpu": "1"}}
    assert run_filter(fit, gpu, node_info(make_node("n2"))).reasons == ("Insufficient example.com/gpu",)


def test_least_allocated_prefers_the_emptier_node():
    fit = NodeResourcesFit()
    busy = node_info(make_node("busy"), make_pod("x", cpu="3", memory="6Gi"))
    idle = node_info(make_node("idle"))
    pod = make_pod("p", cpu="500m", memory="1Gi")
    state = CycleState()
    fit.pre_filter(state, pod, [busy, idle])
    assert fit.score(state, pod, idle)[0] > fit.score(state, pod, busy)[0]
    # (4000-500)/4000*100 = 87, (8Gi-1Gi)/8Gi*100 = 87 -> 87
    assert fit.score(state, pod, idle)[0] == 87


def test_balanced_allocation():
    ba = BalancedAllocation()
    pod = make_pod("p", cpu="1", memory="2Gi")
    balanced = node_info(make_node("a", cpu="4", memory="8Gi"))
    skewed = node_info(make_node("b", cpu="4", memory="8Gi"), make_pod("x", cpu="3", memory="100Mi"))
    state = CycleState()
    ba.pre_score(state, pod, [balanced, skewed])
    assert ba.score(state, pod, balanced)[0] == 100
    assert ba.score(state, pod, skewed)[0] < 100


def test_node_affinity_and_selector():
    ni = node_info(make_node("n1", labels={"disk": "ssd", "zone": "a"}))
    na = NodeAffinity()
    assert run_filter(na, make_pod("p"), ni) is None
    assert run_filter(na, make_pod("p", nodeSelector={"disk": "ssd"}), ni).is_success()
    st = run_filter(na, make_pod("p", nodeSelector={"disk": "hdd"}), ni)
    assert st.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert st.reasons == ("node(s) didn't match Pod's node affinity/selector",)
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}
    assert run_filter(na, make_pod("p", affinity=aff), ni).is_success()
    aff["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"].pop()
    assert not run_filter(na, make_pod("p", affinity=aff), ni).is_success()
    pref = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}
    other = node_info(make_node("n2"))
    pod = make_pod("p", affinity=pref)
    state = CycleState()
    assert na.pre_score(state, pod, [ni, other]).is_success()
    scores = [na.score(state, pod, ni)[0], na.score(state, pod, other)[0]]
    na.normalize_score(state, pod, scores)
    assert scores == [100, 0]


def test_taint_toleration():
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    ni = node_info(make_node("n1", taints=[taint]))
    tt = TaintToleration()
    st = run_filter(tt, make_pod("p"), ni)
    assert st.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert st.reasons == ("node(s) had untolerated taint {dedicated: gpu}",)
    for tol in ({"key": "dedicated", "operator": "Equal", "value": "gpu"}, {"operator": "Exists"},
                {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}):
        assert run_filter(tt, make_pod("p", tolerations=[tol]), ni).is_success(), tol
    assert not run_filter(tt, make_pod("p", tolerations=[{"key": "dedicated", "value": "x"}]), ni).is_success()
    soft = node_info(make_node("n2", taints=[{"key": "k", "effect": "PreferNoSchedule"}]))
    clean = node_info(make_node("n3"))
    pod = make_pod("p")
    state = CycleState()
    scores = [tt.score(state, pod, soft)[0], tt.score(state, pod, clean)[0]]
    tt.normalize_score(state, pod, scores)
    assert scores == [0, 100]


def spread_pod(name, **kw):
    return make_pod(name, labels={"app": "web"}, topologySpreadConstraints=[
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"app": "web"}}}], **kw)


def test_pod_topology_spread_max_skew():
    a = node_info(make_node("a", labels={"zone": "z1"}), make_pod("w1", labels={"app": "web"}))
    b = node_info(make_node("b", labels={"zone": "z2"}))
    nolabel = node_info(make_node("c"))
    nodes = [a, b, nolabel]
    pts = PodTopologySpread()
    state = CycleState()
    pod = spread_pod("new")
    assert pts.pre_filter(state, pod, nodes).is_success()
    st = pts.filter(state, pod, a)
    assert st.code is Code.UNSCHEDULABLE and st.reasons == ("node(s) didn't match pod topology spread constraints",)
    assert pts.filter(state, pod, b).is_success()
    st = pts.filter(state, pod, nolabel)
    assert st.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert st.reasons == ("node(s) didn't match pod topology spread constraints (missing required label)",)
    assert run_filter(pts, make_pod("plain"), a) is None


def anti_pod(name, key="kubernetes.io/hostname", **kw):
    return make_pod(name, labels={"app": "db"}, affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": key, "labelSelector": {"matchLabels": {"app": "db"}}}]}}, **kw)


def test_inter_pod_anti_affinity_by_hostname_and_symmetry():
    a = node_info(make_node("a"), make_pod("db1", labels={"app": "db"}))
    b = node_info(make_node("b"))
    ipa = InterPodAffinity()
    state = CycleState()
    pod = anti_pod("db2")
    ipa.pre_filter(state, pod, [a, b])
    assert ipa.filter(state, pod, a).reasons == ("node(s) didn't match pod anti-affinity rules",)
    assert ipa.filter(state, pod, b).is_success()
    # symmetry: an existing pod's anti-affinity keeps a matching newcomer away
    a2 = node_info(make_node("a"), anti_pod("db1"))
    state = CycleState()
    plain = make_pod("x", labels={"app": "db"})
    assert ipa.pre_filter(state, plain, [a2, b]).is_success()
    assert ipa.filter(state, plain, a2).reasons == ("node(s) didn't satisfy existing pods anti-affinity rules",)
    assert ipa.filter(state, plain, b).is_success()


def test_inter_pod_affinity_required_and_first_pod_of_group():
    a = node_info(make_node("a", labels={"zone": "z1"}), make_pod("cache", labels={"app": "cache"}))
    b = node_info(make_node("b", labels={"zone": "z2"}))
    aff = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "cache"}}}]}}
    ipa = InterPodAffinity()
    state = CycleState()
    pod = make_pod("web", affinity=aff)
    ipa.pre_filter(state, pod, [a, b])
    assert ipa.filter(state, pod, a).is_success()
    st = ipa.filter(state, pod, b)
    assert st.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE and st.reasons == ("node(s) didn't match pod affinity rules",)
    # the first pod of a self-affine group may go anywhere
    self_aff = make_pod("c1", labels={"app": "solo"}, affinity={"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "solo"}}}]}})
    state = CycleState()
    ipa.pre_filter(state, self_aff, [a, b])
    assert ipa.filter(state, self_aff, b).is_success()


def test_inter_pod_preferred_affinity_scores():
    a = node_info(make_node("a"), make_pod("cache", labels={"app": "cache"}))
    b = node_info(make_node("b"))
    pod = make_pod("web", affinity={"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                           "labelSelector": {"matchLabels": {"app": "cache"}}}}]}})
    ipa = InterPodAffinity()
    state = CycleState()
    assert ipa.pre_score(state, pod, [a, b]).is_success()
    scores = [ipa.score(state, pod, a)[0], ipa.score(state, pod, b)[0]]
    ipa.normalize_score(state, pod, scores)
    assert scores == [100, 0]

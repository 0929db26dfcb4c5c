"""PodTopologySpread: keep matching pods spread across topology domains within maxSkew.

``whenUnsatisfiable: DoNotSchedule`` constraints filter, ``ScheduleAnyway`` ones score. Domains are
the values of ``topologyKey`` (e.g. ``kubernetes.io/hostname``, ``topology.kubernetes.io/zone``) on
the nodes eligible for the pod (its nodeSelector/affinity honoured, as nodeAffinityPolicy=Honor).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubelite.api.selectors import selector_matches
from scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, NodeInfo, Plugin, Status
from scheduler.framework.interface import Pod
from scheduler.plugins.nodeaffinity import pod_matches_node

ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
FILTER_KEY = "PreFilterPodTopologySpread"
SCORE_KEY = "PreScorePodTopologySpread"


@dataclass(slots=True)
class _Constraint:
    max_skew: int
    key: str
    selector: dict[str, Any]
    self_match: int


@dataclass(slots=True)
class _Counts:
    constraints: list[_Constraint]
    counts: list[dict[str, int]] = field(default_factory=list)   # per constraint: domain -> matching pods


def _constraints(pod: Pod, when: str) -> list[_Constraint]:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    out = []
    for c in (pod.get("spec") or {}).get("topologySpreadConstraints") or ():
        if (c.get("whenUnsatisfiable") or "DoNotSchedule") != when:
            continue
        sel = c.get("labelSelector")
        if sel is None:
            continue
        out.append(_Constraint(int(c.get("maxSkew") or 1), c.get("topologyKey", ""), sel,
                               1 if selector_matches(sel, labels) else 0))
    return out


def _count(pod: Pod, constraints: list[_Constraint], nodes: list[NodeInfo]) -> _Counts:
    ns = (pod.get("metadata") or {}).get("namespace", "")
    result = _Counts(constraints, [{} for _ in constraints])
    for ni in nodes:
        if not all(c.key in ni.labels for c in constraints) or not pod_matches_node(pod, ni):
            continue
        for c, counts in zip(constraints, result.counts):
            domain = ni.labels[c.key]
            n = 0
            for pi in ni.pods.values():
                if pi.namespace == ns and not pi.pod["metadata"].get("deletionTimestamp") \
                        and selector_matches(c.selector, pi.labels):
                    n += 1
            counts[domain] = counts.get(domain, 0) + n
    return result


class PodTopologySpread(Plugin):
    name = "PodTopologySpread"

    def pre_filter(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        constraints = _constraints(pod, "DoNotSchedule")
        if not constraints:
            return Status.skip()
        state.write(FILTER_KEY, _count(pod, constraints, nodes))
        return SUCCESS

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        st: _Counts | None = state.get(FILTER_KEY)
        if st is None:
            return SUCCESS
        for c, counts in zip(st.constraints, st.counts):
            domain = node_info.labels.get(c.key)
            if domain is None:
                return Status.unresolvable(ERR_MISSING_LABEL, plugin=self.name)
            min_match = min(counts.values(), default=0)
            if counts.get(domain, 0) + c.self_match - min_match > c.max_skew:
                return Status.unschedulable(ERR_CONSTRAINTS, plugin=self.name)
        return SUCCESS

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        constraints = _constraints(pod, "ScheduleAnyway")
        if not constraints:
            return Status.skip()
        state.write(SCORE_KEY, _count(pod, constraints, nodes))
        return SUCCESS

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        st: _Counts | None = state.get(SCORE_KEY)
        if st is None:
            return 0, SUCCESS
        total = 0
        for c, counts in zip(st.constraints, st.counts):
            domain = node_info.labels.get(c.key)
            if domain is not None:
                total += counts.get(domain, 0) + c.self_match
        return total, SUCCESS

    def normalize_score(self, state: CycleState, pod: Pod, scores: list[int]) -> Status:
        if not scores:
            return SUCCESS
        lo, hi = min(scores), max(scores)
        for i, s in enumerate(scores):
            scores[i] = MAX_NODE_SCORE if hi == lo else MAX_NODE_SCORE * (hi - s) // (hi - lo)
        return SUCCESS

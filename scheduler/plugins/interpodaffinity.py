"""InterPodAffinity: required and preferred pod (anti-)affinity by any topologyKey (hostname, zone).

A term selects pods by labels in its namespaces (default: the pod's own; an empty
``namespaceSelector`` means all namespaces). Also honours existing pods' required anti-affinity
against the incoming pod (symmetry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubelite.api.selectors import selector_matches
from scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, NodeInfo, Plugin, Status
from scheduler.framework.interface import HAVE_ANTI_AFFINITY_KEY, Pod
from scheduler.framework.nodeinfo import PodInfo

ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
FILTER_KEY = "PreFilterInterPodAffinity"
SCORE_KEY = "PreScoreInterPodAffinity"

Pair = tuple[str, str]


def term_matches(term: dict[str, Any], owner_ns: str, target: PodInfo) -> bool:
    """Does ``target`` fall under ``term`` (written by a pod in ``owner_ns``)?"""
    namespaces = term.get("namespaces") or ()
    ns_sel = term.get("namespaceSelector")
    if namespaces:
        if target.namespace not in namespaces:
            return False
    elif ns_sel is not None:
        if ns_sel.get("matchLabels") or ns_sel.get("matchExpressions"):
            return False  # namespace labels are not tracked; only the empty (all) selector is honoured
    elif target.namespace != owner_ns:
        return False
    return selector_matches(term.get("labelSelector"), target.labels)


@dataclass(slots=True)
class _FilterState:
    pod_info: PodInfo
    existing_anti: dict[Pair, int] = field(default_factory=dict)
    affinity: list[dict[Pair, int]] = field(default_factory=list)
    anti: list[dict[Pair, int]] = field(default_factory=list)
    any_affinity_match: bool = False


class InterPodAffinity(Plugin):
    name = "InterPodAffinity"

    def pre_filter(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        aff = (pod.get("spec") or {}).get("affinity") or {}
        if not aff.get("podAffinity") and not aff.get("podAntiAffinity") and state.get(HAVE_ANTI_AFFINITY_KEY) is False:
            return Status.skip()
        pi = PodInfo.of(pod)
        if not pi.required_affinity and not pi.required_anti_affinity:
            # the scheduler's cache tells whether any pod has required anti-affinity at all
            anti = state.get(HAVE_ANTI_AFFINITY_KEY)
            if anti is None:
                anti = any(n.pods_with_required_anti_affinity for n in nodes)
            if not anti:
                return Status.skip()
        st = _FilterState(pi, affinity=[{} for _ in pi.required_affinity],
                          anti=[{} for _ in pi.required_anti_affinity])
        for ni in nodes:
            for other in ni.pods.values():
                for term in other.required_anti_affinity:
                    key = term.get("topologyKey", "")
                    if key in ni.labels and term_matches(term, other.namespace, pi):
                        pair = (key, ni.labels[key])
                        st.existing_anti[pair] = st.existing_anti.get(pair, 0) + 1
                for terms, counts in ((pi.required_affinity, st.affinity), (pi.required_anti_affinity, st.anti)):
                    for term, c in zip(terms, counts):
                        key = term.get("topologyKey", "")
                        if key in ni.labels and term_matches(term, pi.namespace, other):
                            pair = (key, ni.labels[key])
                            c[pair] = c.get(pair, 0) + 1
        st.any_affinity_match = any(st.affinity)
        state.write(FILTER_KEY, st)
        return SUCCESS

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        st: _FilterState | None = state.get(FILTER_KEY)
        if st is None:
            return SUCCESS
        labels = node_info.labels
        for (key, value) in st.existing_anti:
            if labels.get(key) == value:
                return Status.unschedulable(ERR_EXISTING_ANTI_AFFINITY, plugin=self.name)
        for term, counts in zip(st.pod_info.required_anti_affinity, st.anti):
            key = term.get("topologyKey", "")
            if key in labels and counts.get((key, labels[key]), 0) > 0:
                return Status.unschedulable(ERR_ANTI_AFFINITY, plugin=self.name)
        if st.pod_info.required_affinity:
            ok = True
            for term, counts in zip(st.pod_info.required_affinity, st.affinity):
                key = term.get("topologyKey", "")
                if key not in labels or counts.get((key, labels[key]), 0) <= 0:
                    ok = False
                    break
            if not ok:
                # The first pod of a group may land anywhere if it matches its own terms.
                self_ok = not st.any_affinity_match and all(
                    term.get("topologyKey", "") in labels and term_matches(term, st.pod_info.namespace, st.pod_info)
                    for term in st.pod_info.required_affinity)
                if not self_ok:
                    return Status.unresolvable(ERR_AFFINITY, plugin=self.name)
        return SUCCESS

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        aff = (pod.get("spec") or {}).get("affinity") or {}
        if not aff.get("podAffinity") and not aff.get("podAntiAffinity"):
            return Status.skip()
        pi = PodInfo.of(pod)
        if not pi.preferred_affinity and not pi.preferred_anti_affinity:
            return Status.skip()
        scores: dict[Pair, int] = {}
        for ni in nodes:
            for other in ni.pods.values():
                for terms, sign in ((pi.preferred_affinity, 1), (pi.preferred_anti_affinity, -1)):
                    for wterm in terms:
                        term = wterm.get("podAffinityTerm") or {}
                        key = term.get("topologyKey", "")
                        if key in ni.labels and term_matches(term, pi.namespace, other):
                            pair = (key, ni.labels[key])
                            scores[pair] = scores.get(pair, 0) + sign * int(wterm.get("weight") or 0)
        state.write(SCORE_KEY, scores)
        return SUCCESS

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        scores: dict[Pair, int] = state.get(SCORE_KEY) or {}
        return sum(v for (k, val), v in scores.items() if node_info.labels.get(k) == val), SUCCESS

    def normalize_score(self, state: CycleState, pod: Pod, scores: list[int]) -> Status:
        if not scores:
            return SUCCESS
        lo, hi = min(scores), max(scores)
        for i, s in enumerate(scores):
            scores[i] = 0 if hi == lo else MAX_NODE_SCORE * (s - lo) // (hi - lo)
        return SUCCESS

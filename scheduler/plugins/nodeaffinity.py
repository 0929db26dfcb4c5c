"""NodeAffinity: spec.nodeSelector and required node affinity filter; preferred terms score."""

from __future__ import annotations

from typing import Any

from scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, NodeInfo, Plugin, Status
from scheduler.framework.interface import Pod
from scheduler.framework.labels import node_selector_matches, node_selector_term_matches

ERR_REASON = "node(s) didn't match Pod's node affinity/selector"


def _node_affinity(pod: Pod) -> dict[str, Any]:
    return ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}


def pod_matches_node(pod: Pod, node_info: NodeInfo) -> bool:
    """nodeSelector and required node affinity (kube's ``RequiredNodeAffinity.Match``)."""
    for k, v in ((pod.get("spec") or {}).get("nodeSelector") or {}).items():
        if node_info.labels.get(k) != v:
            return False
    required = _node_affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is not None and node_info.node is not None:
        return node_selector_matches(required, node_info.node)
    return True


class NodeAffinity(Plugin):
    name = "NodeAffinity"

    def pre_filter(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        spec = pod.get("spec") or {}
        if not spec.get("nodeSelector") and not _node_affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution"):
            return Status.skip()
        return SUCCESS

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        if pod_matches_node(pod, node_info):
            return SUCCESS
        return Status.unresolvable(ERR_REASON, plugin=self.name)

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        if not _node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution"):
            return Status.skip()
        return SUCCESS

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        total = 0
        if node_info.node is None:
            return 0, SUCCESS
        for term in _node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution") or ():
            weight = int(term.get("weight") or 0)
            if weight and node_selector_term_matches(term.get("preference") or {}, node_info.node):
                total += weight
        return total, SUCCESS

    def normalize_score(self, state: CycleState, pod: Pod, scores: list[int]) -> Status:
        default_normalize(scores, reverse=False)
        return SUCCESS


def default_normalize(scores: list[int], reverse: bool) -> None:
    """kube's ``helper.DefaultNormalizeScore``: scale to [0, 100] by the maximum, optionally reversed."""
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, s in enumerate(scores):
        s = MAX_NODE_SCORE * s // top
        scores[i] = MAX_NODE_SCORE - s if reverse else s

"""TaintToleration: NoSchedule/NoExecute taints need a toleration; PreferNoSchedule ones lower the score."""

from __future__ import annotations

from scheduler.framework import SUCCESS, CycleState, NodeInfo, Plugin, Status
from scheduler.framework.interface import NODES_WITH_TAINTS_KEY, Pod
from scheduler.framework.taints import first_untolerated, tolerates
from scheduler.plugins.nodeaffinity import default_normalize

_HARD = ("NoSchedule", "NoExecute")


class TaintToleration(Plugin):
    name = "TaintToleration"

    def pre_filter(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        """Skip: no node has a taint (the cache counts them), so every node passes."""
        return Status.skip() if state.get(NODES_WITH_TAINTS_KEY) == 0 else SUCCESS

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        """Skip: no node has a taint, so every score would be the same (no effect on the choice)."""
        return Status.skip() if state.get(NODES_WITH_TAINTS_KEY) == 0 else SUCCESS

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        if not node_info.taints:
            return SUCCESS
        tols = (pod.get("spec") or {}).get("tolerations") or []
        taint = first_untolerated(node_info.taints, tols, _HARD)
        if taint is None:
            return SUCCESS
        return Status.unresolvable(
            f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}", plugin=self.name)

    def filter_batch(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> dict[int, Status]:
        return {i: st for i, ni in enumerate(nodes) if ni.taints
                for st in (self.filter(state, pod, ni),) if not st.is_success()}

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        if not node_info.taints:
            return 0, SUCCESS
        tols = [t for t in (pod.get("spec") or {}).get("tolerations") or ()
                if not t.get("effect") or t.get("effect") == "PreferNoSchedule"]
        n = sum(1 for t in node_info.taints if t.get("effect") == "PreferNoSchedule" and not tolerates(tols, t))
        return n, SUCCESS

    def score_all(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> list[int]:
        return [self.score(state, pod, ni)[0] if ni.taints else 0 for ni in nodes]

    def normalize_score(self, state: CycleState, pod: Pod, scores: list[int]) -> Status:
        default_normalize(scores, reverse=True)
        return SUCCESS

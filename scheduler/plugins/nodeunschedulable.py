"""NodeUnschedulable: a cordoned node (spec.unschedulable) takes only pods tolerating its taint."""

from __future__ import annotations

from scheduler.framework import SUCCESS, CycleState, NodeInfo, Plugin, Status
from scheduler.framework.interface import UNSCHEDULABLE_NODES_KEY, Pod
from scheduler.framework.taints import tolerates

ERR_REASON = "node(s) were unschedulable"
_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable(Plugin):
    name = "NodeUnschedulable"

    def pre_filter(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        """Skip: no node is cordoned (the cache counts them)."""
        return Status.skip() if state.get(UNSCHEDULABLE_NODES_KEY) == 0 else SUCCESS

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        if not node_info.unschedulable:
            return SUCCESS
        if tolerates((pod.get("spec") or {}).get("tolerations") or (), _TAINT):
            return SUCCESS
        return Status.unresolvable(ERR_REASON, plugin=self.name)

    def filter_batch(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> dict[int, Status]:
        return {i: st for i, ni in enumerate(nodes) if ni.unschedulable
                for st in (self.filter(state, pod, ni),) if not st.is_success()}

"""NodeUnschedulable: a cordoned node (spec.unschedulable) takes only pods tolerating its taint."""

from __future__ import annotations

from scheduler.framework import SUCCESS, CycleState, NodeInfo, Plugin, Status
from scheduler.framework.interface import Pod
from scheduler.framework.taints import tolerates

ERR_REASON = "node(s) were unschedulable"
_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable(Plugin):
    name = "NodeUnschedulable"

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        if not node_info.unschedulable:
            return SUCCESS
        if tolerates((pod.get("spec") or {}).get("tolerations") or (), _TAINT):
            return SUCCESS
        return Status.unresolvable(ERR_REASON, plugin=self.name)

    def filter_batch(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> dict[int, Status]:
        return {i: st for i, ni in enumerate(nodes) if ni.unschedulable
                for st in (self.filter(state, pod, ni),) if not st.is_success()}

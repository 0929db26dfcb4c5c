"""NodeName: a pod that names its node (spec.nodeName) fits only that node."""

from __future__ import annotations

from scheduler.framework import SUCCESS, CycleState, NodeInfo, Plugin, Status
from scheduler.framework.interface import Pod

ERR_REASON = "node(s) didn't match the requested node name"


class NodeName(Plugin):
    name = "NodeName"

    def pre_filter(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        return SUCCESS if (pod.get("spec") or {}).get("nodeName") else Status.skip()

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        want = (pod.get("spec") or {}).get("nodeName")
        if not want or want == node_info.name:
            return SUCCESS
        return Status.unresolvable(ERR_REASON, plugin=self.name)

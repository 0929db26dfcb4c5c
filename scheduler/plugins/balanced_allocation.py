"""NodeResourcesBalancedAllocation: favour nodes whose cpu and memory usage stay balanced.

score = (1 − std(cpu fraction, memory fraction)) × 100, fractions including the pod, capped at 1.
"""

from __future__ import annotations

from scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, NodeInfo, Plugin, Status
from scheduler.framework.interface import POD_INFO_KEY, Pod
from scheduler.framework.nodeinfo import memoized_scores
from scheduler.framework.resources import non_zero_requests, pod_requests

STATE_KEY = "PreScoreBalancedAllocation"


class BalancedAllocation(Plugin):
    name = "NodeResourcesBalancedAllocation"

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        pi = state.get(POD_INFO_KEY)
        if pi is not None and pi.pod is pod:        # parsed once for the cycle
            state.write(STATE_KEY, (pi.non_zero_cpu, pi.non_zero_mem))
        else:
            state.write(STATE_KEY, non_zero_requests(pod, pod_requests(pod)))
        return SUCCESS

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        cpu, mem = state.get(STATE_KEY) or non_zero_requests(pod, pod_requests(pod))
        return self._balanced(node_info, cpu, mem), SUCCESS

    def score_all(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> list[int]:
        """The same score for many nodes in one call, memoized per node (it depends on the node's
        state and the pod's requests only)."""
        cpu, mem = state.get(STATE_KEY) or non_zero_requests(pod, pod_requests(pod))
        return memoized_scores(nodes, 1, f"{self.name}/{cpu}/{mem}", lambda ni: self._balanced(ni, cpu, mem))

    @staticmethod
    def _balanced(ni: NodeInfo, cpu: int, mem: int) -> int:
        """(1 − std(cpu fraction, memory fraction)) × 100; the std of two values is |a − b| / 2."""
        if not ni.alloc_cpu or not ni.alloc_mem:
            return 0
        f_cpu = min(1.0, (ni.non_zero_cpu + cpu) / ni.alloc_cpu)
        f_mem = min(1.0, (ni.non_zero_mem + mem) / ni.alloc_mem)
        return int((1 - abs(f_cpu - f_mem) / 2) * MAX_NODE_SCORE)

"""NodeResourcesBalancedAllocation: favour nodes whose cpu and memory usage stay balanced.

score = (1 − std(cpu fraction, memory fraction)) × 100, fractions including the pod, capped at 1.
"""

from __future__ import annotations

from scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, NodeInfo, Plugin, Status
from scheduler.framework.interface import Pod
from scheduler.framework.resources import non_zero_requests, pod_requests

STATE_KEY = "PreScoreBalancedAllocation"


class BalancedAllocation(Plugin):
    name = "NodeResourcesBalancedAllocation"

    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        state.write(STATE_KEY, non_zero_requests(pod, pod_requests(pod)))
        return SUCCESS

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        cpu, mem = state.get(STATE_KEY) or non_zero_requests(pod, pod_requests(pod))
        alloc = node_info.allocatable
        if not alloc.milli_cpu or not alloc.memory:
            return 0, SUCCESS
        f_cpu = min(1.0, (node_info.non_zero_cpu + cpu) / alloc.milli_cpu)
        f_mem = min(1.0, (node_info.non_zero_mem + mem) / alloc.memory)
        std = abs(f_cpu - f_mem) / 2
        return int((1 - std) * MAX_NODE_SCORE), SUCCESS

    def score_all(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> list[int]:
        cpu, mem = state._data.get(STATE_KEY) or non_zero_requests(pod, pod_requests(pod))
        try:   # fractions capped at 1; std of two values = |a − b| / 2
            return [int((1 - ((d if (d := (fc if (fc := (ni.non_zero_cpu + cpu) / ni.alloc_cpu) < 1.0 else 1.0)
                                    - (fm if (fm := (ni.non_zero_mem + mem) / ni.alloc_mem) < 1.0 else 1.0)) >= 0
                               else -d) / 2)) * MAX_NODE_SCORE) for ni in nodes]
        except ZeroDivisionError:   # a node without allocatable cpu or memory scores 0
            return [self.score(state, pod, ni)[0] for ni in nodes]

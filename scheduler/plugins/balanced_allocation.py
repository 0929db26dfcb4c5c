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
        out = []
        append = out.append
        for ni in nodes:
            c, m = ni.alloc_cpu, ni.alloc_mem
            if not c or not m:
                append(0)
                continue
            fc = (ni.non_zero_cpu + cpu) / c
            fm = (ni.non_zero_mem + mem) / m
            if fc > 1.0:
                fc = 1.0
            if fm > 1.0:
                fm = 1.0
            append(int((1 - (fc - fm if fc > fm else fm - fc) / 2) * MAX_NODE_SCORE))
        return out

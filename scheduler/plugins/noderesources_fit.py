"""NodeResourcesFit: requests must fit allocatable minus what bound and assumed pods request.

Also scores with the LeastAllocated strategy (kube's default ``NodeResourcesFit`` scoring):
the share of cpu and memory left free after placing the pod, averaged (weights 1/1).
"""

from __future__ import annotations

from scheduler.framework import MAX_NODE_SCORE, SUCCESS, CycleState, NodeInfo, Plugin, Status
from scheduler.framework.interface import POD_INFO_KEY, Pod
from scheduler.framework.nodeinfo import memoized_scores
from scheduler.framework.resources import CPU, EPHEMERAL, MEMORY, Resource, non_zero_requests, pod_requests

STATE_KEY = "PreFilterNodeResourcesFit"
TOO_MANY_PODS = "Too many pods"


def insufficient(resource: str) -> str:
    return f"Insufficient {resource}"


class NodeResourcesFit(Plugin):
    name = "NodeResourcesFit"

    def pre_filter(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        pi = state.get(POD_INFO_KEY)
        if pi is not None and pi.pod is pod:        # parsed once for the cycle
            state.write(STATE_KEY, (pi.requests, (pi.non_zero_cpu, pi.non_zero_mem)))
            return SUCCESS
        req = pod_requests(pod)
        state.write(STATE_KEY, (req, non_zero_requests(pod, req)))
        return SUCCESS

    def _requests(self, state: CycleState, pod: Pod) -> tuple[Resource, tuple[int, int]]:
        got = state._data.get(STATE_KEY)
        if got is None:
            req = pod_requests(pod)
            got = (req, non_zero_requests(pod, req))
            state.write(STATE_KEY, got)
        return got

    def filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        got = state._data.get(STATE_KEY)
        req = got[0] if got is not None else self._requests(state, pod)[0]
        alloc, used = node_info.allocatable, node_info.requested
        # fast path: everything fits (the common case on the hot path)
        if (len(node_info.pods) < alloc.allowed_pods and req.milli_cpu <= alloc.milli_cpu - used.milli_cpu
                and req.memory <= alloc.memory - used.memory
                and req.ephemeral_storage <= alloc.ephemeral_storage - used.ephemeral_storage and not req.scalar):
            return SUCCESS
        reasons: list[str] = []
        if len(node_info.pods) + 1 > alloc.allowed_pods:
            reasons.append(TOO_MANY_PODS)
        if req.milli_cpu and req.milli_cpu > alloc.milli_cpu - used.milli_cpu:
            reasons.append(insufficient(CPU))
        if req.memory and req.memory > alloc.memory - used.memory:
            reasons.append(insufficient(MEMORY))
        if req.ephemeral_storage and req.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage:
            reasons.append(insufficient(EPHEMERAL))
        for name, amount in req.scalar.items():
            if amount and amount > alloc.scalar.get(name, 0) - used.scalar.get(name, 0):
                reasons.append(insufficient(name))
        if reasons:
            return Status.unschedulable(*reasons, plugin=self.name)
        return SUCCESS

    def filter_batch(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> dict[int, Status]:
        req = self._requests(state, pod)[0]
        if req.scalar:
            return {i: st for i, ni in enumerate(nodes) for st in (self.filter(state, pod, ni),)
                    if not st.is_success()}
        cpu, mem, eph = req.milli_cpu, req.memory, req.ephemeral_storage
        # one pass over the flat free amounts; only the suspects get the full check (and a message)
        suspects = [i for i, ni in enumerate(nodes)
                    if cpu > ni.free_cpu or mem > ni.free_mem or ni.free_pods <= 0 or eph > ni.free_eph]
        if not suspects:
            return {}
        return {i: st for i in suspects for st in (self.filter(state, pod, nodes[i]),) if not st.is_success()}

    def score(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> tuple[int, Status]:
        _, (cpu, mem) = self._requests(state, pod)
        return self._least_allocated(node_info, cpu, mem), SUCCESS

    def score_all(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> list[int]:
        """The same score for many nodes in one call (the framework's fast path), memoized per node."""
        _, (cpu, mem) = self._requests(state, pod)
        return memoized_scores(nodes, 0, f"{self.name}/{cpu}/{mem}", lambda ni: self._least_allocated(ni, cpu, mem))

    @staticmethod
    def _least_allocated(ni: NodeInfo, cpu: int, mem: int) -> int:
        """LeastAllocated: per resource (free after the pod) × 100 // capacity, 0 if it does not fit; averaged."""
        total = 0
        for capacity, requested in ((ni.alloc_cpu, ni.non_zero_cpu + cpu), (ni.alloc_mem, ni.non_zero_mem + mem)):
            if capacity and requested <= capacity:
                total += (capacity - requested) * MAX_NODE_SCORE // capacity
        return total // 2

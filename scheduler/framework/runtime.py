"""The framework runner: one scheduling cycle (PreFilter → Filter → PostFilter → PreScore → Score →
NormalizeScore → select host) over a NodeInfo list, synchronous and free of I/O.

Like kube-scheduler it stops filtering once it has found ``num_feasible_nodes_to_find`` feasible
nodes (adaptive percentageOfNodesToScore), starting each cycle where the previous one stopped, and
scores only those.
"""

from __future__ import annotations

import operator
import random
from dataclasses import dataclass

from scheduler.framework.interface import (
    Code, CycleState, Diagnosis, FilterPlugin, FitError, NormalizeScorePlugin, Plugin, Pod,
    PostFilterPlugin, PreFilterPlugin, PreScorePlugin, ReservePlugin, ScorePlugin, Status,
)
from scheduler.framework.nodeinfo import NodeInfo

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
BASE_PERCENTAGE_OF_NODES_TO_SCORE = 50
CHUNK = 64                      # nodes filtered per batch


def num_feasible_nodes_to_find(num_all_nodes: int, percentage: int = 0) -> int:
    """kube-scheduler's ``numFeasibleNodesToFind``: 50 − nodes/125 percent (min 5 %), at least 100 nodes."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return num_all_nodes
    adaptive = percentage
    if adaptive <= 0:
        adaptive = BASE_PERCENTAGE_OF_NODES_TO_SCORE - num_all_nodes // 125
        if adaptive < MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND:
            adaptive = MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND
    n = num_all_nodes * adaptive // 100
    return max(n, MIN_FEASIBLE_NODES_TO_FIND)


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    node: str
    evaluated_nodes: int
    feasible_nodes: int


class Framework:
    """A profile: its plugins per extension point and the score weights."""

    def __init__(self, name: str, plugins: list[Plugin], score_weights: dict[str, int] | None = None,
                 percentage_of_nodes_to_score: int = 0, rng: random.Random | None = None) -> None:
        self.name = name
        self.plugins = plugins
        self.pre_filter = [p for p in plugins if isinstance(p, PreFilterPlugin)]
        self.filter = [p for p in plugins if isinstance(p, FilterPlugin)]
        self.post_filter = [p for p in plugins if isinstance(p, PostFilterPlugin)]
        self.pre_score = [p for p in plugins if isinstance(p, PreScorePlugin)]
        self.score = [p for p in plugins if isinstance(p, ScorePlugin)]
        self.reserve = [p for p in plugins if isinstance(p, ReservePlugin)]
        self.weights = {p.name: (score_weights or {}).get(p.name, 1) for p in self.score}
        # per Score plugin, resolved once: (name, score_all or None, score, normalize_score or None, weight)
        self._scorers = [(p.name, getattr(p, "score_all", None), p.score,
                          p.normalize_score if isinstance(p, NormalizeScorePlugin) else None, self.weights[p.name])
                         for p in self.score]
        self.percentage = percentage_of_nodes_to_score
        self.next_start = 0
        self._rng = rng or random.Random()

    # -- filtering ---------------------------------------------------------------------------------
    def run_pre_filter(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status:
        for p in self.pre_filter:
            st = p.pre_filter(state, pod, nodes)
            if st.is_skip():
                state.skip_filter.add(p.name)
            elif not st.is_success():
                st.plugin = st.plugin or p.name
                return st
        return Status()

    def run_filter(self, state: CycleState, pod: Pod, node_info: NodeInfo) -> Status:
        skip = state.skip_filter
        for p in self.filter:
            if p.name in skip:
                continue
            st = p.filter(state, pod, node_info)
            if st.code is not Code.SUCCESS:
                st.plugin = st.plugin or p.name
                return st
        return Status()

    def find_nodes_that_fit(self, state: CycleState, pod: Pod, nodes: list[NodeInfo],
                            diagnosis: Diagnosis) -> list[NodeInfo]:
        """Filter from where the previous cycle stopped (round robin) until ``want`` nodes fit.

        Nodes go through the filters in chunks (the first as large as ``want``: usually most nodes
        fit); a plugin with ``filter_batch(state, pod, nodes)`` (returning ``{index: Status}`` for
        the rejected ones only) filters a whole chunk in one call, the others node by node. Plugins
        run in profile order, each on the survivors of the previous.
        """
        n = len(nodes)
        if n == 0:
            return []
        want = num_feasible_nodes_to_find(n, self.percentage)
        filters = [(p.name, getattr(p, "filter_batch", None), p.filter)
                   for p in self.filter if p.name not in state.skip_filter]
        feasible: list[NodeInfo] = []
        start = self.next_start % n
        statuses = diagnosis.node_statuses
        success = Code.SUCCESS
        processed = n
        pos = 0
        while pos < n:
            size = max(CHUNK, want - len(feasible))
            # nodes[start + pos:][:size], wrapping around (no copy of the whole list: that would touch
            # the reference count of every node)
            lo = start + pos
            if lo >= n:
                chunk = nodes[lo - n:min(lo - n + size, start)]
            else:
                chunk = nodes[lo:lo + size]
                if len(chunk) < size:
                    chunk += nodes[:min(size - len(chunk), start)]
            survivors = chunk
            for name, batch, single in filters:
                if batch is not None:
                    rejected = batch(state, pod, survivors)
                else:
                    rejected = {}
                    for i, ni in enumerate(survivors):
                        st = single(state, pod, ni)
                        if st.code is not success:
                            rejected[i] = st
                if rejected:
                    for i, st in rejected.items():
                        if st.code is Code.ERROR:
                            raise RuntimeError(f"running {name} filter on node {survivors[i].name}: {st.message}")
                        st.plugin = st.plugin or name
                        statuses[survivors[i].name] = st
                        diagnosis.unschedulable_plugins.add(st.plugin)
                    survivors = [ni for i, ni in enumerate(survivors) if i not in rejected]
            if len(feasible) + len(survivors) >= want:
                survivors = survivors[:want - len(feasible)]
                feasible.extend(survivors)
                last = survivors[-1]
                # resume right after the last node kept (kube counts processed nodes the same way)
                processed = pos + next(i for i in range(len(chunk) - 1, -1, -1) if chunk[i] is last) + 1
                break
            feasible.extend(survivors)
            pos += len(chunk)
        self.next_start = (start + processed) % n
        return feasible

    # -- scoring -----------------------------------------------------------------------------------
    def prioritize(self, state: CycleState, pod: Pod, feasible: list[NodeInfo]) -> list[int]:
        for p in self.pre_score:
            st = p.pre_score(state, pod, feasible)
            if st.is_skip():
                state.skip_score.add(p.name)
        totals: list[int] | None = None
        skip = state.skip_score
        for name, score_all, score, normalize, w in self._scorers:
            if name in skip:
                continue
            scores = score_all(state, pod, feasible) if score_all else [score(state, pod, ni)[0] for ni in feasible]
            if normalize is not None:
                normalize(state, pod, scores)
            if w != 1:
                scores = [s * w for s in scores]
            totals = scores if totals is None else list(map(operator.add, totals, scores))
        return totals if totals is not None else [0] * len(feasible)

    def select_host(self, feasible: list[NodeInfo], totals: list[int]) -> str:
        """Highest total; ties broken uniformly at random (as kube's reservoir sampling does)."""
        best = max(totals)
        ties = totals.count(best)
        if ties == 1:
            return feasible[totals.index(best)].name
        k = self._rng.randrange(ties)
        if ties == len(totals):          # all tie (e.g. identical empty nodes)
            return feasible[k].name
        if k < 16:
            i = totals.index(best)
            for _ in range(k):
                i = totals.index(best, i + 1)
            return feasible[i].name
        return feasible[[i for i, t in enumerate(totals) if t == best][k]].name

    # -- the cycle ---------------------------------------------------------------------------------
    def schedule(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> ScheduleResult:
        """Pick a node for ``pod``.

        Raises:
            FitError: no node fits; ``str()`` is the FailedScheduling message.
        """
        diagnosis = Diagnosis()
        if not nodes:
            raise FitError(pod, 0, diagnosis)
        st = self.run_pre_filter(state, pod, nodes)
        if not st.is_success():
            if st.code is Code.ERROR:
                raise RuntimeError(f"running PreFilter plugin {st.plugin}: {st.message}")
            diagnosis.pre_filter_msg = st.message
            for ni in nodes:
                diagnosis.node_statuses[ni.name] = st
            diagnosis.unschedulable_plugins.add(st.plugin)
            raise FitError(pod, len(nodes), diagnosis)
        feasible = self.find_nodes_that_fit(state, pod, nodes, diagnosis)
        if not feasible:
            for p in self.post_filter:
                pst = p.post_filter(state, pod, diagnosis.node_statuses, nodes)
                if pst.reasons:
                    diagnosis.post_filter_msg = pst.message
            raise FitError(pod, len(nodes), diagnosis)
        evaluated = len(feasible) + len(diagnosis.node_statuses)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, evaluated, 1)
        totals = self.prioritize(state, pod, feasible)
        return ScheduleResult(self.select_host(feasible, totals), evaluated, len(feasible))

    def run_reserve(self, state: CycleState, pod: Pod, node_name: str) -> Status:
        for i, p in enumerate(self.reserve):
            st = p.reserve(state, pod, node_name)
            if not st.is_success():
                for q in reversed(self.reserve[:i + 1]):
                    q.unreserve(state, pod, node_name)
                return st
        return Status()

    def run_unreserve(self, state: CycleState, pod: Pod, node_name: str) -> None:
        for p in reversed(self.reserve):
            p.unreserve(state, pod, node_name)

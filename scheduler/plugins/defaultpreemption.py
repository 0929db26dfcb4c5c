"""DefaultPreemption (PostFilter): explains why preemption cannot help, as kube-scheduler words it.

kubelite does not evict victims yet; this plugin reports the outcome kube-scheduler reaches when no
lower-priority pods exist: "preemption: 0/N nodes are available: ..." appended to FailedScheduling.
Nodes rejected as UnschedulableAndUnresolvable get "Preemption is not helpful for scheduling"; the
others "No preemption victims found for incoming pod" unless they hold lower-priority pods, in which
case their filter reasons stay.
"""

from __future__ import annotations

from scheduler.framework import Code, CycleState, NodeInfo, Plugin, Status
from scheduler.framework.interface import Pod, reasons_histogram

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


def _priority(pod: Pod) -> int:
    return int((pod.get("spec") or {}).get("priority") or 0)


class DefaultPreemption(Plugin):
    name = "DefaultPreemption"

    def post_filter(self, state: CycleState, pod: Pod, statuses: dict[str, Status],
                    nodes: list[NodeInfo]) -> Status:
        if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
            return Status.unresolvable("not eligible due to preemptionPolicy=Never.", plugin=self.name)
        prio = _priority(pod)
        by_name = {n.name: n for n in nodes}
        outcome: dict[str, Status] = {}
        for name, st in statuses.items():
            if st.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                outcome[name] = Status.unresolvable(NOT_HELPFUL)
                continue
            ni = by_name.get(name)
            lower = ni is not None and any(_priority(p.pod) < prio for p in ni.pods.values())
            outcome[name] = st if lower else Status.unresolvable(NO_VICTIMS)
        msg = f"preemption: 0/{len(statuses)} nodes are available: {reasons_histogram(outcome)}."
        return Status.unschedulable(msg, plugin=self.name)

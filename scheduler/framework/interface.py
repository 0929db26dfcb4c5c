"""The scheduling framework's contract: Status codes, CycleState and one Protocol per extension point.

Shaped after kube-scheduler's ``pkg/scheduler/framework/interface.go``: plugins return a
:class:`Status` (never raise for an expected outcome), keep per-cycle scratch data in a
:class:`CycleState`, and read the :class:`~scheduler.framework.nodeinfo.NodeInfo` snapshot they get.
No I/O here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from scheduler.framework.nodeinfo import NodeInfo

Pod = dict[str, Any]
Node = dict[str, Any]

MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0

# Cluster-wide facts the cache writes into every CycleState (absent: plugins compute without them).
HAVE_ANTI_AFFINITY_KEY = "HavePodsWithRequiredAntiAffinity"   # bool: any pod with required anti-affinity
NODES_WITH_TAINTS_KEY = "NodesWithTaints"                      # int: nodes carrying any taint
UNSCHEDULABLE_NODES_KEY = "UnschedulableNodes"                 # int: nodes with spec.unschedulable
POD_INFO_KEY = "PodInfo"            # the cycle's PodInfo (requests parsed once), written by Cache.cycle_state


class Code(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5


@dataclass(slots=True)
class Status:
    """The outcome of a plugin call: a code, the reasons (messages) and the plugin that failed."""

    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @classmethod
    def unschedulable(cls, *reasons: str, plugin: str = "") -> "Status":
        return cls(Code.UNSCHEDULABLE, reasons, plugin)

    @classmethod
    def unresolvable(cls, *reasons: str, plugin: str = "") -> "Status":
        return cls(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)

    @classmethod
    def error(cls, reason: str, plugin: str = "") -> "Status":
        return cls(Code.ERROR, (reason,), plugin)

    @classmethod
    def skip(cls) -> "Status":
        return cls(Code.SKIP)

    def is_success(self) -> bool:
        return self.code is Code.SUCCESS

    def is_skip(self) -> bool:
        return self.code is Code.SKIP

    def is_rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)


SUCCESS = Status()


class CycleState:
    """Per-pod, per-cycle scratchpad plugins write in PreFilter/PreScore and read later."""

    __slots__ = ("_data", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}     # plugins on the hot path may read it directly
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()

    def write(self, key: str, value: Any) -> None:
        self._data[key] = value

    def read(self, key: str) -> Any:
        """The value written under ``key``; raises ``KeyError`` when no plugin wrote it."""
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)


class Plugin:
    """Base of every plugin: a name (kube-scheduler's name) and nothing else."""

    name: str = ""


@runtime_checkable
class PreFilterPlugin(Protocol):
    name: str

    def pre_filter(self, state: CycleState, pod: Pod, nodes: list["NodeInfo"]) -> Status: ...


@runtime_checkable
class FilterPlugin(Protocol):
    name: str

    def filter(self, state: CycleState, pod: Pod, node_info: "NodeInfo") -> Status: ...


@runtime_checkable
class PreScorePlugin(Protocol):
    name: str

    def pre_score(self, state: CycleState, pod: Pod, nodes: list["NodeInfo"]) -> Status: ...


@runtime_checkable
class ScorePlugin(Protocol):
    name: str

    def score(self, state: CycleState, pod: Pod, node_info: "NodeInfo") -> tuple[int, Status]: ...


@runtime_checkable
class NormalizeScorePlugin(Protocol):
    """A Score plugin that also rescales its raw scores into [0, MAX_NODE_SCORE]."""

    name: str

    def normalize_score(self, state: CycleState, pod: Pod, scores: list[int]) -> Status: ...


@runtime_checkable
class ReservePlugin(Protocol):
    name: str

    def reserve(self, state: CycleState, pod: Pod, node_name: str) -> Status: ...

    def unreserve(self, state: CycleState, pod: Pod, node_name: str) -> None: ...


@runtime_checkable
class PostFilterPlugin(Protocol):
    name: str

    def post_filter(self, state: CycleState, pod: Pod, statuses: dict[str, Status],
                    nodes: list["NodeInfo"]) -> Status: ...


@runtime_checkable
class BindPlugin(Protocol):
    """Binds asynchronously (the only extension point that does I/O)."""

    name: str

    async def bind(self, state: CycleState, pod: Pod, node_name: str) -> Status: ...


@dataclass(slots=True)
class Diagnosis:
    """Why a pod fits nowhere: each node's failing Status, and the PostFilter's message."""

    node_statuses: dict[str, Status] = field(default_factory=dict)
    unschedulable_plugins: set[str] = field(default_factory=set)
    pre_filter_msg: str = ""
    post_filter_msg: str = ""


class FitError(Exception):
    """No node fits the pod; ``str()`` is kube-scheduler's FailedScheduling message."""

    def __init__(self, pod: Pod, num_all_nodes: int, diagnosis: Diagnosis) -> None:
        super().__init__()
        self.pod = pod
        self.num_all_nodes = num_all_nodes
        self.diagnosis = diagnosis

    def __str__(self) -> str:
        return fit_error_message(self.num_all_nodes, self.diagnosis)


def reasons_histogram(statuses: dict[str, Status]) -> str:
    """``"3 Insufficient memory, 1 node(s) were unschedulable"``: counts per reason, string-sorted."""
    counts: dict[str, int] = {}
    for status in statuses.values():
        for reason in status.reasons:
            counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))


def fit_error_message(num_all_nodes: int, diagnosis: Diagnosis) -> str:
    if diagnosis.pre_filter_msg:
        msg = f"0/{num_all_nodes} nodes are available: {diagnosis.pre_filter_msg}."
    else:
        msg = f"0/{num_all_nodes} nodes are available: {reasons_histogram(diagnosis.node_statuses)}."
    if diagnosis.post_filter_msg:
        msg += " " + diagnosis.post_filter_msg
    return msg

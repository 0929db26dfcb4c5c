"""NodeInfo: one node with the pods bound or assumed on it and what they request (the snapshot unit).

The scheduling cycle runs without awaiting, so the cache's NodeInfos are a consistent snapshot for
its duration; plugins only read them. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import sys
from typing import Any, Callable

MEMO_SLOTS = 2     # per node, one remembered score per slot (plugins pick distinct slots)

from scheduler.framework.resources import Resource, non_zero_requests, pod_requests


def pod_key(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


@dataclass(slots=True)
class PodInfo:
    """A pod with what the scheduler derives from it once (requests, affinity presence)."""

    pod: dict[str, Any]
    key: str
    requests: Resource
    non_zero_cpu: int
    non_zero_mem: int
    namespace: str
    labels: dict[str, str]
    required_affinity: list[dict[str, Any]]
    required_anti_affinity: list[dict[str, Any]]
    preferred_affinity: list[dict[str, Any]]
    preferred_anti_affinity: list[dict[str, Any]]

    @classmethod
    def of(cls, pod: dict[str, Any]) -> "PodInfo":
        req = pod_requests(pod)
        cpu, mem = non_zero_requests(pod, req)
        meta = pod.get("metadata") or {}
        aff = (pod.get("spec") or {}).get("affinity") or {}
        pa = aff.get("podAffinity") or {}
        paa = aff.get("podAntiAffinity") or {}
        return cls(
            pod=pod, key=pod_key(pod), requests=req, non_zero_cpu=cpu, non_zero_mem=mem,
            namespace=meta.get("namespace", ""), labels=meta.get("labels") or {},
            required_affinity=list(pa.get("requiredDuringSchedulingIgnoredDuringExecution") or ()),
            required_anti_affinity=list(paa.get("requiredDuringSchedulingIgnoredDuringExecution") or ()),
            preferred_affinity=list(pa.get("preferredDuringSchedulingIgnoredDuringExecution") or ()),
            preferred_anti_affinity=list(paa.get("preferredDuringSchedulingIgnoredDuringExecution") or ()),
        )

    @property
    def has_affinity(self) -> bool:
        return bool(self.required_affinity or self.required_anti_affinity
                    or self.preferred_affinity or self.preferred_anti_affinity)


@dataclass(slots=True)
class NodeInfo:
    """A node, its pods (bound and assumed) and the sums the filters and scorers read."""

    name: str
    # hot fields first: the filter and score loops read only these (fewer cache lines per node)
    free_cpu: int = 0           # allocatable − requested (and pod slots left), flat for the fit filter
    free_mem: int = 0
    free_eph: int = 0
    free_pods: int = 0
    # Remembered scores of this node state, inline (no dict to reach: the scoring loops touch only this
    # object): slot i holds (memo{i}_key, memo{i}_val); keys are interned strings, None after any change.
    memo0_key: str | None = None
    memo0_val: int = 0
    memo1_key: str | None = None
    memo1_val: int = 0
    alloc_cpu: int = 0          # allocatable.milli_cpu / .memory, flat for the scorers' hot loops
    alloc_mem: int = 0
    node: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, Any]] = field(default_factory=list)
    unschedulable: bool = False
    allocatable: Resource = field(default_factory=Resource)
    requested: Resource = field(default_factory=Resource)
    non_zero_cpu: int = 0
    non_zero_mem: int = 0
    pods: dict[str, PodInfo] = field(default_factory=dict)
    pods_with_affinity: int = 0
    pods_with_required_anti_affinity: int = 0
    generation: int = 0

    def _refresh_free(self) -> None:
        a, r = self.allocatable, self.requested
        self.free_cpu = a.milli_cpu - r.milli_cpu
        self.free_mem = a.memory - r.memory
        self.free_eph = a.ephemeral_storage - r.ephemeral_storage
        self.free_pods = a.allowed_pods - len(self.pods)

    def set_node(self, node: dict[str, Any]) -> None:
        self.node = node
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.labels = meta.get("labels") or {}
        self.taints = list(spec.get("taints") or ())
        self.unschedulable = bool(spec.get("unschedulable"))
        self.allocatable = Resource.from_list(status.get("allocatable") or status.get("capacity"))
        self.alloc_cpu, self.alloc_mem = self.allocatable.milli_cpu, self.allocatable.memory
        self._refresh_free()
        self.generation += 1
        self.memo0_key = self.memo1_key = None

    def add_pod(self, pi: PodInfo) -> None:
        if pi.key in self.pods:
            self.remove_pod(pi.key)
        self.pods[pi.key] = pi
        self.requested.add(pi.requests)
        self.non_zero_cpu += pi.non_zero_cpu
        self.non_zero_mem += pi.non_zero_mem
        if pi.has_affinity:
            self.pods_with_affinity += 1
        if pi.required_anti_affinity:
            self.pods_with_required_anti_affinity += 1
        self._refresh_free()
        self.generation += 1
        self.memo0_key = self.memo1_key = None

    def remove_pod(self, key: str) -> PodInfo | None:
        pi = self.pods.pop(key, None)
        if pi is None:
            return None
        self.requested.add(pi.requests, -1)
        self.non_zero_cpu -= pi.non_zero_cpu
        self.non_zero_mem -= pi.non_zero_mem
        if pi.has_affinity:
            self.pods_with_affinity -= 1
        if pi.required_anti_affinity:
            self.pods_with_required_anti_affinity -= 1
        self._refresh_free()
        self.generation += 1
        self.memo0_key = self.memo1_key = None
        return pi


def memoized_scores(nodes: list[NodeInfo], slot: int, key: str, score_one: Callable[[NodeInfo], int]) -> list[int]:
    """``score_one(node)`` for each node, remembered in the node's memo ``slot`` until the node changes.

    ``key`` must name the plugin and everything of the pod the score depends on (e.g. its requests);
    a plugin uses its own slot. A node changes only when a pod lands on or leaves it, so in a burst
    nearly every node visited again scores from its memo.
    """
    key = sys.intern(key)
    scores: list[Any]
    if slot == 0:
        scores = [ni.memo0_val if ni.memo0_key is key else None for ni in nodes]
    else:
        scores = [ni.memo1_val if ni.memo1_key is key else None for ni in nodes]
    i = -1
    try:
        while True:                        # the misses, found in C (usually one or two per cycle)
            i = scores.index(None, i + 1)
            ni = nodes[i]
            scores[i] = value = score_one(ni)
            if slot == 0:
                ni.memo0_key, ni.memo0_val = key, value
            else:
                ni.memo1_key, ni.memo1_val = key, value
    except ValueError:
        pass
    return scores

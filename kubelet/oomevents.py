"""The ``OOMKilling`` Warning Event for a container the kernel's OOM killer ended (node-problem-detector's
reason and wording), reported once per container instance."""

from __future__ import annotations

import time

from kubelet.cri import ContainerState
from kubelet.planner import RuntimePod


RECENT_NS = 300 * 10**9          # after a kubelet restart, older OOM kills are not reported again


def oom_events(rp: RuntimePod, seen: set[str], now_ns: int | None = None) -> list[tuple[str, str, str]]:
    """(type, reason, message) for each recent OOM-killed container of ``rp`` not in ``seen`` (updated)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    out = []
    for c in rp.containers:
        if c.state == ContainerState.EXITED and c.reason == "OOMKilled" and c.id not in seen \
                and now_ns - c.finished_at < RECENT_NS:
            seen.add(c.id)
            out.append(("Warning", "OOMKilling", f"Memory cgroup out of memory: Killed process of container "
                                                 f"{c.metadata.name} (exit code {c.exit_code})"))
    return out

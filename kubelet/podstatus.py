"""The pod status computer: spec + runtime state + the last sync's errors + probe results → ``status``.

Follows Kubernetes' ``generateAPIPodStatus``/``getPhase``/``convertToAPIContainerStatuses``: the
phase, the four conditions (PodScheduled, Initialized, ContainersReady, Ready), container statuses
with waiting/running/terminated, lastState, restartCount, ready/started, podIP(s), hostIP,
startTime and qosClass. Transition times and startTime carry over from the old status. No I/O here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping

from kubelet.cri import ContainerState, ContainerStatus
from kubelet.planner import RuntimePod, restart_policy, should_restart
from kubelet.qos import qos_class

CONTAINER_ID_PREFIX = "kubelite://"
TERMINAL = ("Succeeded", "Failed")


def rfc3339(ns_or_seconds: float, *, ns: bool = True) -> str:
    seconds = ns_or_seconds / 1e9 if ns else ns_or_seconds
    return dt.datetime.fromtimestamp(int(seconds), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class StatusInputs:
    """What the status computer reads besides the pod and the runtime."""

    now: float                                              # wall-clock seconds
    host_ip: str = ""
    sync_errors: Mapping[str, tuple[str, str]] = field(default_factory=dict)   # name → (reason, message)
    ready: Mapping[str, bool] = field(default_factory=dict)                    # readiness probe results
    started: Mapping[str, bool] = field(default_factory=dict)                  # startup probe results
    termination_messages: Mapping[str, str] = field(default_factory=dict)      # container id → message


def _terminated(c: ContainerStatus, messages: Mapping[str, str]) -> dict[str, Any]:
    t: dict[str, Any] = {"exitCode": c.exit_code,
                         "reason": c.reason or ("Completed" if c.exit_code == 0 else "Error"),
                         "startedAt": rfc3339(c.started_at) if c.started_at else None,
                         "finishedAt": rfc3339(c.finished_at) if c.finished_at else None,
                         "containerID": CONTAINER_ID_PREFIX + c.id}
    msg = messages.get(c.id) or c.message
    if msg:
        t["message"] = msg
    if c.exit_code >= 128 and not c.reason:
        t["signal"] = c.exit_code - 128
    return t


def _container_status(pod: Mapping[str, Any], spec_c: Mapping[str, Any], rp: RuntimePod, inp: StatusInputs,
                      default_waiting: str, init: bool) -> dict[str, Any]:
    name = spec_c.get("name", "")
    instances = rp.instances(name)
    latest = instances[0] if instances else None
    out: dict[str, Any] = {"name": name, "image": spec_c.get("image", ""), "imageID": "",
                           "ready": False, "restartCount": 0, "started": False, "state": {},
                           "lastState": {}}
    err = inp.sync_errors.get(name)
    if latest is None:
        reason, message = err if err else (default_waiting, "")
        waiting: dict[str, Any] = {"reason": reason}
        if message:
            waiting["message"] = message
        out["state"] = {"waiting": waiting}
        return out
    out["containerID"] = CONTAINER_ID_PREFIX + latest.id
    out["imageID"] = latest.image_ref or latest.image_id
    if latest.image and spec_c.get("image") and latest.image != spec_c.get("image"):
        out["image"] = spec_c.get("image")
    out["restartCount"] = latest.metadata.attempt
    previous = instances[1] if len(instances) > 1 else None
    if previous is not None and previous.state == ContainerState.EXITED:
        out["lastState"] = {"terminated": _terminated(previous, inp.termination_messages)}
    if latest.state == ContainerState.RUNNING:
        out["state"] = {"running": {"startedAt": rfc3339(latest.started_at or latest.created_at)}}
        started = inp.started.get(name, "startupProbe" not in spec_c)
        out["started"] = started
        out["ready"] = bool(started and not init and inp.ready.get(name, "readinessProbe" not in spec_c))
    elif latest.state == ContainerState.EXITED:
        term = _terminated(latest, inp.termination_messages)
        # Kubernetes' convertToAPIContainerStatuses: a container to be restarted is *Waiting* only with a
        # reason from the last sync (CrashLoopBackOff, …); without one it keeps its Terminated state
        if err is not None and should_restart(pod, latest) and not _pod_done(pod, init, latest):
            reason, message = err
            waiting = {"reason": reason}
            if message:
                waiting["message"] = message
            out["state"] = {"waiting": waiting}
            out["lastState"] = {"terminated": term}
        else:
            out["state"] = {"terminated": term}
        if init and latest.exit_code == 0:
            out["ready"] = True                             # a completed init container reports ready
    else:
        reason, message = err if err else (default_waiting, "")
        waiting = {"reason": reason}
        if message:
            waiting["message"] = message
        out["state"] = {"waiting": waiting}
    return out


def _pod_done(pod: Mapping[str, Any], init: bool, latest: ContainerStatus) -> bool:
    return init and latest.exit_code == 0


def _phase(pod: Mapping[str, Any], init_statuses: list[dict[str, Any]], statuses: list[dict[str, Any]]) -> str:
    policy = restart_policy(pod)
    for s in init_statuses:
        term = s["state"].get("terminated")
        if term is not None and term["exitCode"] == 0:
            continue
        last = s["lastState"].get("terminated")
        failed = (term is not None and term["exitCode"] != 0)
        if failed and policy == "Never":
            return "Failed"
        if failed or last is not None or s["state"].get("running") or s["state"].get("waiting"):
            return "Pending"
    running = waiting = stopped = succeeded = unknown = 0
    for s in statuses:
        state = s["state"]
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"]["exitCode"] == 0:
                succeeded += 1
        elif "waiting" in state:
            if "terminated" in s["lastState"]:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if waiting > 0:
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(ctype: str, ok: bool, old: Mapping[str, Mapping[str, Any]], now: str, reason: str = "",
               message: str = "") -> dict[str, Any]:
    status = "True" if ok else "False"
    prev = old.get(ctype)
    cond: dict[str, Any] = {"type": ctype, "status": status, "lastProbeTime": None,
                            "lastTransitionTime": prev.get("lastTransitionTime") if prev and
                            prev.get("status") == status else now}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def compute_pod_status(pod: Mapping[str, Any], rp: RuntimePod, inp: StatusInputs) -> dict[str, Any]:
    """The pod's new ``status`` (a fresh dict)."""
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    inits = list(spec.get("initContainers") or [])
    apps = list(spec.get("containers") or [])
    init_done = all(rp.latest(c.get("name", "")) is not None and
                    rp.latest(c.get("name", "")).state == ContainerState.EXITED and  # type: ignore[union-attr]
                    rp.latest(c.get("name", "")).exit_code == 0 for c in inits) or \
        any(rp.latest(c.get("name", "")) is not None for c in apps)          # type: ignore[union-attr]
    default_waiting = "PodInitializing" if inits and not init_done else "ContainerCreating"
    init_statuses = [_container_status(pod, c, rp, inp, default_waiting, True) for c in inits]
    statuses = [_container_status(pod, c, rp, inp, default_waiting, False) for c in apps]
    phase = _phase(pod, init_statuses, statuses)
    if old.get("phase") in TERMINAL:
        phase = old["phase"]                                # terminal phases never go back

    now = rfc3339(inp.now, ns=False)
    old_conds = {c.get("type", ""): c for c in old.get("conditions") or []}
    conds: list[dict[str, Any]] = []
    completed = phase == "Succeeded" or (phase == "Failed" and all("terminated" in s["state"] for s in statuses))
    if inits:
        pending = [s["name"] for s in init_statuses if not s["ready"]]
        initialized = not pending or init_done
        conds.append(_condition("Initialized", initialized, old_conds, now,
                                "PodCompleted" if completed and initialized else
                                ("" if initialized else "ContainersNotInitialized"),
                                "" if initialized else f"containers with incomplete status: [{' '.join(pending)}]"))
    else:
        conds.append(_condition("Initialized", True, old_conds, now, "PodCompleted" if completed else ""))
    unready = [s["name"] for s in statuses if not s["ready"]]
    gates = [g.get("conditionType", "") for g in spec.get("readinessGates") or []]
    gates_false = [g for g in gates if (old_conds.get(g) or {}).get("status") != "True"]
    if completed:
        reason, message = "PodCompleted", ""
    elif unready:
        reason, message = "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]"
    else:
        reason, message = "", ""
    conds.append(_condition("ContainersReady", not unready and not completed, old_conds, now, reason, message))
    if not unready and gates_false and not completed:
        reason, message = "ReadinessGatesNotReady", \
            f"corresponding condition of pod readiness gate \"{gates_false[0]}\" does not exist."
    conds.append(_condition("Ready", not unready and not gates_false and not completed, old_conds, now,
                            reason, message))
    conds.append(_condition("PodScheduled", True, old_conds, now))
    known = {"Initialized", "ContainersReady", "Ready", "PodScheduled"}
    conds.extend(dict(c) for t, c in old_conds.items() if t not in known)   # readiness gates, others

    status: dict[str, Any] = {"phase": phase, "conditions": conds, "qosClass": qos_class(pod)}
    if inp.host_ip:
        status["hostIP"] = inp.host_ip
        status["hostIPs"] = [{"ip": inp.host_ip}]
    sb = rp.sandbox
    ip = sb.ip if sb is not None and sb.ip else (inp.host_ip if spec.get("hostNetwork") else "")
    if not ip and phase in TERMINAL:
        ip = old.get("podIP", "")
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    status["startTime"] = old.get("startTime") or now
    if inits:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = statuses
    return status

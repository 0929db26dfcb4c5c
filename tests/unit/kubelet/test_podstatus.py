"""The status computer: phase, conditions and container statuses from runtime state."""

from __future__ import annotations

import pytest

from kubelet.podstatus import StatusInputs, compute_pod_status
from tests.unit.kubelet.builders import ctr, pod, rp, sandbox

pytestmark = pytest.mark.unit
NOW = StatusInputs(now=1_700_000_000, host_ip="192.168.1.2")


def conds(status: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def test_running_pod_all_fields() -> None:
    s = compute_pod_status(pod("a", "b"), rp(ctr("a", id="ca"), ctr("b"), sandboxes=(sandbox(),)), NOW)
    assert s["phase"] == "Running" and s["podIP"] == "10.0.0.5" and s["podIPs"] == [{"ip": "10.0.0.5"}]
    assert s["hostIP"] == "192.168.1.2" and s["qosClass"] == "BestEffort" and s["startTime"]
    assert conds(s) == {"Initialized": "True", "ContainersReady": "True", "Ready": "True", "PodScheduled": "True"}
    a = s["containerStatuses"][0]
    assert a["containerID"] == "kubelite://ca" and a["ready"] and a["started"] and a["restartCount"] == 0
    assert a["imageID"] == "busybox@sha256:ab" and "running" in a["state"]
    assert a["state"]["running"]["startedAt"].endswith("Z")


def test_new_pod_is_pending_container_creating() -> None:
    s = compute_pod_status(pod("a"), rp(), NOW)
    assert s["phase"] == "Pending"
    assert s["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert conds(s)["Ready"] == "False"
    ready = next(c for c in s["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ContainersNotReady" and ready["message"] == "containers with unready status: [a]"


def test_init_pending_shows_pod_initializing() -> None:
    s = compute_pod_status(pod("a", init=("i",)), rp(ctr("i"), sandboxes=(sandbox(),)), NOW)
    assert s["phase"] == "Pending" and conds(s)["Initialized"] == "False"
    assert s["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    assert "running" in s["initContainerStatuses"][0]["state"]


@pytest.mark.parametrize("policy, code, reason, phase", [
    ("Never", 0, "", "Succeeded"), ("Never", 3, "", "Failed"), ("OnFailure", 0, "", "Succeeded"),
    ("Never", 137, "OOMKilled", "Failed"),
])
def test_exit_codes_and_reasons(policy: str, code: int, reason: str, phase: str) -> None:
    s = compute_pod_status(pod("a", policy=policy), rp(ctr("a", "exited", code, reason=reason),
                                                       sandboxes=(sandbox(ready=False),)), NOW)
    assert s["phase"] == phase
    term = s["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == code
    assert term["reason"] == (reason or ("Completed" if code == 0 else "Error"))
    assert term["finishedAt"].endswith("Z")


def test_crashloop_waiting_with_last_state() -> None:
    inp = StatusInputs(now=1, sync_errors={"a": ("CrashLoopBackOff", "back-off 10s restarting failed container=a")})
    s = compute_pod_status(pod("a"), rp(ctr("a", "exited", 1, attempt=1),
                                        ctr("a", "exited", 1, attempt=0, created=5), sandboxes=(sandbox(),)), inp)
    a = s["containerStatuses"][0]
    assert a["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert a["lastState"]["terminated"]["exitCode"] == 1 and a["restartCount"] == 1
    assert s["phase"] == "Running"


def test_exited_without_a_sync_reason_stays_terminated() -> None:
    """Between the exit and the sync that decides the back-off, Kubernetes shows the original Terminated
    state (no reason cached), never a made-up ContainerCreating."""
    s = compute_pod_status(pod("a"), rp(ctr("a", "exited", 1, attempt=2),
                                        ctr("a", "exited", 1, attempt=1, created=5), sandboxes=(sandbox(),)), NOW)
    a = s["containerStatuses"][0]
    assert a["state"]["terminated"]["exitCode"] == 1 and "waiting" not in a["state"]
    assert a["lastState"]["terminated"]["exitCode"] == 1 and a["restartCount"] == 2


def test_readiness_probe_gates_ready() -> None:
    p = pod("a")
    p["spec"]["containers"][0]["readinessProbe"] = {"exec": {"command": ["true"]}}
    state = rp(ctr("a"), sandboxes=(sandbox(),))
    s = compute_pod_status(p, state, NOW)
    assert conds(s)["Ready"] == "False" and not s["containerStatuses"][0]["ready"]
    s = compute_pod_status(p, state, StatusInputs(now=1, ready={"a": True}))
    assert conds(s)["Ready"] == "True"


def test_terminal_phase_sticks_and_transition_times_carry() -> None:
    p = pod("a", policy="Never")
    p["status"] = {"phase": "Succeeded", "conditions": [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]}
    s = compute_pod_status(p, rp(), NOW)
    assert s["phase"] == "Succeeded"
    sched = next(c for c in s["conditions"] if c["type"] == "PodScheduled")
    assert sched["lastTransitionTime"] == "2020-01-01T00:00:00Z"


def test_config_error_message_shown() -> None:
    inp = StatusInputs(now=1, sync_errors={"a": ("CreateContainerConfigError", 'configmap "x" not found')})
    s = compute_pod_status(pod("a"), rp(sandboxes=(sandbox(),)), inp)
    assert s["containerStatuses"][0]["state"]["waiting"] == {"reason": "CreateContainerConfigError",
                                                             "message": 'configmap "x" not found'}

"""Events where Kubernetes emits them, provoked on a live cluster: Scheduled, FailedScheduling, Pulling,
Pulled, Created, Started, Killing, BackOff (deduplicated: count > 1), Unhealthy, OOMKilling, NodeNotReady;
listed by ``kubelite events`` and ``kubectl events``. (SuccessfulCreate, SuccessfulDelete and
ScalingReplicaSet are checked by the course's controller demos.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.observability.conftest import Cluster, wait_for

pytestmark = pytest.mark.e2e


def _pod(name: str, container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    c = {"name": "c", "image": "busybox:1.35", **container}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [c], **spec}}


PODS = [
    _pod("ev-ok", {"command": ["sleep", "3600"]}),
    _pod("ev-pending", {"command": ["sleep", "3600"]}, nodeSelector={"no-such": "node"}),
    _pod("ev-pull", {"image": "registry.invalid/nothing:1", "imagePullPolicy": "Always"}),
    _pod("ev-crash", {"command": ["sh", "-c", "exit 3"]}),
    _pod("ev-probe", {"command": ["sleep", "3600"], "livenessProbe": {
        "exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1, "initialDelaySeconds": 0}}),
    # the shell itself writes every byte (a dd read() from /dev/zero can end short at the limit and exit 0)
    _pod("ev-oom", {"command": ["sh", "-c", "x=0123456789abcdef; i=4; while [ $i -lt 26 ]; do x=$x$x; i=$((i+1)); done"],
                    "resources": {"requests": {"memory": "8Mi"}, "limits": {"memory": "16Mi"}}},
         restartPolicy="Never"),
]
WANT = {"ev-ok": {"Scheduled", "Pulled", "Created", "Started"}, "ev-pending": {"FailedScheduling"},
        "ev-pull": {"Pulling"}, "ev-crash": {"BackOff"}, "ev-probe": {"Unhealthy", "Killing"},
        "ev-oom": {"OOMKilling"}}


def test_events_where_kubernetes_emits_them(cluster: Cluster) -> None:
    ghost = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"ghost-{cluster.node}"},
             "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                        "lastHeartbeatTime": "2020-01-01T00:00:00Z",
                                        "lastTransitionTime": "2020-01-01T00:00:00Z"}]}}
    with cluster.client() as c:
        for p in PODS:
            c.create("pods", p, "default")
        c.create("nodes", ghost)
        try:
            def reasons() -> dict[str, set[str]]:
                out: dict[str, set[str]] = {}
                for e in c.list("events", None)["items"]:
                    out.setdefault(e["involvedObject"].get("name", ""), set()).add(e["reason"])
                return out

            def complete() -> bool:
                got = reasons()
                return all(want <= got.get(name, set()) for name, want in WANT.items()) and \
                    "NodeNotReady" in got.get(ghost["metadata"]["name"], set())
            try:
                wait_for(complete, 120, "every expected event", interval=0.5)
            except AssertionError:
                got = reasons()
                missing = {n: w - got.get(n, set()) for n, w in WANT.items() if w - got.get(n, set())}
                raise AssertionError(f"missing events: {missing}; ghost node: {got.get(ghost['metadata']['name'])}")

            def backoff_counted() -> bool:
                evs = c.list("events", "default", field_selector="involvedObject.name=ev-crash")["items"]
                return any(e["reason"] == "BackOff" and int(e.get("count") or 1) > 1 for e in evs)
            wait_for(backoff_counted, 60, "BackOff deduplicated with count > 1", interval=0.5)

            ours = cluster.kubelite("events", "--for", "pod/ev-ok").stdout
            assert ours.splitlines()[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
            for reason in ("Scheduled", "Pulled", "Created", "Started"):
                assert reason in ours and "pod/ev-ok" in ours
            warnings = cluster.kubelite("events", "--types", "Warning").stdout
            assert "FailedScheduling" in warnings and "Started" not in warnings
            kubectl = cluster.kubectl("events", "--for", "pod/ev-probe").stdout
            assert "Unhealthy" in kubectl and "Killing" in kubectl
        finally:
            for p in PODS:
                cluster.delete_pod(p["metadata"]["name"], wait=False)
            c.delete("nodes", ghost["metadata"]["name"])
            for p in PODS:
                cluster.delete_pod(p["metadata"]["name"])

"""Every component's /metrics on a live cluster passes ``promtool check metrics`` and carries Kubernetes' and
cAdvisor's names: the apiserver directly, scheduler and controller-manager on their ports, the kubelet's
/metrics and /metrics/cadvisor through the apiserver's nodes/proxy (as Prometheus scrapes them)."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest

from tests.e2e.observability.conftest import Cluster, wait_for
from tests.support.metrics import promtool_check, value

pytestmark = pytest.mark.e2e


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        return r.read().decode()


def _pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "main", "image": "busybox:1.35", "command": ["sh", "-c", "sleep 3600"],
                "resources": {"requests": {"cpu": "100m", "memory": "16Mi"},
                              "limits": {"cpu": "300m", "memory": "48Mi"}}}]}}


def test_every_component_passes_promtool(cluster: Cluster) -> None:
    with cluster.client() as c:
        c.create("pods", _pod("metered"), "default")
    try:
        cluster.wait_running("metered", 90)
        node = f"{cluster.api_url}/api/v1/nodes/{cluster.node}/proxy"
        pages = {
            "apiserver": _get(f"{cluster.api_url}/metrics"),
            "scheduler": _get(f"http://127.0.0.1:{cluster.ports['sched']}/metrics"),
            "controller-manager": _get(f"http://127.0.0.1:{cluster.ports['cm']}/metrics"),
            "kubelet": wait_for(lambda: (t := _get(f"{node}/metrics")) and (value(t, "kubelet_running_pods") or 0) >= 1
                                and t, 60, "kubelet_running_pods ≥ 1 (set by housekeeping)"),
            "cadvisor": wait_for(lambda: (t := _get(f"{node}/metrics/cadvisor")) and 'pod="metered"' in t and t,
                                 30, "the pod in /metrics/cadvisor"),
            "objects": _get(f"{cluster.api_url}/metrics/objects"),
        }
        for name, text in pages.items():
            rc, out = promtool_check(text)
            assert rc == 0, f"{name}: {out}"
        api, sched, cm, kl, cad = (pages[k] for k in ("apiserver", "scheduler", "controller-manager", "kubelet",
                                                      "cadvisor"))
        assert (value(api, "apiserver_request_total", verb="POST", resource="pods", code="201") or 0) >= 1
        assert (value(api, "etcd_request_duration_seconds_count", operation="create", type="pods") or 0) >= 1
        assert (value(api, "apiserver_registered_watchers", kind="Pod") or 0) >= 1   # scheduler, kubelet...
        assert (value(sched, "scheduler_schedule_attempts_total", result="scheduled") or 0) >= 1
        assert value(sched, "scheduler_pending_pods", queue="active") is not None
        assert (value(sched, "scheduler_scheduling_attempt_duration_seconds_count") or 0) >= 1
        assert (value(cm, "workqueue_adds_total", name="replicaset") or 0) >= 0
        assert value(cm, "workqueue_depth", name="replicaset") is not None
        assert value(cm, "workqueue_unfinished_work_seconds", name="replicaset") is not None
        assert (value(kl, "kubelet_running_pods") or 0) >= 1
        assert (value(kl, "kubelet_pod_start_duration_seconds_count") or 0) >= 1
        assert (value(kl, "kubelet_pleg_relist_duration_seconds_count") or 0) >= 1
        assert (value(kl, "kubelet_pod_worker_duration_seconds_count") or 0) >= 1
        assert value(kl, "kubelet_running_containers", container_state="running") is not None
        lab = {"namespace": "default", "pod": "metered", "container": "main"}
        assert (value(cad, "container_memory_working_set_bytes", **lab) or 0) > 0
        assert (value(cad, "container_memory_usage_bytes", **lab) or 0) > 0
        assert value(cad, "container_memory_rss", **lab) is not None
        assert (value(cad, "container_cpu_usage_seconds_total", **lab) or 0) > 0
        assert value(cad, "container_spec_memory_limit_bytes", **lab) == 48 * 2 ** 20
        assert value(cad, "container_spec_cpu_quota", **lab) == 30000
        assert value(cad, "container_spec_cpu_shares", **lab) == 102
        assert value(cad, "container_oom_events_total", **lab) == 0
        assert value(cad, "container_cpu_cfs_throttled_periods_total", **lab) is not None
        assert any(s for s in cad.splitlines() if s.startswith("container_memory_working_set_bytes{")
                   and 'image="' in s and 'pod="metered"' in s)
    finally:
        cluster.delete_pod("metered")

"""Pure parts of the observability work: Prometheus configuration, object metrics, metrics.k8s.io figures,
Event TTL, OOM events, work-queue timings and the inspect tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, generate_latest

from apiserver import eventttl, metrics_api, object_metrics, prometheus_sd
from kubelet.cri import ContainerMetadata, ContainerState, ContainerStatus
from kubelet.oomevents import oom_events
from kubelet.planner import RuntimePod
from kubelite.cli import inspect as inspect_cli
from kubelite.cli import prometheus, up
from kubelite.metrics import WorkqueueTimer
from tests.support.metrics import PROMTOOL, promtool_check, value


def test_scrape_config_http_sd_is_valid_for_promtool(tmp_path: Path) -> None:
    doc = prometheus.scrape_config("http://127.0.0.1:6443", interval="2s", scheduler_port=10259,
                                   kubernetes_sd=False)
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    assert jobs["kubernetes-cadvisor"]["http_sd_configs"][0]["url"] == "http://127.0.0.1:6443/metrics/sd/nodes"
    relabel = jobs["kubernetes-cadvisor"]["relabel_configs"]
    assert {"source_labels": ["__meta_kubernetes_node_name"], "regex": "(.+)", "target_label": "__metrics_path__",
            "replacement": "/api/v1/nodes/${1}/proxy/metrics/cadvisor"} in relabel
    assert "kube-controller-manager" not in jobs and jobs["kube-scheduler"]
    k8s = prometheus.scrape_config("http://127.0.0.1:6443")["scrape_configs"][2]
    assert k8s["kubernetes_sd_configs"] == [{"role": "node", "api_server": "http://127.0.0.1:6443"}]
    path = tmp_path / "p.yml"
    path.write_text(yaml.safe_dump(doc))
    p = subprocess.run([PROMTOOL, "check", "config", str(path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_up_prometheus_component(tmp_path: Path) -> None:
    args = up._parser().parse_args(["--data-dir", str(tmp_path), "--prometheus", "9999", "--etcd-servers",
                                    "http://127.0.0.1:1"])
    comps, _ = up.build_components(args, tmp_path)
    prom = next(c for c in comps if c.name == "prometheus")
    assert f"--config.file={tmp_path / 'prometheus' / 'prometheus.yml'}" in prom.argv
    assert "--web.listen-address=127.0.0.1:9999" in prom.argv and prom.ready_url.endswith(":9999/-/ready")
    assert (tmp_path / "prometheus" / "prometheus.yml").exists()
    assert up._parser().parse_args(["--prometheus"]).prometheus == 9090
    assert up._parser().parse_args([]).prometheus is None


def _registry(fams: object) -> str:
    class C:
        def collect(self) -> object:
            return fams
    r = CollectorRegistry()
    r.register(C())  # type: ignore[arg-type]
    return generate_latest(r).decode()


def test_object_metrics() -> None:
    pod = {"metadata": {"name": "p", "namespace": "d", "uid": "u",
                        "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "controller": True}]},
           "spec": {"nodeName": "n", "containers": [{"name": "c", "resources": {"limits": {"cpu": "500m",
                                                                                           "memory": "1Gi"}}}]},
           "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [{"name": "c", "restartCount": 4, "state": {"running": {}}}]}}
    text = _registry(list(object_metrics.pod_families([pod])) +
                     list(object_metrics.replicaset_families([{"metadata": {"name": "rs", "namespace": "d"},
                                                               "spec": {"replicas": 3},
                                                               "status": {"readyReplicas": 2}}])))
    assert promtool_check(text)[0] == 0, promtool_check(text)[1]
    assert value(text, "kube_pod_status_phase", pod="p", phase="Running") == 1
    assert value(text, "kube_pod_status_phase", pod="p", phase="Pending") == 0
    assert value(text, "kube_pod_info", pod="p", created_by_kind="ReplicaSet", node="n") == 1
    assert value(text, "kube_pod_container_status_restarts_total", container="c") == 4
    assert value(text, "kube_pod_container_resource_limits", resource="cpu", unit="core") == 0.5
    assert value(text, "kube_pod_container_resource_limits", resource="memory", unit="byte") == 2 ** 30
    assert value(text, "kube_pod_status_ready", condition="true") == 1
    assert value(text, "kube_replicaset_status_ready_replicas", replicaset="rs") == 2
    assert value(text, "kube_replicaset_spec_replicas", replicaset="rs") == 3


def test_http_sd_node_target() -> None:
    node = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
            "status": {"addresses": [{"type": "Hostname", "address": "h"}, {"type": "InternalIP", "address": "10.0.0.5"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}
    g = prometheus_sd.node_target(node)
    assert g is not None and g["targets"] == ["10.0.0.5:10250"]
    assert g["labels"]["__meta_kubernetes_node_name"] == "n1"
    assert g["labels"]["__meta_kubernetes_node_label_kubernetes_io_hostname"] == "n1"
    assert g["labels"]["__meta_kubernetes_node_address_InternalIP"] == "10.0.0.5"
    assert prometheus_sd.node_target({"metadata": {"name": "x"}, "status": {}}) is None


def test_metrics_api_rate_between_samples() -> None:
    def sample(at: float, cpu: int) -> metrics_api.Sample:
        return metrics_api.Sample(at, "2026-01-01T00:00:00Z", {"pods": [{
            "podRef": {"namespace": "d", "name": "p"},
            "containers": [{"name": "c", "cpu": {"usageCoreNanoSeconds": cpu}, "memory": {"workingSetBytes": 5 << 20}}]}]})
    pod = {"metadata": {"name": "p", "namespace": "d"}}
    m = metrics_api.pod_metrics(pod, (sample(10.0, 1_000_000_000), sample(12.0, 1_500_000_000)))
    assert m is not None
    assert m["containers"] == [{"name": "c", "usage": {"cpu": "250000000n", "memory": "5120Ki"}}]
    assert m["window"] == "2s"
    assert metrics_api.pod_metrics({"metadata": {"name": "other", "namespace": "d"}},
                                   (sample(1, 0), sample(2, 0))) is None


def test_event_ttl_last_write() -> None:
    ev = {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "lastTimestamp": "2026-01-01T01:00:00Z"}
    assert eventttl.last_write(ev) - eventttl.last_write({"metadata": ev["metadata"]}) == 3600
    assert eventttl.last_write({"eventTime": "2026-01-01T00:00:00.123456Z"}) is not None
    assert eventttl.last_write({}) is None


def test_oom_events_once_and_recent() -> None:
    now = 10**18
    c = ContainerStatus(id="c1", pod_sandbox_id="s", metadata=ContainerMetadata("hog"), state=ContainerState.EXITED,
                        created_at=now - 10**9, finished_at=now - 10**9, exit_code=137, reason="OOMKilled")
    old = ContainerStatus(id="c0", pod_sandbox_id="s", metadata=ContainerMetadata("hog"), state=ContainerState.EXITED,
                          created_at=0, finished_at=now - 3600 * 10**9, exit_code=137, reason="OOMKilled")
    seen: set[str] = set()
    rp = RuntimePod("u", (), (c, old))
    assert oom_events(rp, seen, now) == [("Warning", "OOMKilling", "Memory cgroup out of memory: Killed process of "
                                                                   "container hog (exit code 137)")]
    assert oom_events(rp, seen, now) == []


def test_workqueue_timer() -> None:
    t = [0.0]
    timer = WorkqueueTimer("unit-q", clock=lambda: t[0])
    timer.on_add("a")
    t[0] = 2.0
    timer.on_get("a")
    t[0] = 5.0
    assert timer.unfinished() == (3.0, 3.0)
    timer.on_done("a")
    assert timer.unfinished() == (0.0, 0.0)


def test_inspect_tree_and_limits() -> None:
    lines = inspect_cli.explain({"cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000", "cpu.shares": "256",
                                 "memory.limit_in_bytes": str(64 << 20), "memory.max": "max"})
    assert "cpu.cfs_quota_us = 50000 / cpu.cfs_period_us = 100000 → 0.5 CPU" in lines
    assert "memory.limit_in_bytes = 67108864 (64Mi)" in lines
    assert "memory.max = max (unlimited)" in lines
    doc = {"namespace": "d", "name": "p", "uid": "u", "node": "n", "cgroupVersion": 1,
           "containers": [{"name": "a", "id": "x" * 32, "pid": 5}],
           "namespaces": {"net": {"host": 1, "members": {"sandbox": {"inode": 7}, "a": {"inode": 7}}}}}
    tree = inspect_cli.render_pod(doc)
    assert tree.splitlines()[0].startswith("pod d/p")
    assert "net     7 (shared by sandbox, a)" in tree

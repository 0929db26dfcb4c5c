"""A real Prometheus (Debian's binary; loopback, temp dir, free port) with the scrape configuration
``kubelite prometheus`` writes: the kubelets are found by Kubernetes node discovery through the apiserver
(``kubernetes_sd_configs`` role node where the build has it; Debian's does not, so the apiserver's HTTP SD
endpoint with the same ``__meta_kubernetes_node_*`` labels) and scraped through nodes/proxy. It is
queried for a pod's memory working set and a ReplicaSet's ready replicas."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import yaml

from kubelite.cli.prometheus import has_kubernetes_sd, prepare
from tests.e2e.observability.conftest import Cluster, wait_for
from tests.support.cluster import free_port

pytestmark = pytest.mark.e2e


def _rs() -> dict[str, Any]:
    labels = {"app": "prom-rs"}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "prom-rs"},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "c", "image": "busybox:1.35",
                                         "command": ["sh", "-c", "head -c 3000000 /dev/zero | tail -c 10 >/dev/null; "
                                                     "sleep 3600"],
                                         "resources": {"requests": {"cpu": "50m", "memory": "16Mi"},
                                                       "limits": {"memory": "64Mi"}}}]}}}}


def test_prometheus_scrapes_through_service_discovery(cluster: Cluster) -> None:
    base = Path(tempfile.mkdtemp(prefix="kobprom"))
    port = free_port()
    argv = prepare(base, cluster.api_url, port=port, interval="1s", scheduler_port=cluster.ports["sched"],
                   controller_manager_port=cluster.ports["cm"])
    jobs = {j["job_name"]: j for j in yaml.safe_load((base / "prometheus.yml").read_text())["scrape_configs"]}
    for job in ("kubernetes-nodes", "kubernetes-cadvisor"):      # discovered, never static
        assert "static_configs" not in jobs[job]
        if has_kubernetes_sd():
            assert jobs[job]["kubernetes_sd_configs"][0]["role"] == "node"
        else:                       # Debian's build lacks kubernetes_sd: the apiserver's HTTP SD, same labels
            assert jobs[job]["http_sd_configs"][0]["url"] == f"{cluster.api_url}/metrics/sd/nodes"
    log = open(base / "prometheus.log", "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
    api = f"http://127.0.0.1:{port}"

    def get(path: str, **params: str) -> Any:
        url = f"{api}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())

    def query(q: str) -> list[dict[str, Any]]:
        body = get("/api/v1/query", query=q)
        assert body["status"] == "success", body
        return body["data"]["result"]

    with cluster.client() as c:
        c.create("replicasets", _rs(), "default")
        try:
            def ready() -> bool:
                return (c.get("replicasets", "prom-rs", "default").get("status") or {}).get("readyReplicas") == 2
            wait_for(ready, 90, "ReplicaSet prom-rs 2 ready replicas")
            pods = c.list("pods", "default", label_selector="app=prom-rs")["items"]
            pod = pods[0]["metadata"]["name"]

            def targets_up() -> list[dict[str, Any]]:
                assert proc.poll() is None, (base / "prometheus.log").read_text()[-2000:]
                active = get("/api/v1/targets")["data"]["activeTargets"]
                sd = [t for t in active if t["labels"]["job"] in ("kubernetes-cadvisor", "kubernetes-nodes")
                      and t["discoveredLabels"].get("__meta_kubernetes_node_name") == cluster.node]
                return sd if len(sd) == 2 and all(t["health"] == "up" for t in sd) else []
            sd = wait_for(targets_up, 60, "both node targets discovered and up", interval=0.5)
            for t in sd:
                assert t["scrapeUrl"].startswith(f"{cluster.api_url}/api/v1/nodes/{cluster.node}/proxy/metrics")

            ws = wait_for(lambda: query(f'container_memory_working_set_bytes{{namespace="default",pod="{pod}",'
                                        f'container="c"}}'), 60, "the pod's working set in Prometheus", interval=0.5)
            assert float(ws[0]["value"][1]) > 0
            assert ws[0]["metric"]["job"] == "kubernetes-cadvisor" and ws[0]["metric"]["image"]
            rr = wait_for(lambda: query('kube_replicaset_status_ready_replicas{replicaset="prom-rs"}'), 60,
                          "the ReplicaSet's ready replicas in Prometheus", interval=0.5)
            assert rr[0]["value"][1] == "2" and rr[0]["metric"]["namespace"] == "default"
            running = wait_for(lambda: query('sum(kube_pod_status_phase{phase="Running",pod=~"prom-rs-.*"})'), 30,
                               "pod phases in Prometheus", interval=0.5)
            assert running[0]["value"][1] == "2"
            jobs_up: dict[str, str] = {}

            def every_job_up() -> bool:       # each job's latest scrape: one slow scrape on a busy machine is a 0
                jobs_up.clear()
                jobs_up.update({r["metric"]["job"]: r["value"][1] for r in query("up")})
                return all(jobs_up.get(j) == "1" for j in ("kubernetes-apiservers", "kube-state-metrics",
                                                           "kubernetes-nodes", "kubernetes-cadvisor",
                                                           "kube-scheduler", "kube-controller-manager"))
            try:
                wait_for(every_job_up, 30, "every job's targets up", interval=0.5)
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {jobs_up}\n{(base / 'prometheus.log').read_text()[-2000:]}") from None
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            c.delete("replicasets", "prom-rs", "default", propagation_policy="Foreground")
            shutil.rmtree(base, ignore_errors=True)

"""Container and node statistics: the Summary API (``/stats/summary``) and cAdvisor's ``container_*`` metrics.

Figures come from the runtime's ``list_container_stats`` (cgroup counters) and the host's /proc; CPU
rates (``usageNanoCores``) are computed between consecutive samples kept here.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from kubelet.cri import ContainerStats
from kubelet.podstatus import rfc3339
from kubelet.qos import container_resources

if TYPE_CHECKING:
    from kubelet.kubelet import Kubelet

_last: dict[str, tuple[int, int]] = {}     # id → (timestamp ns, cpu ns)
_BOOT = time.time()


def _rate(key: str, ts: int, cpu: int) -> int:
    prev = _last.get(key)
    _last[key] = (ts, cpu)
    if prev is None or ts <= prev[0]:
        return 0
    return int((cpu - prev[1]) * 1e9 / (ts - prev[0]))


def _node_cpu() -> int:
    with open("/proc/stat") as fh:
        fields = fh.readline().split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    busy = sum(int(f) for i, f in enumerate(fields[:8]) if i not in (3, 4))
    return int(busy * 1e9 / ticks)


def _meminfo() -> dict[str, int]:
    out = {}
    with open("/proc/meminfo") as fh:
        for line in fh:
            k, _, rest = line.partition(":")
            out[k] = int(rest.split()[0]) * 1024
    return out


async def _container_index(kubelet: "Kubelet") -> tuple[dict[str, Any], dict[str, ContainerStats]]:
    rps = await kubelet.rm.runtime_pods()
    stats = {s.container_id: s for s in await kubelet.runtime.list_container_stats()}
    return rps, stats


async def summary(kubelet: "Kubelet") -> dict[str, Any]:
    now_ns = time.time_ns()
    now = rfc3339(now_ns)
    cpu = await asyncio.to_thread(_node_cpu)
    mem = await asyncio.to_thread(_meminfo)
    du = await asyncio.to_thread(shutil.disk_usage, kubelet.config.root_dir)
    rps, stats = await _container_index(kubelet)
    pods = []
    for uid, rp in rps.items():
        pod = kubelet.pods.get(uid) or kubelet.removed.get(uid)
        if pod is None or rp.sandbox is None:
            continue
        containers = []
        pod_cpu = pod_mem = pod_ws = 0
        pod_rate = 0
        for c in rp.running():
            s = stats.get(c.id)
            if s is None:
                continue
            rate = _rate(c.id, s.timestamp, s.cpu_usage_ns)
            pod_cpu += s.cpu_usage_ns
            pod_rate += rate
            pod_mem += s.memory_usage_bytes
            pod_ws += s.memory_working_set_bytes
            containers.append({"name": c.metadata.name, "startTime": rfc3339(c.started_at or c.created_at),
                               "cpu": {"time": now, "usageNanoCores": rate, "usageCoreNanoSeconds": s.cpu_usage_ns},
                               "memory": {"time": now, "usageBytes": s.memory_usage_bytes,
                                          "workingSetBytes": s.memory_working_set_bytes,
                                          "rssBytes": s.memory_rss_bytes},
                               "rootfs": {"time": now, "usedBytes": s.writable_layer_bytes}})
        meta = pod.get("metadata") or {}
        pods.append({"podRef": {"name": meta.get("name"), "namespace": meta.get("namespace"), "uid": uid},
                     "startTime": rfc3339(rp.sandbox.created_at), "containers": containers,
                     "cpu": {"time": now, "usageNanoCores": pod_rate, "usageCoreNanoSeconds": pod_cpu},
                     "memory": {"time": now, "usageBytes": pod_mem, "workingSetBytes": pod_ws}})
    total, avail = mem.get("MemTotal", 0), mem.get("MemAvailable", 0)
    return {"node": {"nodeName": kubelet.config.node_name, "startTime": rfc3339(_BOOT, ns=False),
                     "cpu": {"time": now, "usageNanoCores": _rate("node", now_ns, cpu), "usageCoreNanoSeconds": cpu},
                     "memory": {"time": now, "availableBytes": avail, "usageBytes": total - mem.get("MemFree", 0),
                                "workingSetBytes": total - avail, "rssBytes": 0},
                     "fs": {"time": now, "availableBytes": du.free, "capacityBytes": du.total, "usedBytes": du.used},
                     "runtime": {"imageFs": {"time": now, "availableBytes": du.free, "capacityBytes": du.total,
                                             "usedBytes": du.used}}},
            "pods": pods}


async def cadvisor_families(kubelet: "Kubelet") -> list[GaugeMetricFamily | CounterMetricFamily]:
    labels = ["container", "pod", "namespace", "id", "image", "name"]
    cpu = CounterMetricFamily("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.",
                              labels=labels)
    ws = GaugeMetricFamily("container_memory_working_set_bytes", "Current working set in bytes.", labels=labels)
    usage = GaugeMetricFamily("container_memory_usage_bytes", "Current memory usage in bytes.", labels=labels)
    rss = GaugeMetricFamily("container_memory_rss", "Size of RSS in bytes.", labels=labels)
    oom = CounterMetricFamily("container_oom_events_total", "Count of out of memory events observed for the "
                              "container", labels=labels)
    periods = CounterMetricFamily("container_cpu_cfs_periods_total", "Number of elapsed enforcement period "
                                  "intervals.", labels=labels)
    throttled = CounterMetricFamily("container_cpu_cfs_throttled_periods_total", "Number of throttled period "
                                    "intervals.", labels=labels)
    throttled_s = CounterMetricFamily("container_cpu_cfs_throttled_seconds_total", "Total time duration the "
                                      "container has been throttled.", labels=labels)
    fs = GaugeMetricFamily("container_fs_usage_bytes", "Number of bytes that are consumed by the container on "
                           "this filesystem.", labels=labels)
    start = GaugeMetricFamily("container_start_time_seconds", "Start time of the container since unix epoch in "
                              "seconds.", labels=labels)
    spec_mem = GaugeMetricFamily("container_spec_memory_limit_bytes", "Memory limit for the container.",
                                 labels=labels)
    spec_quota = GaugeMetricFamily("container_spec_cpu_quota", "CPU quota of the container.", labels=labels)
    spec_period = GaugeMetricFamily("container_spec_cpu_period", "CPU period of the container.", labels=labels)
    spec_shares = GaugeMetricFamily("container_spec_cpu_shares", "CPU share of the container.", labels=labels)
    rps, stats = await _container_index(kubelet)
    for uid, rp in rps.items():
        pod = kubelet.pods.get(uid) or kubelet.removed.get(uid) or {}
        meta = pod.get("metadata") or {}
        specs = {c.get("name"): c for c in ((pod.get("spec") or {}).get("containers") or [])
                 + ((pod.get("spec") or {}).get("initContainers") or [])}
        for c in rp.running():
            s = stats.get(c.id)
            if s is None:
                continue
            lv = [c.metadata.name, meta.get("name", ""), meta.get("namespace", ""),
                  f"/kubepods/pod{uid}/{c.id}", c.image, c.id]
            cpu.add_metric(lv, s.cpu_usage_ns / 1e9)
            ws.add_metric(lv, s.memory_working_set_bytes)
            usage.add_metric(lv, s.memory_usage_bytes)
            rss.add_metric(lv, s.memory_rss_bytes)
            oom.add_metric(lv, s.oom_events)
            periods.add_metric(lv, s.cpu_periods)
            throttled.add_metric(lv, s.cpu_throttled_periods)
            throttled_s.add_metric(lv, s.cpu_throttled_ns / 1e9)
            fs.add_metric(lv, s.writable_layer_bytes)
            start.add_metric(lv, (c.started_at or c.created_at) / 1e9)
            res = container_resources(specs.get(c.metadata.name) or {}, pod)
            spec_mem.add_metric(lv, res.memory_limit_in_bytes)
            spec_quota.add_metric(lv, res.cpu_quota)
            spec_period.add_metric(lv, res.cpu_period or 100_000)
            spec_shares.add_metric(lv, res.cpu_shares)
    return [cpu, ws, usage, rss, oom, periods, throttled, throttled_s, fs, start, spec_mem, spec_quota,
            spec_period, spec_shares]

"""Kubernetes' conversions and the kubepods path layout."""

import pytest

from kubelet.runtime.cgroups import (
    DEFAULT_DEVICES, DeviceRule, Resources, container_cgroup_path, milli_cpu_to_quota, milli_cpu_to_shares,
    pod_cgroup_parent, qos_cgroup_parent, shares_to_weight,
)
from kubelet.runtime.cgroups.model import clean_path

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("milli,shares", [(0, 2), (1, 2), (2, 2), (250, 256), (500, 512), (1000, 1024),
                                          (2000, 2048), (10**9, 262144)])
def test_cpu_request_to_shares_like_kubernetes(milli: int, shares: int) -> None:
    assert milli_cpu_to_shares(milli) == shares


@pytest.mark.parametrize("milli,quota", [(0, 0), (1, 1000), (5, 1000), (10, 1000), (11, 1100), (500, 50000),
                                         (1500, 150000)])
def test_cpu_limit_to_quota_with_100ms_period_and_1ms_floor(milli: int, quota: int) -> None:
    assert milli_cpu_to_quota(milli) == quota


@pytest.mark.parametrize("shares,weight", [(0, 0), (1, 1), (2, 1), (3, 2), (512, 59), (1024, 100), (2048, 174),
                                           (102, 17), (262143, 10000), (262144, 10000), (10**7, 10000)])
def test_shares_to_weight_2025_conversion(shares: int, weight: int) -> None:
    assert shares_to_weight(shares) == weight


def test_weight_is_monotonic_and_in_range() -> None:
    ws = [shares_to_weight(s) for s in range(2, 262145, 97)]
    assert ws == sorted(ws) and ws[0] >= 1 and ws[-1] <= 10000


def test_resources_from_kubernetes_values() -> None:
    r = Resources.from_cpu_memory(cpu_request_milli=250, cpu_limit_milli=500, memory_limit_bytes=64 << 20,
                                  pids_limit=100)
    assert (r.cpu_shares, r.cpu_quota_us, r.cpu_period_us, r.memory_limit_bytes, r.pids_limit) == \
        (256, 50000, 100000, 64 << 20, 100)
    best_effort = Resources.from_cpu_memory()
    assert (best_effort.cpu_shares, best_effort.cpu_quota_us, best_effort.memory_limit_bytes) == (2, 0, 0)


def test_kubepods_layout() -> None:
    assert qos_cgroup_parent("Guaranteed") == "kubepods"
    assert pod_cgroup_parent("Burstable", "u-1") == "kubepods/burstable/podu-1"
    assert pod_cgroup_parent("BestEffort", "u-1") == "kubepods/besteffort/podu-1"
    assert container_cgroup_path("kubepods/podu-1/", "abc") == "kubepods/podu-1/abc"
    for bad in ("", "..", "a/b"):
        with pytest.raises(ValueError):
            container_cgroup_path("kubepods", bad)
    with pytest.raises(ValueError):
        qos_cgroup_parent("Gold")
    with pytest.raises(ValueError):
        clean_path("kubepods/../../etc")
    assert clean_path("/a//b/") == "a/b"


def test_default_devices_are_dockers_set() -> None:
    lines = [r.v1_line() for r in DEFAULT_DEVICES]
    assert lines[0] == "a" and not DEFAULT_DEVICES[0].allow
    assert lines[1:] == ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                         "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm"]
    # no block device may be read or written
    assert not any(r.allow and r.type in ("a", "b") and set(r.access) & set("rw") for r in DEFAULT_DEVICES)
    assert DeviceRule(True, "b", 8, 0, "r").v1_line() == "b 8:0 r"


def test_resources_from_oci_linux_resources() -> None:
    r = Resources.from_oci({
        "memory": {"limit": 67108864},
        "cpu": {"shares": 256, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "pids": {"limit": 100},
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 136, "access": "rwm"}],
    })
    assert (r.memory_limit_bytes, r.cpu_shares, r.cpu_quota_us, r.cpu_period_us, r.pids_limit,
            r.cpuset_cpus, r.cpuset_mems) == (64 << 20, 256, 50000, 100000, 100, "0-1", "0")
    assert r.devices is not None and [d.v1_line() for d in r.devices] == ["a", "c 1:3 rwm", "c 136:* rwm"]
    assert not r.devices[0].allow
    assert Resources.from_oci(None) == Resources() and Resources.from_oci({}).devices is None


def test_resources_from_cri() -> None:
    from kubelet.cri import LinuxResources

    r = Resources.from_cri(LinuxResources(cpu_quota=20000, cpu_shares=102, memory_limit_in_bytes=1 << 30),
                           devices=DEFAULT_DEVICES)
    assert (r.cpu_quota_us, r.cpu_period_us, r.cpu_shares, r.memory_limit_bytes) == (20000, 100000, 102, 1 << 30)
    assert r.devices == DEFAULT_DEVICES


def test_destroying_the_hierarchy_root_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kubelet.runtime.cgroups import CgroupError, V2Manager

    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    with pytest.raises(CgroupError, match="root"):
        V2Manager("", tmp_path).destroy("")
    assert (tmp_path / "cgroup.controllers").exists()

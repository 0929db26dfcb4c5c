"""IPAM on disk: unique, sticky per owner, round-robin, survives a restart, safe across processes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubelet.runtime.network import Ipam, IpamError, gateway_of

pytestmark = pytest.mark.unit
REPO = str(Path(__file__).resolve().parents[3])


def test_allocates_after_the_gateway_and_never_twice(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, "10.9.0.0/29")            # .0 net, .1 gw, .2-.6 pods, .7 broadcast
    assert ipam.gateway == "10.9.0.1" == gateway_of("10.9.0.0/29")
    ips = [ipam.allocate(f"sb{i}") for i in range(5)]
    assert ips == [f"10.9.0.{i}" for i in range(2, 7)]
    with pytest.raises(IpamError, match="no free address"):
        ipam.allocate("sb-extra")
    assert ipam.allocate("sb3") == "10.9.0.5"     # the same owner keeps its address


def test_release_is_idempotent_and_reuse_is_round_robin(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, "10.9.0.0/28")
    a, b = ipam.allocate("a"), ipam.allocate("b")
    assert ipam.release("a") == a and ipam.release("a") is None
    c = ipam.allocate("c")
    assert c not in (a, b)                          # a freed address is not handed out next
    assert ipam.lookup("b") == b and ipam.lookup("a") is None


def test_restart_keeps_allocations(tmp_path: Path) -> None:
    first = Ipam(tmp_path, "10.9.1.0/24")
    ip = first.allocate("pod-1")
    again = Ipam(tmp_path, "10.9.1.0/24")           # a restarted kubelet
    assert again.lookup("pod-1") == ip and again.allocations() == {ip: "pod-1"}
    assert again.allocate("pod-2") != ip


def test_bad_cidrs_are_clear_errors(tmp_path: Path) -> None:
    for bad in ("10.0.0.1/24", "nonsense", "10.0.0.0/31", "fd00::/64"):
        with pytest.raises(IpamError):
            Ipam(tmp_path, bad)


def test_concurrent_processes_never_collide(tmp_path: Path) -> None:
    code = ("import sys; from kubelet.runtime.network import Ipam\n"
            "ipam = Ipam(sys.argv[1], '10.9.2.0/24')\n"
            "print(' '.join(ipam.allocate(f'{sys.argv[2]}-{i}') for i in range(25)))\n")
    env = {**os.environ, "PYTHONPATH": REPO}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), f"p{n}"], stdout=subprocess.PIPE,
                              text=True, env=env) for n in range(4)]
    got = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        got += out.split()
    assert len(got) == 100 and len(set(got)) == 100
    assert len(Ipam(tmp_path, "10.9.2.0/24").allocations()) == 100


def test_remove_all_deletes_the_store(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, "10.9.3.0/24")
    ipam.allocate("x")
    ipam.remove_all()
    assert list(tmp_path.iterdir()) == []


def test_node_subnets() -> None:
    from kubelet.runtime.network import DEFAULT_CLUSTER_CIDR, node_subnet

    assert node_subnet(DEFAULT_CLUSTER_CIDR, 0) == "10.244.0.0/24"
    assert node_subnet(DEFAULT_CLUSTER_CIDR, 7) == "10.244.7.0/24"
    assert node_subnet("10.1.0.0/20", 3, 26) == "10.1.0.192/26"
    with pytest.raises(IpamError):
        node_subnet(DEFAULT_CLUSTER_CIDR, 256)

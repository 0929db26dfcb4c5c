"""Pods on the shared bridge, for real: reachability, routes, IPAM, teardown."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kubelet.runtime.network import Ipam, NetlinkError, host_veth_name
from kubelet.runtime.network.netlink import Netlink

from .conftest import Lab, ping, run_in

pytestmark = pytest.mark.e2e
REPO = str(Path(__file__).resolve().parents[3])


def routes_in(ns: str) -> list[dict]:
    return json.loads(run_in(ns, "ip", "-j", "route", "show", "table", "main").stdout or "[]")


def test_two_pods_of_a_node_and_the_host_reach_each_other(lab: Lab) -> None:
    node = lab.node(0)
    a_ns, b_ns = lab.new_netns(), lab.new_netns()
    a = node.setup_pod(lab.sandbox("a"), f"/run/netns/{a_ns}")
    b = node.setup_pod(lab.sandbox("b"), f"/run/netns/{b_ns}")
    assert a.ip != b.ip and a.gateway == f"10.{lab.octet}.0.1" and a.prefixlen == 24
    assert ping(b.ip, a_ns) and ping(a.ip, b_ns)
    assert ping(a.ip)                                  # host → pod
    assert ping(a.gateway, a_ns)                       # pod → host's bridge address
    # lo is up: a pod's localhost works
    r = run_in(a_ns, "ip", "-j", "link", "show", "lo")
    assert "UP" in json.loads(r.stdout)[0]["flags"]


def test_pod_routes_cluster_cidr_only_and_host_routes(lab: Lab) -> None:
    node = lab.node(0)
    ns = lab.new_netns()
    pn = node.setup_pod(lab.sandbox("r"), f"/run/netns/{ns}")
    routes = routes_in(ns)
    dsts = sorted(r["dst"] for r in routes)
    assert "default" not in dsts
    assert dsts == sorted([lab.cluster_cidr, f"10.{lab.octet}.0.0/24"])
    addr = json.loads(run_in(ns, "ip", "-j", "addr", "show", "eth0").stdout)[0]
    assert [(i["local"], i["prefixlen"]) for i in addr["addr_info"] if i["family"] == "inet"] == [(pn.ip, 24)]
    host = json.loads(subprocess.run(["ip", "-j", "route", "show", "table", "main"], capture_output=True,
                                     text=True).stdout)
    mine = {r["dst"]: r for r in host if r["dst"].startswith(f"10.{lab.octet}.")}
    assert mine[lab.cluster_cidr]["type"] == "unreachable"
    assert mine[f"10.{lab.octet}.0.0/24"]["dev"] == lab.bridge
    # nothing for the cluster leaves through the uplink: an unused part of the CIDR is unreachable
    r = subprocess.run(["ip", "-j", "route", "get", f"10.{lab.octet}.77.5"], capture_output=True, text=True)
    assert r.returncode != 0 and "no route to host" in r.stderr.lower()      # EHOSTUNREACH
    with Netlink() as nl:
        link = nl.link(pn.host_veth)
        assert link is not None and link.master == nl.link(lab.bridge).index  # type: ignore[union-attr]


def test_two_nodes_on_one_bridge_reach_each_other(lab: Lab) -> None:
    n0, n1 = lab.node(0), lab.node(1)
    ns0, ns1 = lab.new_netns(), lab.new_netns()
    p0 = n0.setup_pod(lab.sandbox("n0"), f"/run/netns/{ns0}")
    p1 = n1.setup_pod(lab.sandbox("n1"), f"/run/netns/{ns1}")
    assert p0.ip.startswith(f"10.{lab.octet}.0.") and p1.ip.startswith(f"10.{lab.octet}.1.")
    assert ping(p1.ip, ns0) and ping(p0.ip, ns1) and ping(p1.ip)
    # TCP too: a listener in one pod, a client in the other
    srv = subprocess.Popen(["ip", "netns", "exec", ns1, sys.executable, "-c",
                            "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1);"
                            f"s.bind(('{p1.ip}', 8080)); s.listen(); print('up', flush=True);"
                            "c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()"],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout is not None and srv.stdout.readline() == "up\n"
        r = run_in(ns0, sys.executable, "-c",
                   f"import socket; s = socket.create_connection(('{p1.ip}', 8080), timeout=5); s.sendall(b'hi');"
                   "print(s.recv(100).decode())")
        assert r.stdout.strip() == "HI", r.stderr
    finally:
        srv.kill()
        srv.communicate()


def test_teardown_leaves_nothing_and_is_idempotent(lab: Lab) -> None:
    node = lab.node(0)
    ns = lab.new_netns()
    sid = lab.sandbox("gone")
    pn = node.setup_pod(sid, f"/run/netns/{ns}")
    assert node.pod_ip(sid) == pn.ip and pn.host_veth in node.pod_veths()
    node.teardown_pod(sid)
    node.teardown_pod(sid)
    with Netlink() as nl:
        assert nl.link(pn.host_veth) is None
    ip_file = node.ipam.dir / pn.ip               # released: gone, or emptied (its inode kept for the next pod)
    assert node.pod_ip(sid) is None and pn.ip not in node.ipam.allocations()
    assert not ip_file.exists() or ip_file.read_text() == ""
    assert "eth0" not in run_in(ns, "ip", "link").stdout
    assert not ping(pn.ip)


def test_failed_setup_leaves_nothing(lab: Lab) -> None:
    node = lab.node(0)
    sid = lab.sandbox("bad")
    with pytest.raises((NetlinkError, OSError)):
        node.setup_pod(sid, f"/run/netns/kubelite-t{lab.tag}-missing")
    with Netlink() as nl:
        assert nl.link(host_veth_name(sid)) is None
    assert node.ipam.allocations() == {}


def test_setup_again_keeps_the_address(lab: Lab) -> None:
    node = lab.node(0)
    ns = lab.new_netns()
    sid = lab.sandbox("again")
    first = node.setup_pod(sid, f"/run/netns/{ns}")
    second = node.setup_pod(sid, f"/run/netns/{ns}")     # e.g. a retried sandbox start
    assert first.ip == second.ip and ping(first.ip)


def test_ipam_across_processes_and_restart(lab: Lab) -> None:
    cidr = f"10.{lab.octet}.9.0/24"
    code = ("import sys; from kubelet.runtime.network import Ipam\n"
            f"ipam = Ipam(sys.argv[1], '{cidr}')\n"
            "print(' '.join(ipam.allocate(f'{sys.argv[2]}-{i}') for i in range(30)))\n")
    env = {**os.environ, "PYTHONPATH": REPO}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(lab.ipam_dir), f"kubelet{n}"], stdout=subprocess.PIPE,
                              text=True, env=env) for n in range(3)]
    ips = [ip for p in procs for ip in p.communicate(timeout=60)[0].split()]
    assert len(ips) == 90 == len(set(ips))
    restarted = Ipam(lab.ipam_dir, cidr)
    assert len(restarted.allocations()) == 90 and restarted.lookup("kubelet1-7") in ips
    assert restarted.allocate("kubelet1-7") == restarted.lookup("kubelet1-7")
    new = restarted.allocate("fresh")
    assert new not in ips


def test_bridge_and_pods_survive_a_node_restart(lab: Lab) -> None:
    node = lab.node(0)
    ns = lab.new_netns()
    pn = node.setup_pod(lab.sandbox("stay"), f"/run/netns/{ns}")
    with Netlink() as nl:
        before = nl.link(lab.bridge)
    again = lab.node(0)                               # a restarted kubelet calls ensure() again
    with Netlink() as nl:
        after = nl.link(lab.bridge)
    assert before is not None and after is not None and before.index == after.index
    assert again.pod_ip(lab.sandbox("stay")) == pn.ip and ping(pn.ip)
    # setup speed (≤ ~10 ms per pod) is measured by bench/pod_network.py, not asserted here

del socket, threading


def test_gc_tears_down_only_this_nodes_unknown_pods(lab: Lab) -> None:
    n0, n1 = lab.node(0), lab.node(1)
    ns = [lab.new_netns() for _ in range(3)]
    keep = n0.setup_pod(lab.sandbox("keep"), f"/run/netns/{ns[0]}")
    lost = n0.setup_pod(lab.sandbox("lost"), f"/run/netns/{ns[1]}")
    other = n1.setup_pod(lab.sandbox("other"), f"/run/netns/{ns[2]}")
    assert n0.gc({keep.sandbox_id}) == [lost.sandbox_id]
    with Netlink() as nl:
        assert nl.link(lost.host_veth) is None
        assert nl.link(keep.host_veth) is not None and nl.link(other.host_veth) is not None
    assert n0.pod_ip(lost.sandbox_id) is None and n1.pod_ip(other.sandbox_id) == other.ip


def test_remove_bridge_takes_the_pod_veths_along(lab: Lab) -> None:
    node = lab.node(0)
    ns = lab.new_netns()
    pn = node.setup_pod(lab.sandbox("x"), f"/run/netns/{ns}")
    from kubelet.runtime.network import remove_bridge

    assert remove_bridge(lab.bridge, (lab.cluster_cidr,))
    with Netlink() as nl:
        assert nl.link(pn.host_veth) is None and nl.link(lab.bridge) is None
    assert "eth0" not in run_in(ns, "ip", "link").stdout
    assert remove_bridge(lab.bridge, (lab.cluster_cidr,)) is False     # idempotent


def test_parallel_setups_from_threads(lab: Lab) -> None:
    """The runtime calls setup_pod from worker threads: concurrent pods get distinct addresses."""
    from concurrent.futures import ThreadPoolExecutor

    node = lab.node(0)
    namespaces = [lab.new_netns() for _ in range(6)]
    with ThreadPoolExecutor(6) as pool:
        pods = list(pool.map(lambda i: node.setup_pod(lab.sandbox(f"par{i}"), f"/run/netns/{namespaces[i]}"),
                             range(6)))
    assert len({p.ip for p in pods}) == 6
    assert ping(pods[5].ip, namespaces[0]) and ping(pods[0].ip)


def test_via_gateway_mode_routes_through_the_bridge_address(lab: Lab) -> None:
    from kubelet.runtime.network import NodeNetwork

    node = NodeNetwork(f"10.{lab.octet}.5.0/24", lab.cluster_cidr, lab.ipam_dir, bridge=lab.bridge, via_gateway=True)
    node.ensure()
    a_ns, b_ns = lab.new_netns(), lab.new_netns()
    a = node.setup_pod(lab.sandbox("gwa"), f"/run/netns/{a_ns}")
    b = node.setup_pod(lab.sandbox("gwb"), f"/run/netns/{b_ns}")
    cluster = [r for r in routes_in(a_ns) if r["dst"] == lab.cluster_cidr]
    assert cluster and cluster[0]["gateway"] == f"10.{lab.octet}.5.1"
    assert "default" not in [r["dst"] for r in routes_in(a_ns)]
    assert ping(b.ip, a_ns) and ping(a.ip)

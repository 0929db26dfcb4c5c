"""Pod network setup + teardown: kubelite's netlink path beside the same steps done with iproute2's
``ip`` (what a shell-out implementation costs) and, when installed, pyroute2.

Each pod: a veth on a test bridge with its peer created as ``eth0`` in a fresh netns, ``lo`` up,
an address, the cluster route; teardown deletes the veth. Netns creation is outside the timing.
Run as root: ``/work/venv/bin/python bench/pod_network.py [pods]``. Uses its own bridge and CIDR.
"""

from __future__ import annotations

import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kubelet.runtime.network import NodeNetwork, remove_bridge  # noqa: E402


def ip_setup(bridge: str, host: str, ns: str, ip: str, cluster: str) -> None:
    subprocess.run(["ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns], check=True)
    subprocess.run(["ip", "link", "set", host, "master", bridge, "up"], check=True)
    subprocess.run(["ip", "-n", ns, "-batch", "-"], check=True, text=True,
                   input=f"link set lo up\naddr add {ip}/24 dev eth0\nlink set eth0 up\n"
                         f"route add {cluster} dev eth0 src {ip}\n")


def ip_teardown(host: str) -> None:
    subprocess.run(["ip", "link", "del", host], check=True)


def pyroute2_pair() -> tuple[Callable[..., None], Callable[[str], None]] | None:
    try:
        from pyroute2 import IPRoute, NetNS  # type: ignore[import-not-found]
    except ImportError:
        return None

    def setup(bridge: str, host: str, ns: str, ip: str, cluster: str) -> None:
        with IPRoute() as ipr:
            br = ipr.link_lookup(ifname=bridge)[0]
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                ipr.link("add", ifname=host, kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd})
            finally:
                os.close(fd)
            idx = ipr.link_lookup(ifname=host)[0]
            ipr.link("set", index=idx, master=br, state="up")
        with NetNS(ns) as n:
            n.link("set", index=n.link_lookup(ifname="lo")[0], state="up")
            e = n.link_lookup(ifname="eth0")[0]
            n.addr("add", index=e, address=ip, prefixlen=24)
            n.link("set", index=e, state="up")
            n.route("add", dst=cluster, oif=e, scope=253, prefsrc=ip)

    def teardown(host: str) -> None:
        with IPRoute() as ipr:
            ipr.link("del", index=ipr.link_lookup(ifname=host)[0])

    return setup, teardown


def main() -> None:
    pods = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    tag = secrets.token_hex(2)
    octet = 64 + secrets.randbelow(128)
    cluster = f"10.{octet}.0.0/16"
    bridge = f"kubelite-b{tag}"
    namespaces = [f"kubelite-b{tag}-{i}" for i in range(pods)]
    results: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory() as d:
        node = NodeNetwork(f"10.{octet}.0.0/24", cluster, d, bridge=bridge)
        node.ensure()
        try:
            for ns in namespaces:
                subprocess.run(["ip", "netns", "add", ns], check=True)
            # kubelite
            s, t = [], []
            for i, ns in enumerate(namespaces):
                t0 = time.perf_counter()
                node.setup_pod(f"b{tag}-{i}", f"/run/netns/{ns}")
                s.append(time.perf_counter() - t0)
            for i in range(pods):
                t0 = time.perf_counter()
                node.teardown_pod(f"b{tag}-{i}")
                t.append(time.perf_counter() - t0)
            results["kubelite (netlink)"] = (s, t)
            peers: list[tuple[str, Callable[..., None], Callable[[str], None]]] = [("iproute2 ip", ip_setup, ip_teardown)]
            pr = pyroute2_pair()
            if pr:
                peers.append(("pyroute2", pr[0], pr[1]))
            for name, setup, teardown in peers:
                s, t = [], []
                hosts = [f"kubelitb{tag}{i:03d}" for i in range(pods)]
                for i, ns in enumerate(namespaces):
                    t0 = time.perf_counter()
                    setup(bridge, hosts[i], ns, f"10.{octet}.0.{100 + i}", cluster)
                    s.append(time.perf_counter() - t0)
                for h in hosts:
                    t0 = time.perf_counter()
                    teardown(h)
                    t.append(time.perf_counter() - t0)
                results[name] = (s, t)
        finally:
            for ns in namespaces:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            remove_bridge(bridge, (cluster,))
    base = statistics.median(results["kubelite (netlink)"][0])
    print(f"pod network setup/teardown, {pods} pods, medians:")
    for name, (s, t) in results.items():
        ms, mt = statistics.median(s) * 1000, statistics.median(t) * 1000
        print(f"  {name:20s} setup {ms:7.2f} ms   teardown {mt:7.2f} ms   setup ratio {ms / (base * 1000):5.2f}x")
    if "pyroute2" not in results:
        print("  (pyroute2 not installed: not measured)")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # killed (timeout, kill): clean up as on Ctrl-C
    main()

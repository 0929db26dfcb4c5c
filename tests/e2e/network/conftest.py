"""Network e2e fixtures: a bridge, cluster CIDR and netns set of this test's own, all removed after.

Names: bridge ``kubelite-t<5 hex>`` (15 chars), netns ``kubelite-t<hex>-<n>``, CIDR a random
``10.<64..191>.0.0/16`` so tests of other helpers on this host are never disturbed. Traffic stays
between these netns and the host's bridge address.
"""

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kubelet.runtime.network import NodeNetwork, remove_bridge
from kubelet.runtime.network.netlink import Netlink


@dataclass
class Lab:
    tag: str
    bridge: str
    cluster_cidr: str
    ipam_dir: Path
    octet: int
    netns: list[str] = field(default_factory=list)
    nodes: list[NodeNetwork] = field(default_factory=list)

    def node(self, n: int) -> NodeNetwork:
        net = NodeNetwork(f"10.{self.octet}.{n}.0/24", self.cluster_cidr, self.ipam_dir, bridge=self.bridge)
        net.ensure()
        self.nodes.append(net)
        return net

    def new_netns(self) -> str:
        name = f"kubelite-t{self.tag}-{len(self.netns)}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.netns.append(name)
        return name

    def sandbox(self, name: str) -> str:
        return f"t{self.tag}-{name}"


def run_in(ns: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout)


def ping(ip: str, ns: str | None = None) -> bool:
    argv = ["busybox", "ping", "-c", "1", "-W", "2", ip]
    r = run_in(ns, *argv) if ns else subprocess.run(argv, capture_output=True, text=True, timeout=10)
    return r.returncode == 0


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.fail("e2e network tests need root")
    tag = secrets.token_hex(3)[:5]
    octet = 64 + secrets.randbelow(128)
    lab = Lab(tag, f"kubelite-t{tag}", f"10.{octet}.0.0/16", tmp_path / "ipam", octet)
    try:
        yield lab
    finally:
        errors: list[str] = []
        for ns in lab.netns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        remove_bridge(lab.bridge, (lab.cluster_cidr,))
        with Netlink() as nl:
            if nl.link(lab.bridge) is not None:
                errors.append(f"bridge {lab.bridge} left")
            left = [r.dst for r in nl.routes() if r.dst.startswith(f"10.{octet}.")]
            if left:
                errors.append(f"routes left: {left}")
        stale = [n for n in lab.netns if Path(f"/run/netns/{n}").exists()]
        if stale:
            errors.append(f"netns left: {stale}")
        assert not errors, errors


Pinger = Callable[[str, str | None], bool]

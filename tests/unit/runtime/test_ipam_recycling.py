"""IPAM keeps released addresses' inodes: an emptied file is free, the next new address takes its inode."""

import os
from pathlib import Path

import pytest

from kubelet.runtime.network import Ipam

pytestmark = pytest.mark.unit


def _inodes(ipam: Ipam) -> dict[str, int]:
    return {e.name: e.inode() for e in os.scandir(ipam.dir) if e.name[0].isdigit()}


def test_a_released_address_keeps_its_inode_for_the_next_allocation(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, "10.9.4.0/28")
    a, b = ipam.allocate("a"), ipam.allocate("b")
    ino_a = _inodes(ipam)[a]
    assert ipam.release("a") == a
    assert (ipam.dir / a).read_text() == "" and ipam.allocations() == {b: "b"} and ipam.lookup("a") is None
    c = ipam.allocate("c")                         # round robin: a new address, made from a's inode
    assert c not in (a, b) and _inodes(ipam) == {b: _inodes(ipam)[b], c: ino_a}
    assert ipam.allocations() == {b: "b", c: "c"} and ipam.allocate("c") == c


def test_emptied_files_are_handed_out_again_when_the_round_comes_back(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, "10.9.5.0/29")            # .2-.6: five addresses
    ips = [ipam.allocate(f"p{i}") for i in range(5)]
    for i in range(5):
        ipam.release(f"p{i}")
    again = [ipam.allocate(f"q{i}") for i in range(5)]
    assert sorted(again) == sorted(ips) and len(_inodes(ipam)) == 5
    assert Ipam(tmp_path, "10.9.5.0/29").allocations() == {ip: f"q{i}" for i, ip in enumerate(again)}
    ipam.release_ip(again[0])
    assert again[0] not in ipam.allocations()
    ipam.remove_all()
    assert list(tmp_path.iterdir()) == []

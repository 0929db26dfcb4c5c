"""/etc/hosts and resolv.conf contents as the kubelet and containerd write them."""

from pathlib import Path

import pytest

from kubelet.runtime.network import DnsConfig, host_network_hosts, host_veth_name, hosts_file, resolv_conf
from kubelet.runtime.network.netlink import _attr, _str, parse_attrs

pytestmark = pytest.mark.unit


def test_hosts_file_is_kubelet_managed_format() -> None:
    assert hosts_file(["10.244.0.5"], "web-0") == (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n"
        "10.244.0.5\tweb-0\n")


def test_hosts_file_with_subdomain_and_aliases() -> None:
    text = hosts_file(["10.244.0.5"], "web-0", subdomain="web", namespace="ns1",
                      host_aliases=[("1.2.3.4", ["foo", "bar"])])
    assert "10.244.0.5\tweb-0.web.ns1.svc.cluster.local\tweb-0\n" in text
    assert text.endswith("\n# Entries added by HostAliases.\n1.2.3.4\tfoo\tbar\n")


def test_host_network_hosts(tmp_path: Path) -> None:
    f = tmp_path / "hosts"
    f.write_text("127.0.0.1 localhost\n192.0.2.2 myhost")
    assert host_network_hosts(str(f)) == ("# Kubernetes-managed hosts file (host network).\n"
                                          "127.0.0.1 localhost\n192.0.2.2 myhost\n")


def test_resolv_conf_falls_back_to_the_hosts(tmp_path: Path) -> None:
    f = tmp_path / "resolv.conf"
    f.write_text("# generated\nnameserver 10.0.0.53\nnameserver 10.0.0.54\nsearch a.example b.example\n"
                 "options ndots:2 edns0\nnameserver 10.0.0.55\nnameserver 10.0.0.56\n")
    assert resolv_conf(None, host_path=str(f)) == (
        "search a.example b.example\n"
        "nameserver 10.0.0.53\nnameserver 10.0.0.54\nnameserver 10.0.0.55\n"   # kubelet keeps 3
        "options ndots:2 edns0\n")


def test_resolv_conf_from_cluster_dns() -> None:
    dns = DnsConfig(("10.96.0.10",), ("ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"), ("ndots:5",))
    assert resolv_conf(dns) == ("search ns1.svc.cluster.local svc.cluster.local cluster.local\n"
                                "nameserver 10.96.0.10\noptions ndots:5\n")


def test_host_veth_names_fit_ifnamsiz_and_differ() -> None:
    names = {host_veth_name(f"sandbox-{i}") for i in range(1000)}
    assert len(names) == 1000
    assert all(len(n) == 15 and n.startswith("kubelite") for n in names)


def test_netlink_attribute_round_trip() -> None:
    packed = _str(3, "kubelite0") + _attr(10, b"\x01\x02\x03\x04") + _attr(18, _str(1, "veth"))
    attrs = parse_attrs(packed)
    assert attrs[3] == b"kubelite0\0" and attrs[10] == b"\x01\x02\x03\x04"
    assert parse_attrs(attrs[18])[1] == b"veth\0"
    assert len(packed) % 4 == 0

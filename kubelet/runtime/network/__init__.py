"""Pod networking: one bridge ``kubelite0`` per host, a veth per pod, IPAM on disk, /etc/hosts and
resolv.conf contents.

Typical runtime use::

    net = NodeNetwork(pod_cidr="10.244.1.0/24", cluster_cidr="10.244.0.0/16", ipam_dir=state / "ipam")
    net.ensure()                                   # once per kubelet start (idempotent)
    pn = net.setup_pod(sandbox_id, "/run/netns/kubelite-<id>")   # → PodNetwork(ip=...)
    hosts = hosts_file([pn.ip], hostname); resolv = resolv_conf(None)
    net.teardown_pod(sandbox_id)
    remove_bridge()                                # `up` exit / `kubelite down`

Defaults as kubeadm/flannel use them: cluster ``DEFAULT_CLUSTER_CIDR`` = 10.244.0.0/16, node n gets
``node_subnet(cluster, n)`` = 10.244.n.0/24 (the node's ``spec.podCIDR`` wins when it has one).

Blocking calls (netlink, file locks): from an event loop, run them in a thread.
"""

from .hostfiles import DnsConfig, host_dns_config, host_network_hosts, hosts_file, parse_resolv_conf, resolv_conf
from .ipam import Ipam, IpamError, gateway_of, node_subnet
from .netlink import Netlink, NetlinkError
from .node import (
    DEFAULT_BRIDGE, POD_IFNAME, VETH_PREFIX, NodeNetwork, PodNetwork, ensure_bridge, host_veth_name, remove_bridge,
)

DEFAULT_CLUSTER_CIDR = "10.244.0.0/16"

__all__ = [
    "DEFAULT_CLUSTER_CIDR",
    "DEFAULT_BRIDGE", "POD_IFNAME", "VETH_PREFIX", "DnsConfig", "Ipam", "IpamError", "Netlink", "NetlinkError",
    "NodeNetwork", "PodNetwork", "ensure_bridge", "gateway_of", "host_dns_config", "host_network_hosts",
    "host_veth_name", "hosts_file", "node_subnet", "parse_resolv_conf", "remove_bridge", "resolv_conf",
]

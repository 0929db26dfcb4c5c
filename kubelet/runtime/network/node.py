"""Pod networking on one host: the shared bridge, each node's addresses and routes, a veth per pod.

Layout (every name with the kubelite prefix):
- one bridge ``kubelite0`` shared by all nodes on the host: created on first need, kept across
  kubelet restarts, removed by :func:`remove_bridge` (``up`` exit, ``kubelite down``);
- per node: the bridge carries the gateway (first) address of the node's pod CIDR, which gives the
  host a route to that CIDR via the bridge, and the host gets an ``unreachable`` route for the
  whole cluster CIDR, so the rest of it never leaves through the uplink;
- per pod: a veth ``kubelite<hash>`` on the bridge whose peer is ``eth0`` in the pod's netns, an
  address from the node's IPAM, ``lo`` up, a route to the cluster CIDR and no default route.

The pod's cluster route is on-link by default (``dev eth0``): the host's IP forwarding stays as it
is (off here), so pods of two nodes on the same bridge talk over L2. With ``via_gateway=True`` it
goes ``via <gateway>`` instead, which needs forwarding on to reach other nodes' CIDRs.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .ipam import Ipam
from .netlink import RT_SCOPE_LINK, RTN_UNREACHABLE, Netlink, NetlinkError

logger = logging.getLogger(__name__)

DEFAULT_BRIDGE = "kubelite0"
VETH_PREFIX = "kubelite"
POD_IFNAME = "eth0"
IFNAMSIZ = 15


def host_veth_name(sandbox_id: str, prefix: str = VETH_PREFIX) -> str:
    """``kubelite`` + 7 hex digits of sha256(sandbox id): unique per pod, ≤ 15 characters."""
    digest = hashlib.sha256(sandbox_id.encode()).hexdigest()
    return (prefix + digest)[:IFNAMSIZ]


def _bridge_mac(name: str) -> bytes:
    """A stable, locally administered MAC for the bridge (it would otherwise follow its ports)."""
    h = hashlib.sha256(b"kubelite-bridge:" + name.encode()).digest()
    return bytes([(h[0] & 0xFC) | 0x02]) + h[1:6]


def ensure_bridge(name: str = DEFAULT_BRIDGE) -> int:
    """Create the bridge if missing (up, stable MAC) and return its ifindex. Safe to race."""
    if len(name) > IFNAMSIZ:
        raise ValueError(f"bridge name {name!r} longer than {IFNAMSIZ} characters")
    with Netlink() as nl:
        link = nl.link(name)
        if link is None:
            try:
                nl.add_bridge(name, _bridge_mac(name))
                logger.info("created bridge %s", name)
            except NetlinkError as e:
                if e.errno != errno.EEXIST:
                    raise
            link = nl.link(name)
            assert link is not None
        elif link.kind and link.kind != "bridge":
            raise NetlinkError(errno.EEXIST, f"{name} exists and is a {link.kind}, not a bridge")
        if not link.flags & 1:
            nl.set_link(link.index, up=True)
        return link.index


def remove_bridge(name: str = DEFAULT_BRIDGE, cluster_cidrs: tuple[str, ...] = (),
                  veth_prefix: str = VETH_PREFIX) -> bool:
    """Delete the bridge with the pod veths still on it (each takes its pod's ``eth0`` along; its
    addresses and their routes go with it) and the ``unreachable`` routes of ``cluster_cidrs``.
    Idempotent; True if the bridge existed."""
    with Netlink() as nl:
        br = nl.link(name)
        if br is not None:
            for link in nl.links():
                if link.master == br.index and link.name.startswith(veth_prefix):
                    nl.del_link(link.name)
        for cidr in cluster_cidrs:
            nl.del_route(cidr, rtype=RTN_UNREACHABLE)
        return nl.del_link(name)


@dataclass(frozen=True, slots=True)
class PodNetwork:
    """What a pod got: its address, how to reach it, and what to tear down."""

    sandbox_id: str
    ip: str
    prefixlen: int
    gateway: str
    host_veth: str
    netns_path: str


class NodeNetwork:
    """One node's share of the host network: its pod CIDR on the bridge, its IPAM, its pods.

    Args:
        pod_cidr: the node's ``spec.podCIDR`` (e.g. ``10.244.1.0/24``).
        cluster_cidr: the whole pod network (e.g. ``10.244.0.0/16``); must contain ``pod_cidr``.
        ipam_dir: where allocations are stored (the runtime's state dir); shared by nodes on a host.
        bridge: the shared bridge's name.
        via_gateway: route the cluster CIDR via the gateway instead of on-link (see module doc).
    """

    def __init__(self, pod_cidr: str, cluster_cidr: str, ipam_dir: str | Path, *,
                 bridge: str = DEFAULT_BRIDGE, via_gateway: bool = False, veth_prefix: str = VETH_PREFIX) -> None:
        self.pod_net = ipaddress.ip_network(pod_cidr, strict=True)
        self.cluster_net = ipaddress.ip_network(cluster_cidr, strict=True)
        if not self.pod_net.subnet_of(self.cluster_net):  # type: ignore[arg-type]
            raise ValueError(f"pod CIDR {pod_cidr} is not inside the cluster CIDR {cluster_cidr}")
        self.bridge = bridge
        self.via_gateway = via_gateway
        self.veth_prefix = veth_prefix
        self.ipam = Ipam(ipam_dir, str(self.pod_net))
        self.gateway = self.ipam.gateway

    # -------------------------------------------------------------------------------------- node
    def ensure(self) -> None:
        """Bridge up, the gateway address on it, the cluster's unreachable route. Idempotent."""
        index = ensure_bridge(self.bridge)
        with Netlink() as nl:
            nl.add_addr(index, self.gateway, self.pod_net.prefixlen, exist_ok=True)
            try:
                nl.add_route(str(self.cluster_net), rtype=RTN_UNREACHABLE)
            except NetlinkError as e:
                if e.errno != errno.EEXIST:
                    raise

    def remove(self, *, drop_cluster_route: bool = False) -> None:
        """Take the node's gateway address off the bridge (and its route) and forget its IPAM store;
        ``drop_cluster_route`` also removes the cluster's unreachable route (last node going)."""
        with Netlink() as nl:
            link = nl.link(self.bridge)
            if link is not None:
                nl.del_addr(link.index, self.gateway, self.pod_net.prefixlen)
            if drop_cluster_route:
                nl.del_route(str(self.cluster_net), rtype=RTN_UNREACHABLE)
        self.ipam.remove_all()

    # -------------------------------------------------------------------------------------- pods
    def setup_pod(self, sandbox_id: str, netns_path: str) -> PodNetwork:
        """Give the pod in ``netns_path`` its veth, address and route. On failure nothing is left
        (veth deleted, address released). Calling it again for the same sandbox redoes the link
        and keeps the address."""
        host = host_veth_name(sandbox_id, self.veth_prefix)
        ip = self.ipam.allocate(sandbox_id)
        try:
            with Netlink() as nl:
                br = nl.link(self.bridge)
                if br is None:
                    raise NetlinkError(errno.ENODEV, f"bridge {self.bridge} does not exist (call ensure())")
                nsfd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    try:
                        nl.add_veth(host, POD_IFNAME, peer_netns_fd=nsfd, master=br.index)
                    except NetlinkError as e:
                        if e.errno != errno.EEXIST:
                            raise
                        nl.del_link(host)            # a half-done earlier attempt
                        nl.add_veth(host, POD_IFNAME, peer_netns_fd=nsfd, master=br.index)
                finally:
                    os.close(nsfd)
            with Netlink.in_netns(netns_path) as ns:
                lo = ns.link("lo")
                if lo is not None:
                    ns.set_link(lo.index, up=True)
                eth = ns.link(POD_IFNAME)
                if eth is None:
                    raise NetlinkError(errno.ENODEV, f"{POD_IFNAME} missing in {netns_path}")
                ns.add_addr(eth.index, ip, self.pod_net.prefixlen, exist_ok=True)
                ns.set_link(eth.index, up=True)
                if self.via_gateway:
                    ns.add_route(str(self.cluster_net), gateway=self.gateway, oif=eth.index, replace=True)
                else:
                    ns.add_route(str(self.cluster_net), oif=eth.index, scope=RT_SCOPE_LINK, src=ip,
                                 replace=True)
        except BaseException:
            self._undo(host, sandbox_id)
            raise
        logger.debug("pod network %s: %s/%d on %s", sandbox_id, ip, self.pod_net.prefixlen, host)
        return PodNetwork(sandbox_id, ip, self.pod_net.prefixlen, self.gateway, host, netns_path)

    def _undo(self, host: str, sandbox_id: str) -> None:
        try:
            with Netlink() as nl:
                nl.del_link(host)
        except OSError:
            logger.exception("rollback: deleting %s failed", host)
        self.ipam.release(sandbox_id)

    def teardown_pod(self, sandbox_id: str) -> None:
        """Delete the pod's veth (both ends) and release its address. Idempotent; works also when
        the netns is already gone."""
        with Netlink() as nl:
            nl.del_link(host_veth_name(sandbox_id, self.veth_prefix))
        self.ipam.release(sandbox_id)

    def gc(self, keep: set[str] | frozenset[str]) -> list[str]:
        """Tear down every pod of this node whose sandbox id is not in ``keep`` (after a restart:
        ``keep`` = the sandboxes the runtime still has). Only this node's IPAM owners are touched,
        never another node's veths on the shared bridge. Returns the ids torn down."""
        gone = sorted(set(self.ipam.allocations().values()) - set(keep))
        for sandbox_id in gone:
            logger.info("pod network gc: %s", sandbox_id)
            self.teardown_pod(sandbox_id)
        return gone

    def pod_ip(self, sandbox_id: str) -> str | None:
        return self.ipam.lookup(sandbox_id)

    def pod_veths(self) -> list[str]:
        """Host ends attached to the bridge (for garbage collection of lost pods)."""
        with Netlink() as nl:
            br = nl.link(self.bridge)
            if br is None:
                return []
            return [ln.name for ln in nl.links() if ln.master == br.index and ln.name.startswith(self.veth_prefix)]


def wait_link_gone(name: str, timeout: float = 2.0) -> bool:
    """Poll until ``name`` no longer exists in the host netns (veth deletion is asynchronous-ish)."""
    deadline = time.monotonic() + timeout
    with Netlink() as nl:
        while nl.link(name) is not None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
    return True

"""IP address management on disk, in the manner of CNI's host-local plugin.

One directory per pod CIDR under the IPAM root (``10.244.1.0_24/``) holds a file per allocated
address (name = the IP, content = the owner, e.g. the sandbox id), ``last_reserved_ip`` for
round-robin allocation, and ``lock``, taken with ``flock`` around every change. So two kubelets on
one host never hand out one address twice, a restarted kubelet finds its allocations where it left
them, and an address is reused only after it was released (and after the others were tried).
The network address, the gateway (first host address) and the broadcast address are never given out.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from kubelite.api.errors import KubeliteError

LAST_FILE = "last_reserved_ip"
LOCK_FILE = "lock"


class IpamError(KubeliteError):
    """No free address left, or a bad CIDR."""


def gateway_of(cidr: str) -> str:
    """The first host address of ``cidr`` (the bridge's address for that node)."""
    net = ipaddress.ip_network(cidr, strict=True)
    return str(net.network_address + 1)


def node_subnet(cluster_cidr: str, index: int, prefixlen: int = 24) -> str:
    """The ``index``-th /``prefixlen`` of ``cluster_cidr`` (as Kubernetes' node IPAM hands out
    ``spec.podCIDR``: 10.244.0.0/16 → 10.244.0.0/24, 10.244.1.0/24, ...)."""
    net = ipaddress.ip_network(cluster_cidr, strict=True)
    subnets = net.subnets(new_prefix=prefixlen)
    count = 1 << (prefixlen - net.prefixlen)
    if not 0 <= index < count:
        raise IpamError(f"{cluster_cidr} has {count} /{prefixlen} subnets; no index {index}")
    for i, sub in enumerate(subnets):
        if i == index:
            return str(sub)
    raise AssertionError("unreachable")


class Ipam:
    """Allocations within one pod CIDR, stored under ``root``."""

    def __init__(self, root: str | Path, cidr: str) -> None:
        try:
            self.net = ipaddress.ip_network(cidr, strict=True)
        except ValueError as e:
            raise IpamError(f"invalid pod CIDR {cidr!r}: {e}") from e
        if self.net.version != 4 or self.net.prefixlen > 30:
            raise IpamError(f"pod CIDR {cidr} must be IPv4 with room for pods (prefix ≤ /30)")
        self.cidr = str(self.net)
        self.gateway = gateway_of(self.cidr)
        self.dir = Path(root) / self.cidr.replace("/", "_")
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)   # releases the lock

    def _owner_of_file(self, ip: str) -> str | None:
        try:
            return (self.dir / ip).read_text().strip()
        except FileNotFoundError:
            return None

    def allocations(self) -> dict[str, str]:
        """ip → owner of every current allocation."""
        out = {}
        for entry in os.scandir(self.dir):
            if entry.name in (LAST_FILE, LOCK_FILE) or entry.name.startswith("."):
                continue
            owner = self._owner_of_file(entry.name)
            if owner is not None:
                out[entry.name] = owner
        return out

    def lookup(self, owner: str) -> str | None:
        """The address held by ``owner``, if any."""
        for ip, o in self.allocations().items():
            if o == owner:
                return ip
        return None

    def allocate(self, owner: str) -> str:
        """An address for ``owner``; the same one again if ``owner`` already holds one.

        Raises:
            IpamError: the CIDR is full.
        """
        if not owner or "\n" in owner:
            raise IpamError(f"invalid IPAM owner {owner!r}")
        with self._locked():
            held = self.lookup(owner)
            if held:
                return held
            hosts = int(self.net.num_addresses)
            first = int(self.net.network_address) + 2            # .0 network, .1 gateway
            last = int(self.net.broadcast_address) - 1
            try:
                prev = int(ipaddress.ip_address((self.dir / LAST_FILE).read_text().strip()))
            except (FileNotFoundError, ValueError):
                prev = first - 1
            start = prev + 1 if first <= prev + 1 <= last else first
            count = last - first + 1
            for i in range(max(0, count)):
                cand = first + (start - first + i) % count
                ip = str(ipaddress.ip_address(cand))
                try:
                    fd = os.open(self.dir / ip, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                except FileExistsError:
                    continue
                with os.fdopen(fd, "w") as f:   # no fsync: a host crash ends every pod it could account for
                    f.write(owner + "\n")
                self._write_last(ip)
                return ip
            raise IpamError(f"no free address left in {self.cidr} ({hosts} addresses, {count} usable)")

    def _write_last(self, ip: str) -> None:
        """Record the round-robin position, in place (a hint only: a torn write just restarts the round,
        and no new inode is made per pod, which costs ~1 ms on a busy journal-less ext4)."""
        fd = os.open(self.dir / LAST_FILE, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, ip.encode(), 0)
        finally:
            os.close(fd)

    def release(self, owner: str) -> str | None:
        """Free what ``owner`` holds; returns the address (None if it held none). Idempotent."""
        with self._locked():
            ip = self.lookup(owner)
            if ip is not None:
                try:
                    (self.dir / ip).unlink()
                except FileNotFoundError:
                    pass
            return ip

    def release_ip(self, ip: str) -> None:
        with self._locked():
            try:
                (self.dir / str(ipaddress.ip_address(ip))).unlink()
            except FileNotFoundError:
                pass

    def remove_all(self) -> None:
        """Delete this CIDR's whole store (node removed / tests' teardown)."""
        with self._locked():
            for entry in os.scandir(self.dir):
                if entry.name != LOCK_FILE:
                    os.unlink(entry.path)
        try:
            os.unlink(self.dir / LOCK_FILE)
            os.rmdir(self.dir)
        except OSError:
            pass
